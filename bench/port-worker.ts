// The sender/receiver worker of the socket benches (bench/switch.ts, bench/nvgre.ts): one
// thread that writes QEMU-framed records into one unix socket as fast as it drains (or, with
// `pace`, at that many frames/s) and counts what arrives on another, with its own CPU time per
// frame received.
import { Worker } from 'node:worker_threads';
import { buildEthernet, buildIpv4, buildUdp, ipv4ToBytes, macFromNumber, ETHERTYPE_IPV4, IPPROTO_UDP } from '../src/packet/index.ts';

/** A UDP frame of `size` bytes (Ethernet header included) from MAC/IP `src` to `dst`. */
export function udpFrame(src: number, dst: number, srcIp: number, dstIp: number, size = 128): Uint8Array {
  const u = buildUdp({ srcPort: 40000, dstPort: 5001, payload: new Uint8Array(size - 42), src: ipv4ToBytes(srcIp), dst: ipv4ToBytes(dstIp) });
  return buildEthernet({ src: macFromNumber(src), dst: macFromNumber(dst), ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: srcIp, dst: dstIp, protocol: IPPROTO_UDP, payload: u }) });
}

// The worker: a sender and a receiver. mode 'direct' = its own socket pair; otherwise it
// connects to the two given paths (switch ports or relay ends).
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { mode, aPath, bPath, direct, seconds, record, hello, pace } = workerData;
const chunk = Buffer.concat(Array.from({ length: 64 }, () => Buffer.from(record)));
// This thread's CPU time, ns (/proc/thread-self: the worker's own task, not the process's).
const cpuNs = () => Number(require('node:fs').readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
function pump(sock, stopAt) {
  if (pace) return paced(sock, stopAt);
  const go = () => { while (Date.now() < stopAt) { if (!sock.write(chunk)) { sock.once('drain', go); return; } } sock.end(); };
  go();
}
// Paced: every millisecond the records due by then at \`pace\` frames/s; what the socket has not
// taken (more than 1 MiB queued in this thread) is skipped, not queued without bound.
let offered = 0;
function paced(sock, stopAt) {
  const start = Date.now(), rl = record.length;
  const tick = () => {
    const now = Date.now();
    if (now >= stopAt) { sock.end(); return; }
    let due = Math.floor(((now - start) * pace) / 1000) - offered;
    while (due > 0 && sock.writableLength < (1 << 20)) { const k = Math.min(due, 64); sock.write(k === 64 ? chunk : chunk.subarray(0, k * rl)); due -= k; offered += k; }
    if (due > 0) offered += due;
    setTimeout(tick, 1);
  };
  tick();
}
async function connect(p) { return new Promise((r, j) => { const s = net.connect(p); s.once('connect', () => r(s)); s.once('error', j); }); }
(async () => {
  let rx, tx;
  if (mode === 'direct') {
    const srv = net.createServer();
    const accepted = new Promise((r) => srv.once('connection', r));
    await new Promise((r) => srv.listen(direct, r));
    tx = await connect(direct);
    rx = await accepted;
  } else {
    tx = await connect(aPath);
    rx = await connect(bPath);
    if (hello) rx.write(Buffer.from(hello));
    await new Promise((r) => setTimeout(r, 200));
  }
  let bytes = 0, t0 = 0, t1 = 0;
  rx.on('data', (c) => { if (!t0) t0 = Date.now(); bytes += c.length; t1 = Date.now(); });
  const c0 = cpuNs();
  const stopAt = Date.now() + seconds * 1000;
  pump(tx, stopAt);
  await new Promise((r) => setTimeout(r, seconds * 1000 + 500));
  parentPort.postMessage({ bytesPerSec: bytes / ((t1 - t0) / 1000), cpuNsPerFrame: (cpuNs() - c0) / (bytes / record.length) });
  process.exit(0);
})();
`;

/** Bytes/s received, and the worker's CPU ns per frame received (its sending and receiving). */
export function runWorker(seconds: number, data: Record<string, unknown>): Promise<{ bytesPerSec: number; cpuNsPerFrame: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerCode, { eval: true, workerData: { seconds, ...data } });
    w.once('message', (m: { bytesPerSec: number; cpuNsPerFrame: number }) => resolve(m));
    w.once('error', reject);
  });
}

/** One frame in QEMU's stream framing (4-byte big-endian length first), `size` bytes of frame. */
export function record(src: number, dst: number, size = 1514): Buffer {
  const f = udpFrame(src, dst, 0x0a000001, 0x0a000002, size);
  const r = Buffer.alloc(4 + f.length);
  r.writeUInt32BE(f.length, 0);
  r.set(f, 4);
  return r;
}
