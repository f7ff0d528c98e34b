// TcpRelay on real loopback sockets: bytes pass whole and in order both ways; a cut drops what
// either side sends (it is not delivered later) and leaves new connections accepted and silent, the
// heal closes what the cut reached; a rate paces a 1 MiB transfer; close() leaves no handle behind.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { waitFor } from './daemon.ts';
import { TcpRelay, type Direction, type PerDirection } from './tcp-relay.ts';

const MiB = 1 << 20;
/** The most a socket hands the relay in one read (libuv's 64 KiB buffer). */
const CHUNK = 64 * 1024;
/** Each test takes about a second; a relay that holds what it should close would hang a test until this. */
const LIMIT = { timeout: 60_000 };

const closed = (s: Socket): Promise<unknown> => (s.closed ? Promise.resolve() : new Promise((r) => s.once('close', r)));

interface Conn { socket: Socket; got: Buffer[] }

/** A loopback server keeping every connection it accepted and what each one received. */
class Target {
  readonly conns: Conn[] = [];
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<Target> {
    const server = createServer();
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const target = new Target(server, (server.address() as { port: number }).port);
    server.on('connection', (socket) => {
      const conn: Conn = { socket, got: [] };
      socket.on('error', () => undefined);
      socket.on('data', (b: Buffer) => conn.got.push(b));
      target.conns.push(conn);
    });
    return target;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await Promise.all([...this.conns.map((c) => closed(c.socket)), new Promise((r) => this.server.close(r))]);
  }
}

/** Every client socket a test opened: closed after each test, so none outlives it. */
const dialed = new Set<Socket>();
afterEach(async () => {
  for (const s of dialed) s.destroy();
  await Promise.all([...dialed].map(closed));
  dialed.clear();
});

async function dial(port: number): Promise<Conn> {
  const socket = connect(port, '127.0.0.1');
  dialed.add(socket);
  const got: Buffer[] = [];
  socket.on('error', () => undefined);
  socket.on('data', (b: Buffer) => got.push(b));
  await new Promise((r) => socket.once('connect', r));
  return { socket, got };
}

/** Resolves once `got`, which `socket`'s data fills, holds `n` bytes: at the chunk that completes them. */
function received(socket: Socket, got: Buffer[], n: number): Promise<void> {
  const size = () => got.reduce((sum, b) => sum + b.length, 0);
  return new Promise((ok) => {
    if (size() >= n) return ok();
    const check = (): void => { if (size() >= n) { socket.off('data', check); ok(); } };
    socket.on('data', check);
  });
}

/** A relay to a fresh target for `body`; both closed after it. */
async function withRelay(rate: Partial<PerDirection>, body: (relay: TcpRelay, target: Target) => Promise<void>): Promise<void> {
  const target = await Target.start();
  const relay = await TcpRelay.start({ port: target.port }, rate);
  try {
    await body(relay, target);
  } finally {
    await relay.close();
    await target.close();
  }
}

/** A client through `relay`, and the target's end of its connection. */
async function connection(relay: TcpRelay, target: Target): Promise<{ c: Conn; t: Conn }> {
  const n = target.conns.length;
  const c = await dial(relay.port);
  await waitFor('the target accepted', 30_000, async () => target.conns.length > n);
  return { c, t: target.conns[n]! };
}

test('bytes arrive whole and in order, both ways at once', LIMIT, () => withRelay({}, async (relay, target) => {
  const up = randomBytes(4 * MiB), down = randomBytes(4 * MiB);
  const { c, t } = await connection(relay, target);
  c.socket.write(up);
  t.socket.write(down);
  await Promise.all([received(t.socket, t.got, up.length), received(c.socket, c.got, down.length)]);
  assert.ok(Buffer.concat(t.got).equals(up), 'the target got the client\'s bytes as sent');
  assert.ok(Buffer.concat(c.got).equals(down), 'the client got the target\'s bytes as sent');
  assert.deepEqual(relay.relayed(), { up: up.length, down: down.length });
}));

