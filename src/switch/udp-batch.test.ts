// The uplink's batching UDP socket (udp-batch.ts, native/vmhost-udp.c): a GRO-coalesced
// receive is cut back into the datagrams that were sent, a GSO send of a burst arrives whole
// and in order, datagrams from anyone but the peer are dropped, and an uplink on the addon
// talks to one on node:dgram (the fallback, VMHOST_NO_UDP_ADDON=1) both ways. Under CI=true
// the addon must have loaded (scripts/build.sh builds it); elsewhere its tests skip.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { BatchedUdpSocket, forEachDatagram, udpAddon, udpAddonStatus, type UdpAddon } from './udp-batch.ts';
import { UdpUplinkIo } from './uplink.ts';
import { freeUdpPort } from './test-support.ts';

function addonOrSkip(t: TestContext): UdpAddon | undefined {
  const status = udpAddonStatus();
  if (status.native) return udpAddon();
  if (process.env.CI === 'true') assert.fail(`UDP batch addon not loaded: ${status.reason}`);
  t.skip(`UDP batch addon not loaded: ${status.reason}`);
  return undefined;
}

/** Datagram i: `len` bytes of value i (so a cut in the wrong place shows). */
const datagram = (i: number, len: number): Buffer => Buffer.alloc(len, i & 0xff);

/** A datagram sink whose `all` resolves with copies of the first `n` datagrams once they have come. */
function collector(n: number): { onDatagram: (d: Uint8Array) => void; all: Promise<Buffer[]> } {
  const got: Buffer[] = [];
  let done!: (v: Buffer[]) => void;
  const all = new Promise<Buffer[]>((r) => { done = r; });
  return { onDatagram: (d) => { got.push(Buffer.from(d)); if (got.length === n) done(got); }, all };
}

test('forEachDatagram cuts a coalesced datagram at its segment size, the last piece shorter', () => {
  // Batch: a lone 5-byte datagram, then 3 × 4 bytes + 2 coalesced (GRO, segment size 4), then a lone 0-byte keepalive.
  const data = Buffer.concat([datagram(1, 5), datagram(2, 4), datagram(3, 4), datagram(4, 4), datagram(5, 2)]);
  const meta = Buffer.alloc(36);
  [[0, 5, 5], [5, 14, 4], [19, 0, 0]].forEach(([off, len, seg], i) => {
    meta.writeUInt32LE(off!, 12 * i); meta.writeUInt32LE(len!, 12 * i + 4); meta.writeUInt32LE(seg!, 12 * i + 8);
  });
  const out: Uint8Array[] = [];
  forEachDatagram(data, meta, 3, (d) => out.push(d));
  assert.deepEqual(out.map((d) => [...d]), [[1, 1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4], [5, 5], []]);
});

test('a GSO burst is received (GRO-coalesced where the kernel does it) and cut back into the datagrams sent, in order', async (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  // 40 full-size datagrams, a shorter one that ends the GSO run, then 3 of another size.
  const lens = [...Array<number>(40).fill(1556), 700, 90, 90, 90];
  const rx = collector(lens.length);
  const b = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 0, bufferBytes: 1 << 20 }, rx.onDatagram);
  let coalesced = 0;
  // The same burst seen raw: how many of the kernel's datagrams were coalesced ones.
  const rawRx = collector(lens.length);
  const raw = addon.open(false, '127.0.0.1', 0, '127.0.0.1', 0, 1 << 20, (d, meta, count) => {
    for (let i = 0; i < count; i++) if (meta.readUInt32LE(12 * i + 8) < meta.readUInt32LE(12 * i + 4)) coalesced++;
    forEachDatagram(d, meta, count, rawRx.onDatagram);
  });
  const a = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: b.port, bufferBytes: 1 << 20 }, () => {});
  const toRaw = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: raw.port, bufferBytes: 1 << 20 }, () => {});
  try {
    for (const [i, len] of lens.entries()) { a.send(datagram(i, len)); toRaw.send(datagram(i, len)); }
    const got = await rx.all;
    assert.deepEqual(got.map((d) => d.length), lens);
    got.forEach((d, i) => assert.ok(d.every((x) => x === (i & 0xff)), `datagram ${i} holds only its own bytes`));
    assert.equal(a.sendDrops, 0);
    assert.deepEqual((await rawRx.all).map((d) => d.length), lens);
    const { gso, gro } = a.offloads;
    t.diagnostic(`GSO ${gso}, GRO ${gro}, coalesced receives ${coalesced}`);
    if (gso && gro) {
      assert.ok(coalesced > 0, 'with GSO and GRO on loopback, a run arrives as one coalesced datagram');
    }
  } finally {
    a.close(); b.close(); toRaw.close(); addon.close(raw.handle);
  }
});

