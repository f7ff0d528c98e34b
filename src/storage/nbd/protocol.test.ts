// The NBD server against our own client and hand-made byte streams: negotiation facts,
// pipelined I/O, block status, counters, and every kind of misuse — each answered by the
// protocol's error or a closed connection, with the server serving on afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { MemoryFile } from '../../blockio/index.ts';
import { createVhdx, openVhdx } from '../../vhd/index.ts';
import { BlockServer, type ServedDisk } from '../index.ts';
import { NbdTestClient, NbdError, connectSocket, optionPacket, requestPacket } from './test-client.ts';
import { SocketReader } from './socket-reader.ts';
import { tempDir, pattern } from '../test-support.ts';
import {
  NBDMAGIC, FLAG_C_FIXED_NEWSTYLE, OPT_LIST, OPT_EXPORT_NAME, OPT_ABORT, REP_SERVER, REP_ACK, REP_ERR_UNSUP,
  TF_READ_ONLY, TF_SEND_FLUSH, TF_SEND_FUA, TF_SEND_TRIM, TF_SEND_WRITE_ZEROES, TF_CAN_MULTI_CONN,
  CMD_READ, CMD_WRITE, EINVAL, EPERM, ENOSPC, STATE_HOLE, STATE_ZERO, SIMPLE_REPLY_MAGIC,
} from './protocol.ts';

const MiB = 1 << 20;
const tmp = tempDir('nbd-proto-');
const server = new BlockServer({ socketDir: tmp.dir });
let rw: ServedDisk, ro: ServedDisk, k4: ServedDisk;

async function memDisk(size: number, lss: 512 | 4096 = 512) {
  const f = new MemoryFile('mem');
  await createVhdx(f, { type: 'Dynamic', virtualSize: size, blockSize: MiB, logicalSectorSize: lss });
  return openVhdx(f);
}

