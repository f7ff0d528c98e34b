// NVGRE through the switch, in-process (inject → sink, no sockets): frames/s and main-thread
// CPU ns per frame of
//   plain   port → port, default forwarding, no extension (the baseline);
//   vsid    port → port in one virtual subnet on this host, through vmhost.hnv;
//   encap   port → the uplink: looked up, encapsulated (RFC 7637) and staged in the uplink's
//           send batch, whose sendmmsg is cut off here (the addon's send replaced by a count:
//           the bench measures the switch and the staging, not the kernel's UDP);
//   decap   NVGRE injected on the uplink → checked, decapsulated, to the VM port;
// and the encoder alone (a destination's NvgreTemplate, µs per frame; 2.58 µs when it copied the frame 3×).
// 128-byte UDP frames, one flow per destination MAC in turn.
// And end to end over the VM ports' unix sockets (QEMU's framing; sender and receiver in a
// worker thread, the switches in the main thread; 1514- and 64-byte frames):
//   plain   VM port a → switch → VM port b, one Private switch (bench/switch.ts's port → port);
//   plain2  VM port a → switch A → A's UDP uplink on loopback → switch B → VM port b, untagged,
//           no virtual subnet: the same two hosts and provider link as nvgre, without the
//           encapsulation (nvgre / plain2 is what encapsulation costs);
//   nvgre   VM port a → switch A → encapsulated, over A's UDP uplink on loopback → switch B →
//           decapsulated → VM port b. Host B is a process of its own (nvgre-peer.ts) in both
//           two-host rows. Provider MTU 1600 so the 1514-byte frame (+ 42 bytes of NVGRE) fits.
// Printed: frames/s received by the worker, and the CPU all threads spent per frame received
// (the worker's own + the main thread's): on a loaded machine the CPU ratio is the one that holds.
// Then plain2 and nvgre again with the sender paced (PACE of the round's unpaced nvgre rate,
// default 0.5) — the same offered load for both, below what the provider link loses at (it has
// no flow control): the paced rows' CPU per frame is the encapsulation's cost without losses.
// Ratios nvgre / plain2 (the cost of encapsulation: the goal is ≤ 20 %, ratio ≥ 0.8) and
// nvgre / plain (one host, one switch: also the cost of a second host and a UDP provider link).
// VMHOST_NO_UDP_ADDON=1 runs the uplinks on Node's dgram instead of the batching addon.
// `encap` / `decap` runs that in-process row alone, for a cpu profile: node --cpu-prof --import tsx bench/nvgre.ts 3 3 decap
// `KIND-SIZE` (plain2-64, nvgre-64, …) runs that end-to-end row alone, unpaced, for cpu profiles of host A (this process)
// and host B: PEER_CPU_PROF=/tmp/b node --cpu-prof --cpu-prof-dir=/tmp/a --import tsx bench/nvgre.ts 6 1 nvgre-64
// Run: node --import tsx bench/nvgre.ts [seconds per measurement, default 3] [rounds, default 3] [all | inproc | sockets | encap | decap | KIND-SIZE]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvgreTemplate, encodeNvgre, formatMacNumber, nvgreTemplate, parseIpv4Address } from '../src/packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../src/switch/index.ts';
import { freeUdpPort } from '../src/switch/test-support.ts';
import { udpAddon } from '../src/switch/udp-batch.ts';
import { HNV_EXTENSION, paMac } from '../src/hnv/index.ts';
import { LOCAL, PA_HERE, PA_THERE, PEER, VSID, nvgreHost, policy, spawnPeer } from './nvgre-peer.ts';
import { record, runWorker, udpFrame as frameOf } from './port-worker.ts';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);
const parts = process.argv[4] ?? 'all';
/** The paced rows' rate: this fraction of the round's unpaced nvgre frames/s. */
const PACE = Number(process.env.PACE ?? 0.5);
/** Provider MTU of the end-to-end case: a 1514-byte customer frame + 42 bytes of NVGRE fits. */
const PROVIDER_MTU = 1600;

function udpFrame(src: number, dst: number): Uint8Array { return frameOf(src, dst, 0x0a000001, 0x0a000002); }

function mainThreadCpuNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}


type Kind = 'plain' | 'vsid' | 'encap' | 'decap';

