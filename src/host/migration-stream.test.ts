// The migration relay with real sockets and a stand-in for the destination QEMU (a unix listener
// that records what each connection carried): every connection of the source arrives whole, in
// the order the source opened them (QEMU 7.2 takes the first as the main channel), each behind
// its own secret; a connection with a wrong secret never reaches QEMU; closing the source relay
// right after the source has written lets the bytes still in flight through; a destination that
// goes away cleanly mid-stream closes the source QEMU's side instead of leaving it blocked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destinationRelay, sourceRelay, SECRET_BYTES } from './migration-stream.ts';

/** The destination QEMU's stand-in: each connection's bytes, in accept order, once it has ended. */
async function fakeQemu(path: string, expect: number): Promise<{ received: Promise<Buffer[]> }> {
  const got: Promise<Buffer>[] = [];
  let all!: (b: Buffer[]) => void;
  const done = new Promise<Buffer[]>((r) => { all = r; });
  const server = createServer((c) => {
    const chunks: Buffer[] = [];
    got.push(new Promise((r) => c.on('data', (b: Buffer) => chunks.push(b)).on('end', () => { c.end(); r(Buffer.concat(chunks)); })));
    if (got.length === expect) void Promise.all(got).then((x) => { server.close(); all(x); });
  });
  await new Promise<void>((ok) => server.listen(path, ok));
  return { received: done };
}

const connect = (uri: string): Promise<Socket> => new Promise((ok, fail) => {
  const s = createConnection(uri.replace(/^unix:/, ''), () => ok(s));
  s.on('error', fail);
});

test('relay: five connections arrive whole and in order, each behind the secret; a wrong secret is dropped; close drains', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    const secret = randomBytes(SECRET_BYTES);
    const qemuSock = join(root, 'in.sock');
    const { received } = await fakeQemu(qemuSock, 5);
    const dst = await destinationRelay('127.0.0.1', qemuSock, secret, await mkdtemp(join(root, 'd-')));
    // Someone without the secret: dropped before it reaches QEMU.
    const intruder = createConnection({ host: '127.0.0.1', port: dst.port });
    const dropped = new Promise<void>((r) => intruder.on('close', () => r()).on('error', () => undefined));
    intruder.write(randomBytes(SECRET_BYTES + 100));
    await dropped;
    const src = await sourceRelay(await mkdtemp(join(root, 's-')), undefined, { host: '127.0.0.1', port: dst.port }, secret);
    // The main channel first, then four channels opened at once; 4 MiB each, more than the sockets buffer.
    const payloads = Array.from({ length: 5 }, (_, i) => Buffer.alloc(4 << 20, i + 1));
    const main = await connect(src.uri);
    const channels = [main, ...(await Promise.all(payloads.slice(1).map(() => connect(src.uri))))];
    await Promise.all(channels.map((c, i) => new Promise<void>((r) => c.end(payloads[i]!, () => r()))));
    await src.close(); // at once: what the relay still holds must get through
    const got = await received;
    assert.deepEqual(got.map((b) => [b.length, b[0]]), payloads.map((p) => [p.length, p[0]]));
    assert.ok(got.every((b, i) => b.equals(payloads[i]!)), 'every byte of every connection arrived');
    await dst.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('relay: a destination that goes away without an error while the source QEMU still sends closes the QEMU side (never a hang)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    // The destination daemon's listener: takes the connection, reads a little, then closes it cleanly (FIN).
    const gone = createServer((c) => c.once('data', () => c.end()));
    await new Promise<void>((ok) => gone.listen(0, '127.0.0.1', ok));
    const src = await sourceRelay(await mkdtemp(join(root, 's-')), undefined, { host: '127.0.0.1', port: (gone.address() as { port: number }).port }, randomBytes(SECRET_BYTES));
    const qemu = await connect(src.uri);
    const closed = new Promise<void>((r) => qemu.on('close', () => r()).on('error', () => undefined));
    // More than the sockets hold: a relay that stopped reading would leave this write pending forever.
    qemu.write(Buffer.alloc(16 << 20, 7));
    await closed;
    await src.close();
    gone.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
