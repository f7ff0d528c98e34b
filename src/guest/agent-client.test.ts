// AgentClient against a scripted fake agent on a unix socket (no QEMU): framing,
// matching by id, timeouts, errors, disconnect and reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { AgentClient } from './agent-client.ts';
import { LineSplitter } from './protocol.ts';
import { isVmhostError } from '../common/index.ts';

const INFO = { agentVersion: '1', hostname: 'fake', kernel: '6.1.0-test', uptimeMs: 1 };

interface Fake { server: Server; path: string; conns: Socket[]; seen: Record<string, unknown>[]; close(): Promise<void> }

// Answers like the real agent; `mute` ops get no answer, `sendReady` sends the event.
async function fakeAgent(opts: { mute?: string[]; sendReady?: boolean } = {}): Promise<Fake> {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-agent-'));
  const path = join(dir, 'agent.sock');
  const conns: Socket[] = [];
  const seen: Record<string, unknown>[] = [];
  const server = createServer((s) => {
    conns.push(s);
    if (opts.sendReady) s.write(JSON.stringify({ event: 'ready', ...INFO }) + '\n');
    const split = new LineSplitter(1 << 20);
    s.on('data', (c: Buffer) => {
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
          default: reply = { id: req.id, ok: false, error: { code: 'UNKNOWN_OP', message: String(req.op) } };
        }
        // Split the reply across writes to exercise framing.
        const text = JSON.stringify(reply) + '\n';
        s.write(text.slice(0, 5));
        setImmediate(() => s.write(text.slice(5)));
      }
    });
    s.on('error', () => {});
  });
  server.listen(path);
  await once(server, 'listening');
  return {
    server, path, conns, seen,
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