async function rate(kind: Kind): Promise<{ rate: number; cpuNs: number }> {
  const sw = await VirtualSwitch.create({ name: 'bench', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 9 } });
  let delivered = 0;
  // The uplink stages as it would; only the sendmmsg is cut off (counted instead). Without the addon, its send is.
  const addon = udpAddon();
  const sendmmsg = addon?.send;
  if (addon) addon.send = (_h, _d, lengths, n) => { for (let i = 0; i < n; i++) if (lengths.readUInt32LE(4 * i) > 0) delivered++; return n; }; // not the keepalives
  else (sw as unknown as { ports: Map<string, { io: { send(): string } }> }).ports.get(UPLINK_PORT_ID)!.io.send = () => { delivered++; return 'ok'; };
  const vsid = kind === 'plain' ? {} : { virtualSubnetId: VSID };
  await sw.addPort({ id: 'a', policy: { mac: formatMacNumber(LOCAL), ...vsid }, sink: () => { delivered++; } });
  await sw.addPort({ id: 'b', policy: kind === 'encap' || kind === 'decap' ? vsid : { mac: '52:54:00:00:00:02', ...vsid }, sink: () => { delivered++; } });
  if (kind !== 'plain') sw.addExtension(HNV_EXTENSION, { config: { policy: policy() } as unknown as Record<string, unknown> });
  // b's MAC learned (plain, vsid) before the timed run.
  if (kind === 'plain' || kind === 'vsid') sw.inject('b', udpFrame(PEER, LOCAL));
  const inner = udpFrame(kind === 'decap' ? PEER : LOCAL, kind === 'decap' ? LOCAL : PEER);
  let frame = inner;
  if (kind === 'decap') {
    const e = encodeNvgre({ outerDst: paMac(parseIpv4Address(PA_HERE)), outerSrc: paMac(parseIpv4Address(PA_THERE)), providerSrc: parseIpv4Address(PA_THERE), providerDst: parseIpv4Address(PA_HERE), vsid: VSID, inner });
    if (!e.ok) throw new Error(e.detail);
    frame = e.frame;
  }
  const from = kind === 'decap' ? UPLINK_PORT_ID : 'a';
  const copy = Buffer.from(frame);
  const run = (n: number): void => { for (let i = 0; i < n; i++) { copy.set(frame); sw.inject(from, copy); } };
  run(100_000);
  await new Promise(setImmediate); // the warm-up's last uplink batch (and a flood of b's first frame) counted before the reset
  delivered = 0;
  let count = 0;
  const t0 = performance.now(), c0 = mainThreadCpuNs();
  while (performance.now() - t0 < seconds * 1000) { run(50_000); count += 50_000; }
  const result = { rate: count / ((performance.now() - t0) / 1000), cpuNs: (mainThreadCpuNs() - c0) / count };
  await new Promise(setImmediate); // the uplink's last batch leaves at the end of the tick
  if (delivered !== count) throw new Error(`${kind}: delivered ${delivered} of ${count} (${JSON.stringify(sw.stats().drops)})`);
  await sw.close();
  if (addon && sendmmsg) addon.send = sendmmsg;
  return result;
}

/** The data path's encoding: a frame behind the outer headers of its destination's template. */
function encoderUs(): number {
  const inner = udpFrame(LOCAL, PEER);
  const t = nvgreTemplate({ outerDst: paMac(1), outerSrc: paMac(2), providerSrc: 0x0a000001, providerDst: 0x0a000002 });
  if (!(t instanceof NvgreTemplate)) throw new Error(t.detail);
  for (let i = 0; i < 100_000; i++) t.encode(VSID, 7, inner);
  const n = 500_000, c0 = mainThreadCpuNs();
  for (let i = 0; i < n; i++) t.encode(VSID, 7, inner);
  return (mainThreadCpuNs() - c0) / n / 1000;
}

/** CPU time of all threads of process `pid` so far, ns. */
function processCpuNs(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0);
}

/** The kernel's count of UDP datagrams dropped because a socket's receive buffer was full (machine-wide). */
function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf('RcvbufErrors')]);
}

/**
 * cpuNs: all threads' CPU per frame delivered to b. cpuCarriedNs: each part's CPU per frame it
 * handled (the worker and host A: per frame a sent; host B: per frame its uplink received), so
 * frames a UDP provider link drops (no flow control between hosts) do not weigh on it.
 */
interface SocketResult { rate: number; cpuNs: number; cpuCarriedNs: number; lost: number; rcvbufErrors: number }

type SocketKind = 'plain' | 'plain2' | 'nvgre';

/**
 * Frames/s received by the worker and CPU ns per frame received of all threads (the worker's,
 * this main thread's, and for the two-host rows all of host B's process), over the ports'
 * sockets: 'plain' through one switch, 'plain2' and 'nvgre' from host A here to host B in its
 * own process (nvgre-peer.ts).
 */