before(async () => {
  const d = await memDisk(64 * MiB);
  await d.write(pattern(MiB, 1), 8 * MiB);
  rw = await server.serve(d, { exportName: 'rw', closeDisk: true });
  ro = await server.serve(await memDisk(8 * MiB), { exportName: 'ro', readOnly: true, closeDisk: true });
  k4 = await server.serve(await memDisk(8 * MiB, 4096), { exportName: 'k4', closeDisk: true });
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

/** Raw connection past the greeting, with fixed-newstyle client flags sent. */
async function rawSession(path: string, clientFlags = FLAG_C_FIXED_NEWSTYLE): Promise<{ s: Socket; r: SocketReader }> {
  const s = await connectSocket(path);
  const r = new SocketReader(s);
  const g = await r.take(18);
  assert.equal(g.readBigUInt64BE(0), NBDMAGIC);
  const f = Buffer.alloc(4);
  f.writeUInt32BE(clientFlags >>> 0, 0);
  s.write(f);
  return { s, r };
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

async function stillServes(): Promise<void> {
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  assert.deepEqual(await c.read(8 * MiB, 4096), Buffer.from(pattern(MiB, 1).subarray(0, 4096)));
  await c.disconnect();
}

test('negotiation: size, flags, block sizes from the disk', async () => {
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  assert.equal(c.facts.size, 64 * MiB);
  const want = TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES | TF_CAN_MULTI_CONN;
  assert.equal(c.facts.flags & want, want);
  assert.equal(c.facts.flags & TF_READ_ONLY, 0);
  assert.deepEqual([c.facts.minimumBlockSize, c.facts.maximumBlockSize], [512, 32 * MiB]);
  assert.ok(c.facts.contextId > 0);
  await c.disconnect();
  const r = await NbdTestClient.connect(ro.socketPath, '');
  assert.ok(r.facts.flags & TF_READ_ONLY);
  await r.disconnect();
  const k = await NbdTestClient.connect(k4.socketPath, 'k4');
  assert.equal(k.facts.minimumBlockSize, 4096);
  await assert.rejects(k.write(512, new Uint8Array(512)), (e: NbdError) => e.errno === EINVAL);
  await k.write(4096, pattern(4096, 9));
  assert.deepEqual(await k.read(4096, 4096), Buffer.from(pattern(4096, 9)));
  await k.disconnect();
});

test('pipelined writes and reads on two connections, block status, trim and write-zeroes', async () => {
  const a = await NbdTestClient.connect(rw.socketPath, 'rw');
  const b = await NbdTestClient.connect(rw.socketPath, 'rw');
  const writes = [];
  for (let i = 0; i < 64; i++) writes.push((i % 2 ? a : b).write(16 * MiB + i * 64 * 1024, pattern(64 * 1024, i), { fua: i % 8 === 0 }));
  await Promise.all(writes);
  await a.flush();
  const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => (i % 2 ? b : a).read(16 * MiB + i * 64 * 1024, 64 * 1024)));
  reads.forEach((r, i) => assert.deepEqual(r, Buffer.from(pattern(64 * 1024, i)), `chunk ${i}`));

  const st = await a.blockStatus(0, 32 * MiB);
  assert.deepEqual(st, [
    { length: 8 * MiB, flags: STATE_HOLE | STATE_ZERO },
    { length: MiB, flags: 0 },
    { length: 7 * MiB, flags: STATE_HOLE | STATE_ZERO },
    { length: 4 * MiB, flags: 0 },
    { length: 12 * MiB, flags: STATE_HOLE | STATE_ZERO },
  ]);
  await a.trim(16 * MiB, MiB);
  assert.equal((await a.blockStatus(16 * MiB, MiB))[0]!.flags, STATE_HOLE | STATE_ZERO);
  await a.writeZeroes(17 * MiB, 4096, { noHole: true });
  assert.ok((await a.read(17 * MiB, 4096)).every((x) => x === 0));
  await a.writeZeroes(18 * MiB, MiB);
  assert.ok((await b.read(18 * MiB, MiB)).every((x) => x === 0));
  await a.disconnect();
  await b.disconnect();
});

test('counters match a known workload: 100 × 4 KiB writes', async () => {
  const before = server.counters('rw');
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  for (let i = 0; i < 100; i++) await c.write(40 * MiB + i * 4096, pattern(4096, i));
  await c.read(40 * MiB, 20000 - (20000 % 512));
  await c.disconnect();
  const now = server.counters('rw');
  assert.equal(now.operations.write - before.operations.write, 100);
  assert.equal(now.bytesWritten - before.bytesWritten, 409600);
  assert.equal(now.operations.read - before.operations.read, 1);
  assert.equal(now.bytesRead - before.bytesRead, 19968);
  assert.equal(now.normalizedIos - before.normalizedIos, 100 + 3);
  assert.ok(now.averageLatencyMs > 0);
  assert.ok(now.normalizedIops >= 0);
});

test('misuse in transmission gets error replies, the connection goes on', async () => {
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  const errno = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return (e as NbdError).errno;
    }
    return 0;
  };
  assert.equal(await errno(c.read(64 * MiB - 512, 1024)), EINVAL, 'read past end');
  assert.equal(await errno(c.read(2 ** 60, 512)), EINVAL, 'huge offset');
  assert.equal(await errno(c.write(64 * MiB, new Uint8Array(512))), ENOSPC, 'write past end');
  assert.equal(await errno(c.read(100, 512)), EINVAL, 'unaligned offset');
  assert.equal(await errno(c.write(0, new Uint8Array(100))), EINVAL, 'unaligned length');
  assert.equal(await errno(c.read(0, 33 * MiB)), EINVAL, 'oversized read');
  assert.equal(await errno(c.raw(99, 0, 0, 0)), EINVAL, 'unknown command');
  assert.equal(await errno(c.raw(CMD_READ, 0x40, 0, 512)), EINVAL, 'unknown flag');
  assert.equal(await errno(c.read(0, 0)), EINVAL, 'zero length');
  assert.equal(await errno(c.blockStatus(60 * MiB, 8 * MiB)), EINVAL, 'block status past end');
  assert.equal((await c.read(8 * MiB, 512)).length, 512, 'still answering');
  await c.disconnect();
  const r = await NbdTestClient.connect(ro.socketPath, 'ro');
  assert.equal(await errno(r.write(0, new Uint8Array(512))), EPERM);
  assert.equal(await errno(r.trim(0, 512)), EPERM);
  assert.equal(await errno(r.writeZeroes(0, 512)), EPERM);
  await r.read(0, 512);
  await r.disconnect();
});