test('datagrams from an address or port other than the peer\'s are dropped by the addon', async (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  const peer = createSocket('udp4'), stranger = createSocket('udp4');
  peer.bind(0, '127.0.0.1'); stranger.bind(0, '127.0.0.1');
  await Promise.all([once(peer, 'listening'), once(stranger, 'listening')]);
  const rx = collector(1);
  const s = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: peer.address().port, bufferBytes: 1 << 20 }, rx.onDatagram);
  try {
    // The stranger's datagram goes first: were it kept, it would be the one collected.
    await new Promise<void>((r) => stranger.send(datagram(9, 30), s.port, '127.0.0.1', () => r()));
    await new Promise<void>((r) => peer.send(datagram(7, 20), s.port, '127.0.0.1', () => r()));
    const [only] = await rx.all;
    assert.deepEqual([only!.length, only![0]], [20, 7]);
  } finally {
    s.close(); peer.close(); stranger.close();
  }
});

test('an uplink on the addon and one on node:dgram (VMHOST_NO_UDP_ADDON=1) carry frames both ways', async (t) => {
  if (!addonOrSkip(t)) return;
  const frames = (n: number, len: number): Buffer[] => Array.from({ length: n }, (_, i) => datagram(i + 1, len));
  const rxNative = collector(50), rxDgram = collector(50);
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const native = await UdpUplinkIo.open({ localAddress: '127.0.0.1', localPort: pa, remoteAddress: '127.0.0.1', remotePort: pb },
    { onFrame: (f) => rxNative.onDatagram(f), onError: () => {} });
  const saved = process.env.VMHOST_NO_UDP_ADDON;
  process.env.VMHOST_NO_UDP_ADDON = '1';
  let plain: UdpUplinkIo;
  try {
    plain = await UdpUplinkIo.open({ localAddress: '127.0.0.1', localPort: pb, remoteAddress: '127.0.0.1', remotePort: pa },
      { onFrame: (f) => rxDgram.onDatagram(f), onError: () => {} });
  } finally {
    if (saved === undefined) delete process.env.VMHOST_NO_UDP_ADDON; else process.env.VMHOST_NO_UDP_ADDON = saved;
  }
  try {
    assert.deepEqual([native.batched, plain.batched], [true, false]);
    const sent = frames(50, 1514);
    for (const f of sent) plain.send(f, 0, f.length);
    assert.deepEqual((await rxNative.all).map((f) => [f.length, f[0]]), sent.map((f) => [f.length, f[0]]));
    const sentBack = frames(50, 64);
    for (const f of sentBack) native.send(f, 0, f.length);
    assert.deepEqual((await rxDgram.all).map((f) => [f.length, f[0]]), sentBack.map((f) => [f.length, f[0]]));
  } finally {
    await Promise.all([native.close(), plain.close()]);
  }
});

test('a lent slot is sent where it lies; one whose loan ended (another datagram staged over it) is dropped, never sent garbled', async (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  const rx = collector(4);
  const b = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 0, bufferBytes: 1 << 20 }, rx.onDatagram);
  const a = BatchedUdpSocket.open(addon, { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: b.port, bufferBytes: 1 << 20 }, () => {});
  try {
    a.send(datagram(1, 100));
    const slot = a.lend(200)!;
    assert.ok(slot !== null);
    assert.equal(a.lend(50), null, 'one loan at a time');
    slot.fill(2);
    a.send(slot);
    const stale = a.lend(300)!;
    stale.fill(3);
    a.send(datagram(4, 300)); // staged over the lent slot: its loan ends
    a.send(stale);
    assert.equal(a.lendExpired, 1);
    const next = a.lend(60)!;
    next.fill(5);
    a.send(next.subarray(0, 40)); // a shorter datagram than lent is fine
    const got = await rx.all;
    assert.deepEqual(got.map((d) => [d.length, d[0], d.every((x) => x === d[0])]), [[100, 1, true], [200, 2, true], [300, 4, true], [40, 5, true]]);
  } finally {
    a.close(); b.close();
  }
});
