// The migration relay with real sockets and a stand-in for the destination QEMU (a unix listener
// that records what each connection carried): every connection of the source arrives whole, in
// the order the source opened them (QEMU 7.2 takes the first as the main channel), each over TLS
// behind its own secret; a connection with a wrong secret, or without TLS, never reaches QEMU; a
// listener whose certificate is not the prepared one gets no byte (not even the secret) and the
// source QEMU's side is closed with the reason kept for the move's error; closing the source relay
// right after the source has written lets the bytes still in flight through; a destination that
// goes away cleanly mid-stream closes the source QEMU's side instead of leaving it blocked.
// The bound relay (a stream over QEMU's own TLS that must leave from a given address) passes
// bytes both ways whole, from that address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { isVmhostError } from '../common/index.ts';
import { connectPinned } from '../common/pinned-tls.ts';
import { testTlsIdentity } from '../../test/support/tls-identity.ts';
import { boundRelay, destinationRelay, routeSource, sourceRelay, SECRET_BYTES } from './migration-stream.ts';

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

test('relay: five connections arrive whole and in order over TLS, each behind the secret; a wrong secret or no TLS is dropped; close drains', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    const secret = randomBytes(SECRET_BYTES);
    const identity = await testTlsIdentity();
    const qemuSock = join(root, 'in.sock');
    const { received } = await fakeQemu(qemuSock, 5);
    const dst = await destinationRelay('127.0.0.1', identity, qemuSock, secret, await mkdtemp(join(root, 'd-')));
    // Someone without the secret (over TLS), and someone speaking plain TCP: both dropped before they reach QEMU.
    const intruder = await connectPinned({ host: '127.0.0.1', port: dst.port }, () => undefined);
    const plain = createConnection({ host: '127.0.0.1', port: dst.port });
    const dropped = [intruder, plain].map((c) => new Promise<void>((r) => c.on('close', () => r()).on('error', () => undefined)));
    intruder.write(randomBytes(SECRET_BYTES + 100));
    plain.write(Buffer.concat([secret, randomBytes(100)]));
    await Promise.all(dropped);
    const src = await sourceRelay(await mkdtemp(join(root, 's-')), undefined, { host: '127.0.0.1', port: dst.port, fingerprint: identity.fingerprint }, secret);
    // The main channel first, then four channels opened at once; 4 MiB each, more than the sockets buffer.
    const payloads = Array.from({ length: 5 }, (_, i) => Buffer.alloc(4 << 20, i + 1));
    const main = await connect(src.uri);
    const channels = [main, ...(await Promise.all(payloads.slice(1).map(() => connect(src.uri))))];
    await Promise.all(channels.map((c, i) => new Promise<void>((r) => c.end(payloads[i]!, () => r()))));
    await src.close(); // at once: what the relay still holds must get through
    const got = await received;
    assert.deepEqual(got.map((b) => [b.length, b[0]]), payloads.map((p) => [p.length, p[0]]));
    assert.ok(got.every((b, i) => b.equals(payloads[i]!)), 'every byte of every connection arrived');
    assert.equal(src.refused(), undefined);
    await dst.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('relay: a listener presenting another certificate than the prepared one gets nothing; QEMU\'s side closes and the reason is kept', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    const identity = await testTlsIdentity();
    // The man in the middle: a TLS listener with a certificate of its own, recording every byte it decrypts.
    const mitm = await testTlsIdentity(await mkdtemp(join(root, 'm-')));
    let leaked = 0;
    const impostor = createTlsServer({ key: mitm.key, cert: mitm.cert }, (c) => c.on('data', (b: Buffer) => { leaked += b.length; }).on('error', () => undefined));
    await new Promise<void>((ok) => impostor.listen(0, '127.0.0.1', ok));
    const port = (impostor.address() as { port: number }).port;
    const src = await sourceRelay(await mkdtemp(join(root, 's-')), undefined, { host: '127.0.0.1', port, fingerprint: identity.fingerprint }, randomBytes(SECRET_BYTES));
    const qemu = await connect(src.uri);
    const closed = new Promise<void>((r) => qemu.on('close', () => r()).on('error', () => undefined));
    qemu.write(Buffer.alloc(1 << 20, 7));
    await closed;
    const why = src.refused();
    assert.ok(isVmhostError(why, 'TLS_CERTIFICATE_CHANGED'), `refused with ${String(why)}`);
    assert.ok(why.message.includes(mitm.fingerprint) && why.message.includes(identity.fingerprint), why.message);
    await src.close();
    await new Promise<void>((r) => impostor.close(() => r()));
    assert.equal(leaked, 0, 'not a byte (secret or stream) reached the impostor');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('relay: a destination that goes away without an error while the source QEMU still sends closes the QEMU side (never a hang)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    // The destination daemon's listener: takes the connection, reads a little, then closes it cleanly (close_notify, FIN).
    const identity = await testTlsIdentity();
    const gone = createTlsServer({ key: identity.key, cert: identity.cert }, (c) => c.once('data', () => c.end()));
    await new Promise<void>((ok) => gone.listen(0, '127.0.0.1', ok));
    const src = await sourceRelay(await mkdtemp(join(root, 's-')), undefined, { host: '127.0.0.1', port: (gone.address() as { port: number }).port, fingerprint: identity.fingerprint }, randomBytes(SECRET_BYTES));
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

test('bound relay: a stream QEMU carries over its own TLS leaves from the migration network\'s address, both ways whole; routeSource says what the kernel would pick', async () => {
  const root = await mkdtemp(join(tmpdir(), 'relay-'));
  try {
    assert.equal(await routeSource('127.0.0.1'), '127.0.0.1');
    // The far end echoes; it sees the connection come from 127.0.0.2 (all of 127/8 is this host's), not the kernel's 127.0.0.1.
    let from = '';
    const echo = createServer((c) => { from = c.remoteAddress ?? ''; c.pipe(c); });
    await new Promise<void>((ok) => echo.listen(0, '127.0.0.1', ok));
    const relay = await boundRelay(await mkdtemp(join(root, 'b-')), undefined, { host: '127.0.0.1', port: (echo.address() as { port: number }).port, localAddress: '127.0.0.2' });
    const payload = randomBytes(3 << 20);
    const c = await connect(relay.uri);
    const back: Buffer[] = [];
    let n = 0;
    const echoed = new Promise<void>((r) => c.on('data', (b: Buffer) => { back.push(b); n += b.length; if (n === payload.length) r(); }));
    c.write(payload);
    await echoed;
    assert.ok(Buffer.concat(back).equals(payload), 'the bytes came back whole');
    assert.equal(from, '127.0.0.2');
    assert.equal(relay.bytes(), payload.length);
    c.end();
    await relay.close();
    echo.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