test('misuse that breaks the stream closes the connection; the server serves on', async () => {
  // Bad option magic.
  let { s, r } = await rawSession(rw.socketPath);
  s.write(Buffer.from('NOTOPTNS\0\0\0\x07\0\0\0\0', 'latin1'));
  await closed(s);
  // Unknown client flags.
  ({ s } = await rawSession(rw.socketPath, 0x80));
  await closed(s);
  // Oversized option.
  ({ s } = await rawSession(rw.socketPath));
  const big = optionPacket(99, Buffer.alloc(0));
  big.writeUInt32BE(1 << 30, 12);
  s.write(big);
  await closed(s);
  // EXPORT_NAME of an unknown export.
  ({ s } = await rawSession(rw.socketPath));
  s.write(optionPacket(OPT_EXPORT_NAME, Buffer.from('nope')));
  await closed(s);
  // Bad request magic after EXPORT_NAME (old client path, simple replies).
  ({ s, r } = await rawSession(rw.socketPath));
  s.write(optionPacket(OPT_EXPORT_NAME, Buffer.from('rw')));
  const info = await r.take(10 + 124);
  assert.equal(Number(info.readBigUInt64BE(0)), 64 * MiB);
  s.write(requestPacket(CMD_READ, 0, 7, 8 * MiB, 512));
  const rep = await r.take(16 + 512);
  assert.equal(rep.readUInt32BE(0), SIMPLE_REPLY_MAGIC);
  assert.equal(rep.readUInt32BE(4), 0);
  assert.equal(rep.readUInt32BE(12), 7);
  const bad = requestPacket(CMD_READ, 0, 8, 0, 512);
  bad.writeUInt32BE(0xdeadbeef, 0);
  s.write(bad);
  await closed(s);
  // Oversized write: an error reply, then the connection ends.
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  await assert.rejects(c.raw(CMD_WRITE, 0, 0, 64 * MiB), (e: NbdError) => e.errno === EINVAL);
  await closed(c.socket);
  await stillServes();
});

test('unknown options are refused, LIST and ABORT work', async () => {
  const { s, r } = await rawSession(rw.socketPath);
  const reply = async () => {
    const h = await r.take(20);
    const len = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: len ? Buffer.from(await r.take(len)) : Buffer.alloc(0) };
  };
  s.write(optionPacket(42, Buffer.from('whatever')));
  assert.equal((await reply()).type, REP_ERR_UNSUP);
  s.write(optionPacket(OPT_LIST));
  const srv = await reply();
  assert.equal(srv.type, REP_SERVER);
  assert.equal(srv.data.toString('utf8', 4), 'rw');
  assert.equal((await reply()).type, REP_ACK);
  s.write(optionPacket(OPT_ABORT));
  assert.equal((await reply()).type, REP_ACK);
  await closed(s);
});

test('abrupt disconnect mid-write: nothing written, server unharmed', async () => {
  const c = await NbdTestClient.connect(rw.socketPath, 'rw');
  const off = 50 * MiB;
  c.socket.write(requestPacket(CMD_WRITE, 0, 1000, off, MiB));
  c.socket.write(pattern(MiB / 2, 77));
  await new Promise((r) => setTimeout(r, 50));
  c.destroy();
  // Also: disconnect while reads are in flight.
  const d = await NbdTestClient.connect(rw.socketPath, 'rw');
  for (let i = 0; i < 32; i++) d.read(0, MiB).catch(() => undefined);
  d.destroy();
  const e = await NbdTestClient.connect(rw.socketPath, 'rw');
  assert.equal((await e.blockStatus(off, MiB))[0]!.flags, STATE_HOLE | STATE_ZERO);
  await e.disconnect();
  await stillServes();
});

test('stop(): sockets go away, clients see the connection end', async () => {
  const extra = await server.serve(await memDisk(MiB), { exportName: 'tmp', closeDisk: true });
  const c = await NbdTestClient.connect(extra.socketPath, 'tmp');
  await extra.stop();
  await closed(c.socket);
  assert.equal(server.get('tmp'), undefined);
  await assert.rejects(connectSocket(extra.socketPath));
});
