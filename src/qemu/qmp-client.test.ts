// QMP client against a scripted fake QMP server (no QEMU): protocol, errors, timeouts, close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { QmpClient } from './qmp-client.ts';

interface Fake { path: string; server: Server; sockets: Socket[]; received: Record<string, unknown>[]; close(): void }

/** `answer(msg)` returns the reply object (without id), or undefined to stay silent. */
async function fakeQmp(answer: (msg: { execute: string; arguments?: unknown }, sock: Socket) => object | undefined): Promise<Fake> {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-fakeqmp-'));
  const path = join(dir, 'qmp.sock');
  const sockets: Socket[] = [];
  const received: Record<string, unknown>[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'fake' }, capabilities: ['oob'] } }) + '\r\n');
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: unknown; arguments?: unknown };
        buf = buf.slice(nl + 1);
        received.push(msg);
        const r = msg.execute === 'qmp_capabilities' ? { return: {} } : answer(msg, s);
        if (r) s.write(JSON.stringify({ ...r, id: msg.id }) + '\r\n');
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, sockets, received, close: () => { for (const s of sockets) s.destroy(); server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('greeting, capabilities, typed command, arguments passed, version parsed', async () => {
  const fake = await fakeQmp((m) => (m.execute === 'query-status' ? { return: { status: 'running', running: true, singlestep: false } } : { return: {} }));
  try {
    const qmp = await QmpClient.connect(fake.path);
    assert.deepEqual(qmp.version, { major: 7, minor: 2, micro: 22, package: 'fake' });
    const st = await qmp.execute('query-status');
    assert.equal(st.status, 'running');
    await qmp.execute('device_del', { id: 'nic1' });
    assert.deepEqual(fake.received.map((m) => m.execute), ['qmp_capabilities', 'query-status', 'device_del']);
    assert.deepEqual(fake.received[2]!.arguments, { id: 'nic1' });
    assert.equal('arguments' in fake.received[1]!, false);
    await qmp.close();
  } finally { fake.close(); }
});

test('answers are matched by id even out of order', async () => {
  const held: { sock: Socket; id: unknown }[] = [];
  const fake = await fakeQmp((m, sock) => {
    if (m.execute === 'query-kvm') { held.push({ sock, id: (m as unknown as { id: unknown }).id }); return undefined; }
    return { return: { UUID: 'u' } };
  });
  try {
    const qmp = await QmpClient.connect(fake.path);
    const slow = qmp.execute('query-kvm');
    const fast = await qmp.execute('query-uuid');
    assert.equal(fast.UUID, 'u');
    held[0]!.sock.write(JSON.stringify({ return: { enabled: false, present: true }, id: held[0]!.id }) + '\n');
    assert.deepEqual(await slow, { enabled: false, present: true });
    await qmp.close();
  } finally { fake.close(); }
});

test('a QMP error becomes VmhostError QMP_ERROR with class and desc', async () => {
  const fake = await fakeQmp(() => ({ error: { class: 'DeviceNotFound', desc: "Device 'x' not found" } }));
  try {
    const qmp = await QmpClient.connect(fake.path);
    await assert.rejects(qmp.execute('device_del', { id: 'x' }), (e: unknown) =>
      isVmhostError(e, 'QMP_ERROR') && e.context.qmpClass === 'DeviceNotFound' && e.context.command === 'device_del' && /not found/.test(e.message));
    await qmp.close();
  } finally { fake.close(); }
});

test('per-command timeout; pending commands rejected on disconnect; commands after close refused', async () => {
  const fake = await fakeQmp(() => undefined);
  try {
    const qmp = await QmpClient.connect(fake.path);
    await assert.rejects(qmp.execute('query-status', undefined, { timeoutMs: 100 }), (e: unknown) => isVmhostError(e, 'QMP_TIMEOUT'));
    const pending = qmp.execute('query-status');
    const closed = new Promise<void>((r) => qmp.once('close', r));
    await new Promise((r) => setTimeout(r, 50));
    fake.sockets[0]!.destroy(); // "QEMU exits"
    await assert.rejects(pending, (e: unknown) => isVmhostError(e, 'QMP_DISCONNECTED'));
    await closed;
    assert.equal(qmp.isClosed, true);
    await assert.rejects(qmp.execute('cont'), (e: unknown) => isVmhostError(e, 'QMP_DISCONNECTED'));
  } finally { fake.close(); }
});

test('events: emitter, waitForEvent with predicate, async iterator ending at close', async () => {
  const fake = await fakeQmp(() => ({ return: {} }));
  try {
    const qmp = await QmpClient.connect(fake.path);
    const seen: string[] = [];
    qmp.on('event', (e) => seen.push(e.event));
    const reset = qmp.waitForEvent('RESET', { predicate: (e) => e.data.guest, timeoutMs: 2000 });
    const iterated: string[] = [];
    const iterating = (async () => { for await (const e of qmp.events()) iterated.push(e.event); })();
    const ev = (event: string, data?: object) => fake.sockets[0]!.write(JSON.stringify({ event, data, timestamp: { seconds: 1, microseconds: 2 } }) + '\n');
    ev('STOP');
    ev('RESET', { guest: false, reason: 'host-qmp-system-reset' });
    ev('RESET', { guest: true, reason: 'guest-reset' });
    const r = await reset;
    assert.equal(r.data.reason, 'guest-reset');
    assert.deepEqual(r.timestamp, { seconds: 1, microseconds: 2 });
    await qmp.close();
    await iterating;
    assert.deepEqual(seen, ['STOP', 'RESET', 'RESET']);
    assert.deepEqual(iterated, ['STOP', 'RESET', 'RESET']);
    await assert.rejects(qmp.waitForEvent('STOP', { timeoutMs: 100 }), (e: unknown) => isVmhostError(e, 'QMP_DISCONNECTED'));
  } finally { fake.close(); }
});

test('connect fails cleanly: no socket, and no greeting', async () => {
  await assert.rejects(QmpClient.connect('/nonexistent/qmp.sock'), (e: unknown) => isVmhostError(e, 'QMP_CONNECT_FAILED'));
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-fakeqmp-'));
  const sockets: Socket[] = [];
  const silent = createServer((s) => { sockets.push(s); });
  await new Promise<void>((r) => silent.listen(join(dir, 's'), r));
  try {
    await assert.rejects(QmpClient.connect(join(dir, 's'), { timeoutMs: 150 }), (e: unknown) => isVmhostError(e, 'QMP_CONNECT_FAILED') && /greeting/.test(e.message));
  } finally { for (const s of sockets) s.destroy(); silent.close(); rmSync(dir, { recursive: true, force: true }); }
});
