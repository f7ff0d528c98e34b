// AgentClient against a scripted fake agent on a unix socket (no QEMU): framing,
// matching by id, timeouts, errors, disconnect and reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { AgentClient } from './agent-client.ts';
import { LineSplitter } from './protocol.ts';
import { isVmhostError } from '../common/index.ts';

const INFO = { agentVersion: '1', hostname: 'fake', kernel: '6.1.0-test', uptimeMs: 1 };

interface Fake { server: Server; path: string; conns: Socket[]; seen: Record<string, unknown>[]; files: Map<string, Buffer>; close(): Promise<void> }

// Answers like the real agent; `mute` ops get no answer, `sendReady` sends the event.
async function fakeAgent(opts: { mute?: string[]; sendReady?: boolean } = {}): Promise<Fake> {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-agent-'));
  const path = join(dir, 'agent.sock');
  const conns: Socket[] = [];
  const seen: Record<string, unknown>[] = [];
  const files = new Map<string, Buffer>();
  const server = createServer((s) => {
    conns.push(s);
    if (opts.sendReady) s.write(JSON.stringify({ event: 'ready', ...INFO }) + '\n');
    const split = new LineSplitter(1 << 20);
    let writes = Promise.resolve();
    s.on('data', (c: Buffer) => {
      let out = '';
      for (const line of split.push(c)) {
        const req = JSON.parse(line) as Record<string, unknown>;
        seen.push(req);
        if (opts.mute?.includes(String(req.op))) continue;
        let reply: unknown;
        switch (req.op) {
          case 'ping': reply = { id: req.id, ok: true, data: { ...INFO, timeMs: Date.now() } }; break;
          case 'exec': {
            const script = Buffer.from(String(req.script), 'base64');
            reply = { id: req.id, ok: true, data: { exitCode: 7, signal: null, timedOut: false, truncated: false, stdout: script.toString('base64'), stderr: '' } };
            break;
          }
          case 'settime': reply = { id: req.id, ok: true, data: { previousTimeMs: Date.now(), timeMs: req.timeMs } }; break;
          case 'writefile': {
            // Like the agent: a refusal on the first chunk, then data appended in order.
            const path = String(req.path);
            if (req.abort) { reply = { id: req.id, ok: true, data: {} }; break; }
            if (path.includes('exists') && !req.overwrite) { reply = { id: req.id, ok: false, error: { code: 'FILE_EXISTS', message: `${path} already exists` } }; break; }
            const before = req.offset === 0 ? Buffer.alloc(0) : files.get(path);
            if (!before || before.length !== req.offset) { reply = { id: req.id, ok: false, error: { code: 'BAD_REQUEST', message: 'offset' } }; break; }
            const now = Buffer.concat([before, Buffer.from(String(req.data), 'base64')]);
            files.set(path, now);
            reply = { id: req.id, ok: true, data: { size: now.length, final: req.final === true } };
            break;
          }
          default: reply = { id: req.id, ok: false, error: { code: 'UNKNOWN_OP', message: String(req.op) } };
        }
        out += JSON.stringify(reply) + '\n';
      }
      // Split the replies across writes to exercise framing (in order: requests may be pipelined).
      writes = writes.then(() => { s.write(out.slice(0, 5)); return new Promise<void>((r) => setImmediate(r)); }).then(() => { if (out.length > 5) s.write(out.slice(5)); });
    });
    s.on('error', () => {});
  });
  server.listen(path);
  await once(server, 'listening');
  return {
    server, path, conns, seen, files,
    close: async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('ping, exec and errors; ready through the probe ping', async () => {
  const fake = await fakeAgent();
  const client = new AgentClient({ path: fake.path, reconnect: false });
  try {
    await client.connect();
    const info = await client.waitReady(2000);
    assert.equal(info.hostname, 'fake');
    const pong = await client.ping();
    assert.equal(pong.kernel, '6.1.0-test');
    const bytes = Buffer.from([0, 1, 2, 0xff, 0x0a, 0x22, 0x5c]);
    const r = await client.exec(bytes);
    assert.deepEqual(r.stdout, bytes);
    assert.equal(r.exitCode, 7);
    await assert.rejects(client.kvp(), (e) => isVmhostError(e, 'AGENT_ERROR') && e.context.agentCode === 'UNKNOWN_OP');
    // An agent from before meminfo: the code dynamic memory falls back to balloon statistics on.
    await assert.rejects(client.meminfo(), (e) => isVmhostError(e, 'AGENT_ERROR') && e.context.agentCode === 'UNKNOWN_OP');
    await assert.rejects(client.exec(Buffer.alloc(4 << 20)), (e) => isVmhostError(e, 'AGENT_REQUEST_TOO_LARGE'));
  } finally {
    await client.close();
    await fake.close();
  }
});

test('ready event, timeout, and disconnect failing pending requests', async () => {
  const fake = await fakeAgent({ mute: ['kvp', 'ping'], sendReady: true });
  const client = new AgentClient({ path: fake.path, reconnect: false, requestTimeoutMs: 200 });
  try {
    await client.connect();
    assert.equal((await client.waitReady(2000)).kernel, '6.1.0-test');
    await assert.rejects(client.kvp(), (e) => isVmhostError(e, 'AGENT_TIMEOUT'));
    const pending = client.kvp(5000);
    await new Promise((r) => setTimeout(r, 50));
    fake.conns[0]!.destroy();
    await assert.rejects(pending, (e) => isVmhostError(e, 'AGENT_DISCONNECTED'));
    await assert.rejects(client.ping(), (e) => isVmhostError(e, 'AGENT_DISCONNECTED'));
  } finally {
    await client.close();
    await fake.close();
  }
});

test('reconnects by itself after the agent side drops the connection', async () => {
  const fake = await fakeAgent();
  const client = new AgentClient({ path: fake.path, reconnectDelayMs: 50 });
  try {
    await client.connect();
    await client.waitReady(2000);
    const disconnected = once(client, 'disconnected');
    fake.conns[0]!.destroy();
    await disconnected;
    await client.waitReady(2000);
    assert.equal((await client.ping()).hostname, 'fake');
    assert.equal(fake.conns.length, 2);
  } finally {
    await client.close();
    await fake.close();
  }
});

test('connect without reconnect fails with a typed error', async () => {
  const client = new AgentClient({ path: join(tmpdir(), 'vmhost-no-such.sock'), reconnect: false });
  await assert.rejects(client.connect(), (e) => isVmhostError(e, 'AGENT_CONNECT_FAILED'));
  await client.close();
});

test('LineSplitter drops overlong lines and keeps going', () => {
  let overflows = 0;
  const s = new LineSplitter(8, () => overflows++);
  assert.deepEqual(s.push(Buffer.from('ab\ncd')), ['ab']);
  assert.deepEqual(s.push(Buffer.from('0123456789')), []);
  assert.deepEqual(s.push(Buffer.from('xx\nok\r\n')), ['ok']);
  assert.equal(overflows, 1);
});

test('writeFile streams a host file in ordered chunks with progress; a refusal aborts the temp file', async () => {
  const fake = await fakeAgent();
  const client = new AgentClient({ path: fake.path, reconnect: false });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-wf-'));
  try {
    await client.connect();
    await client.waitReady(2000);
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff));
    const src = join(dir, 'src.bin');
    writeFileSync(src, data);
    const progress: number[] = [];
    const r = await client.writeFile(src, '/tmp/dst.bin', { chunkBytes: 1024, window: 3, onProgress: (n, total) => { assert.equal(total, data.length); progress.push(n); } });
    assert.equal(r.bytes, data.length);
    assert.deepEqual(fake.files.get('/tmp/dst.bin'), data);
    assert.equal(progress.at(-1), data.length);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    const chunks = fake.seen.filter((q) => q.op === 'writefile');
    assert.equal(chunks.length, 10);
    assert.equal(chunks.filter((q) => q.final === true).length, 1);
    assert.equal(new Set(chunks.map((q) => q.transfer)).size, 1);
    // Empty file: one final chunk without data.
    writeFileSync(join(dir, 'empty'), '');
    assert.equal((await client.writeFile(join(dir, 'empty'), '/tmp/empty')).bytes, 0);
    assert.deepEqual(fake.files.get('/tmp/empty'), Buffer.alloc(0));
    fake.seen.length = 0;
    await assert.rejects(client.writeFile(src, '/tmp/exists', { chunkBytes: 1024 }), (e) => isVmhostError(e, 'AGENT_ERROR') && e.context.agentCode === 'FILE_EXISTS');
    assert.ok(fake.seen.some((q) => q.op === 'writefile' && q.abort === true), 'temp file aborted');
    assert.equal((await client.setTime(1234)).timeMs, 1234);
  } finally {
    await client.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