async function socketRate(kind: SocketKind, size: number, dir: string, pace = 0): Promise<SocketResult> {
  const aPath = join(dir, 'a.sock'), bPath = join(dir, 'b.sock');
  const rec = record(LOCAL, PEER, size);
  const hello = record(PEER, LOCAL, size); // b speaks first so the plain switch learns where PEER is
  if (kind === 'plain') {
    const sw = await VirtualSwitch.create({ name: 'bench', type: 'Private' });
    await sw.addPort({ id: 'a', socketPath: aPath, policy: { mac: formatMacNumber(LOCAL) } });
    await sw.addPort({ id: 'b', socketPath: bPath, policy: { mac: formatMacNumber(PEER) } });
    const c0 = mainThreadCpuNs();
    const w = await runWorker(seconds, { mode: 'switch', aPath, bPath, record: rec, hello });
    const frames = sw.portStats('b').txFrames, sent = sw.portStats('a').rxFrames;
    const cpu = (mainThreadCpuNs() - c0) / frames;
    await sw.close();
    return { rate: w.bytesPerSec / rec.length, cpuNs: w.cpuNsPerFrame + cpu, cpuCarriedNs: w.cpuNsPerFrame + cpu, lost: 1 - frames / sent, rcvbufErrors: 0 };
  }
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const plain = kind === 'plain2';
  const peer = await spawnPeer({ localPort: pb, remotePort: pa, socketPath: bPath, providerMtu: PROVIDER_MTU, plain });
  try {
    const sw = await nvgreHost({ localPort: pa, remotePort: pb, pa: PA_HERE, mac: LOCAL, port: 'a', socketPath: aPath, providerMtu: PROVIDER_MTU, plain });
    const c0 = mainThreadCpuNs(), b0 = processCpuNs(peer.pid), e0 = udpRcvbufErrors();
    const w = await runWorker(seconds, { mode: 'switch', aPath, bPath, record: rec, hello, pace });
    const cpuA = mainThreadCpuNs() - c0, cpuB = processCpuNs(peer.pid) - b0, rcvbufErrors = udpRcvbufErrors() - e0;
    const st = await peer.stats();
    const sent = sw.portStats('a').rxFrames, encapsulated = sw.portStats(UPLINK_PORT_ID).txFrames;
    const drops = { a: sw.stats().drops, b: st.drops };
    await sw.close();
    if ([drops.a, drops.b].some((d) => Object.keys(d).some((r) => r !== 'port-not-connected'))) console.log(`# ${kind} ${size} B: drops in the switches ${JSON.stringify(drops)}`);
    console.log(`# ${kind} ${size} B${pace ? ` paced at ${(pace / 1e3).toFixed(0)} k/s` : ''}: CPU per frame delivered: worker ${w.cpuNsPerFrame.toFixed(0)} ns, host A main thread ${(cpuA / st.delivered).toFixed(0)} ns, host B process ${(cpuB / st.delivered).toFixed(0)} ns; a sent ${sent}, A encapsulated ${encapsulated}, B's uplink received ${st.uplinkIn}, b delivered ${st.delivered}; UDP receive-buffer drops (machine-wide) ${rcvbufErrors}`);
    const cpuCarriedNs = (w.cpuNsPerFrame * st.delivered + cpuA) / sent + cpuB / st.uplinkIn;
    return { rate: w.bytesPerSec / rec.length, cpuNs: w.cpuNsPerFrame + (cpuA + cpuB) / st.delivered, cpuCarriedNs, lost: 1 - st.delivered / sent, rcvbufErrors };
  } finally {
    await peer.stop();
  }
}