test('a cut drops bytes both ways and silences new connections; the heal closes what it reached and lets new ones through', LIMIT, () => withRelay({}, async (relay, target) => {
  const { c: c1, t: t1 } = await connection(relay, target);
  c1.socket.write('hello');
  await received(t1.socket, t1.got, 5);

  relay.cut();
  c1.socket.write('lost-up');
  t1.socket.write('lost-down');
  // Accepted during the cut (the connect succeeds), then silence; the target never hears of it.
  const c2 = await dial(relay.port);
  c2.socket.write('lost');
  await waitFor('the relay read and dropped what both sides sent', 30_000, async () => {
    const d = relay.dropped();
    return d.up === 'lost-up'.length + 'lost'.length && d.down === 'lost-down'.length;
  });
  assert.equal(target.conns.length, 1, 'no connection reached the target during the cut');

  // Dropped, not held: the heal delivers nothing, it closes the connections the cut reached.
  relay.heal();
  await Promise.all([closed(c1.socket), closed(c2.socket), closed(t1.socket)]);
  assert.equal(Buffer.concat(t1.got).toString(), 'hello');
  assert.equal(Buffer.concat(c1.got).length, 0);
  assert.equal(Buffer.concat(c2.got).length, 0);

  const { c: c3, t: t3 } = await connection(relay, target);
  c3.socket.write('again');
  await received(t3.socket, t3.got, 5);
  t3.socket.write('back');
  await received(c3.socket, c3.got, 4);
  assert.equal(Buffer.concat(c3.got).toString(), 'back');
  assert.deepEqual(relay.relayed(), { up: 'hello'.length + 'again'.length, down: 'back'.length });
}));

for (const dir of ['up', 'down'] as const satisfies readonly Direction[]) {
  const rate = 2 * MiB;
  test(`a rate paces 1 MiB ${dir}`, LIMIT, () => withRelay({ [dir]: rate }, async (relay, target) => {
    const { c, t } = await connection(relay, target);
    const [from, to] = dir === 'up' ? [c, t] : [t, c];
    const payload = randomBytes(MiB);
    const t0 = performance.now();
    from.socket.write(payload);
    await received(to.socket, to.got, MiB);
    const elapsed = performance.now() - t0;
    assert.ok(Buffer.concat(to.got).equals(payload));
    assert.deepEqual(relay.relayed(), dir === 'up' ? { up: MiB, down: 0 } : { up: 0, down: MiB });
    // Every chunk but the last is held chunk/rate before the next is read; a chunk is at most
    // CHUNK bytes, and Node truncates each hold to whole milliseconds (under 1 ms of each ~31 ms
    // hold of a full chunk), hence the 10 % allowance. No upper bound: the machine may be loaded.
    const floorMs = 0.9 * ((MiB - CHUNK) / rate) * 1000;
    assert.ok(elapsed >= floorMs, `1 MiB at ${rate} B/s took ${elapsed.toFixed(0)} ms, under ${floorMs.toFixed(0)} ms`);
  }));
}

test('close() leaves no socket, server or timer behind', LIMIT, async () => {
  const count = () => {
    const n = { TCPSocketWrap: 0, TCPServerWrap: 0, Timeout: 0 };
    for (const r of process.getActiveResourcesInfo()) if (r in n) n[r as keyof typeof n]++;
    return n;
  };
  // A server's close() calls back before libuv has closed its handle: count at the next turn of
  // the event loop past its close phase (two check phases), both before and after.
  const settled = async () => { for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r)); };
  await settled();
  const before = count();
  const target = await Target.start();
  // 1 KiB/s: the first chunk forwarded leaves a hold of a minute pending at the close.
  const relay = await TcpRelay.start({ port: target.port }, { up: 1024 });
  const c1 = await dial(relay.port);
  c1.socket.write(randomBytes(CHUNK));
  await waitFor('the first chunk relayed', 30_000, async () => relay.relayed().up > 0);
  relay.cut();
  const c2 = await dial(relay.port);
  assert.ok(count().Timeout > before.Timeout, 'a pacing hold is pending');

  await relay.close();
  await Promise.all([closed(c1.socket), closed(c2.socket)]);
  await target.close();
  await settled();
  assert.deepEqual(count(), before);
});