const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
console.log(`nvgre bench: ${seconds} s × ${rounds} rounds, load average ${load()}`);
const alone = parts === 'encap' || parts === 'decap' ? parts : null;
for (let r = 1; r <= rounds && alone !== null; r++) {
  const e = await rate(alone!);
  console.log(`round ${r} ${alone} alone: ${(e.rate / 1e6).toFixed(2)} M/s ${e.cpuNs.toFixed(0)} ns   (load ${load()})`);
}
if (alone !== null) process.exit(0);
const oneRow = /^(plain|plain2|nvgre)-(\d+)$/.exec(parts);
if (oneRow) {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-nvgrebench-'));
  try {
    for (let r = 1; r <= rounds; r++) {
      const x = await socketRate(oneRow[1] as SocketKind, Number(oneRow[2]), dir);
      console.log(`round ${r} ${parts}: ${(x.rate / 1e3).toFixed(0)} k frames/s, ${x.cpuNs.toFixed(0)} ns CPU per frame, lost ${(100 * x.lost).toFixed(1)} %   (load ${load()})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
const inproc = { rate: [] as number[], cpu: [] as number[] };
for (let r = 1; r <= rounds && parts !== 'sockets'; r++) {
  const out: Record<string, { rate: number; cpuNs: number }> = {};
  for (const k of ['plain', 'vsid', 'encap', 'decap'] as const) out[k] = await rate(k);
  const p = out.plain!;
  const row = (k: Kind): string => `${k} ${(out[k]!.rate / 1e6).toFixed(2)} M/s ${out[k]!.cpuNs.toFixed(0)} ns (×${(out[k]!.rate / p.rate).toFixed(2)} by rate, ×${(p.cpuNs / out[k]!.cpuNs).toFixed(2)} by CPU)`;
  // encap + decap is what one frame costs across two hosts, against one plain forward on each.
  inproc.cpu.push((2 * p.cpuNs) / (out.encap!.cpuNs + out.decap!.cpuNs));
  inproc.rate.push(2 / (p.rate / out.encap!.rate + p.rate / out.decap!.rate));
  console.log(`round ${r} in-process: ${(['plain', 'vsid', 'encap', 'decap'] as const).map(row).join(' | ')} | encoder ${encoderUs().toFixed(3)} µs/frame   (load ${load()})`);
}
type Ratios = Record<'rate' | 'cpu' | 'carried', number[]>;
const sock: Record<number, { one: Ratios; two: Ratios; paced: Ratios }> = {};
for (const size of [1514, 64]) sock[size] = { one: { rate: [], cpu: [], carried: [] }, two: { rate: [], cpu: [], carried: [] }, paced: { rate: [], cpu: [], carried: [] } };
const dir = mkdtempSync(join(tmpdir(), 'vmhost-nvgrebench-'));
try {
  for (let r = 1; r <= rounds && parts !== 'inproc'; r++) {
    for (const size of [1514, 64]) {
      const plain = await socketRate('plain', size, dir);
      const plain2 = await socketRate('plain2', size, dir);
      const nvgre = await socketRate('nvgre', size, dir);
      const push = (to: Ratios, base: SocketResult): string => {
        to.rate.push(nvgre.rate / base.rate);
        to.cpu.push(base.cpuNs / nvgre.cpuNs);
        to.carried.push(base.cpuCarriedNs / nvgre.cpuCarriedNs);
        return `${(nvgre.rate / base.rate).toFixed(2)} by rate, ${(base.cpuNs / nvgre.cpuNs).toFixed(2)} by CPU, ${(base.cpuCarriedNs / nvgre.cpuCarriedNs).toFixed(2)} by CPU carried`;
      };
      const row = (x: SocketResult): string => `${(x.rate / 1e3).toFixed(0)} k frames/s (${((x.rate * size * 8) / 1e9).toFixed(2)} Gbit/s), ${x.cpuNs.toFixed(0)} ns CPU per frame (${x.cpuCarriedNs.toFixed(0)} carried), lost ${(100 * x.lost).toFixed(1)} %`;
      console.log(`round ${r} sockets ${size} B: plain ${row(plain)} | plain2 ${row(plain2)} | nvgre ${row(nvgre)} | nvgre / plain2 ${push(sock[size]!.two, plain2)} | nvgre / plain ${push(sock[size]!.one, plain)}   (load ${load()})`);
      const pace = Math.max(1000, Math.round(PACE * nvgre.rate));
      const paced2 = await socketRate('plain2', size, dir, pace);
      const pacedNvgre = await socketRate('nvgre', size, dir, pace);
      const p = sock[size]!.paced;
      p.rate.push(pacedNvgre.rate / paced2.rate); p.cpu.push(paced2.cpuNs / pacedNvgre.cpuNs); p.carried.push(paced2.cpuCarriedNs / pacedNvgre.cpuCarriedNs);
      console.log(`round ${r} sockets ${size} B paced at ${(pace / 1e3).toFixed(0)} k frames/s: plain2 ${row(paced2)} | nvgre ${row(pacedNvgre)} | nvgre / plain2 ${(pacedNvgre.rate / paced2.rate).toFixed(2)} by rate, ${(paced2.cpuNs / pacedNvgre.cpuNs).toFixed(2)} by CPU, ${(paced2.cpuCarriedNs / pacedNvgre.cpuCarriedNs).toFixed(2)} by CPU carried   (load ${load()})`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const ratio = (x: { rate: number[]; cpu: number[]; carried?: number[] }): string =>
  `${median(x.rate).toFixed(2)} by rate, ${median(x.cpu).toFixed(2)} by CPU${x.carried ? `, ${median(x.carried).toFixed(2)} by CPU carried` : ''}`;
if (parts !== 'sockets') console.log(`median in-process, plain (×2) / (encap + decap): ${ratio(inproc)}   (goal ≥ 0.8)`);
if (parts !== 'inproc') {
  for (const size of [1514, 64]) {
    console.log(`median end to end over sockets, ${size} B frames, nvgre / plain2 (two hosts): ${ratio(sock[size]!.two)}   (goal ≥ 0.8); nvgre / plain (one host): ${ratio(sock[size]!.one)}; paced: ${ratio(sock[size]!.paced)}`);
  }
}
