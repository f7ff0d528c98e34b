// Virtual switch benchmark.
// 1. Frames/s through the full pipeline, in-process (inject → sink, no sockets): a sender
//    with every guard on (MAC spoofing off, DHCP, router and ARP guards) and 100 extended
//    ACL rules (the traffic matches only the last, lowest-weight one), a receiver with
//    metering ACLs, 1,000 learned MACs, unicast UDP to all of them in turn — against the
//    same switch and traffic with no policy. Printed as a ratio.
// 2. Bytes/s between two ports over their unix stream sockets (QEMU's framing, 1514-byte
//    frames; sender and receiver in a worker thread, the switch in the main thread) against
//    a raw unix socket pair in the same worker (the physical limit here), and against a
//    plain relay (read a socket, write another, no switching) in the main thread. Besides
//    bytes/s, the CPU all threads spent per frame (the worker's own, plus the main thread's
//    for the relay and the switch): on a loaded machine, where the threads wait for a CPU
//    more than they run, that ratio is what the throughput ratio would be if CPU were the
//    only limit, and it does not swing with the load. Where a C compiler is at hand, also
//    against bench/relay-floor.c: the same relay in C with blocking I/O — what one hop between
//    two stream sockets costs at least (its copies, syscalls and thread hand-offs), so
//    "switch / C relay" is how far the switch is from any relay's limit. And the switch's main
//    thread's read and write calls, wake-ups and preemptions per MiB of frames it forwarded
//    (from /proc: they do not swing with the load the way times do).
// 3. With 'breakdown': the pipeline with each part of the full policy alone (the guards, the
//    100 ACLs, the receiver's Meter ACL), CPU ns per frame against no policy and full.
// 4. With 'flow': the sockets row's flow in-process — one port to another, 1514-byte UDP frames,
//    static MACs — with the microflow cache (src/switch/flow-cache.ts) on and off in alternate
//    measurements, CPU ns per frame: the sockets row's switching without the kernel's part.
//    Policies: the sockets row's (MACs only), + the full policy's guards, + its ACLs and meter.
// 5. With a fifth argument 'no-flow-cache': every switch of the other parts without the cache,
//    for before/after rounds of the same code.
// Run: node --import tsx bench/switch.ts [seconds per measurement, default 3] [rounds, default 3] [all | pipeline | sockets | breakdown | flow] [no-flow-cache]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { record, runWorker, udpFrame } from './port-worker.ts';
import { VirtualSwitch, type ExtendedAcl, type PortPolicyPatch } from '../src/switch/index.ts';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);
const parts = process.argv[4] ?? 'all';
const flowCache = process.argv[5] !== 'no-flow-cache';
if (!flowCache) console.log('# flow cache off');
const MAC_A = 0x525400000001;
const MAC_B = 0x525400000002;
const FARM = 0x5254000a0000;

/** CPU time of the main thread so far, ns (the kernel's run-time count: it stays right when the machine is busy). */
function mainThreadCpuNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

/**
 * The main thread's read and write calls so far (read/readv and write/writev: /proc's syscr and
 * syscw; epoll is not counted) and its context switches, voluntary (it slept: a wake-up) and not.
 */
function mainThreadCalls(): { reads: number; writes: number; wakeups: number; preempted: number } {
  const task = `/proc/self/task/${process.pid}`;
  const io = readFileSync(`${task}/io`, 'utf8'), status = readFileSync(`${task}/status`, 'utf8');
  const field = (text: string, name: string): number => Number(new RegExp(`${name}:\\s*(\\d+)`).exec(text)![1]);
  return { reads: field(io, 'syscr'), writes: field(io, 'syscw'), wakeups: field(status, 'voluntary_ctxt_switches'), preempted: field(status, 'nonvoluntary_ctxt_switches') };
}

/** Time the main thread has spent runnable but waiting for a CPU, ns (schedstat's second field). */
function mainThreadWaitNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]);
}

/**
 * The policy of a pipeline run: all of the full policy, none, or one part of it (for
 * 'breakdown', which shows where full policy's extra CPU per frame goes).
 */
type Policy = 'none' | 'full' | 'guards' | 'acls' | 'meter';

/** Frames/s and main-thread CPU ns per frame. */
async function pipelineRate(policy: Policy): Promise<{ rate: number; cpuNs: number }> {
  const sw = await VirtualSwitch.create({ name: 'bench', type: 'Private' }, { flowCache });
  let delivered = 0;
  const acls: ExtendedAcl[] = [];
  for (let i = 0; i < 99; i++) acls.push({ direction: 'Outbound', action: 'Deny', remoteIPAddress: `192.168.${i}.0/24`, protocol: 'UDP', remotePort: 5001, weight: 200 - i });
  acls.push({ direction: 'Outbound', action: 'Allow', remoteIPAddress: '10.0.0.0/8', weight: 1 });
  const bare: PortPolicyPatch = { guards: { macAddressSpoofing: 'On' } };
  const guarded: PortPolicyPatch = { mac: '52:54:00:00:00:01', ipAddresses: ['10.0.0.1'], guards: { macAddressSpoofing: 'Off', dhcpGuard: 'On', routerGuard: 'On', arpGuard: 'On' } };
  const metered: PortPolicyPatch = { acls: [{ direction: 'Both', action: 'Meter', remoteIPAddress: '10.0.0.0/8' }] };
  const sender: PortPolicyPatch = policy === 'full' ? { ...guarded, extendedAcls: acls } : policy === 'guards' ? guarded : policy === 'acls' ? { ...bare, extendedAcls: acls } : bare;
  const farm: PortPolicyPatch = policy === 'full' ? { guards: { macAddressSpoofing: 'On', dhcpGuard: 'On', routerGuard: 'On', arpGuard: 'On' }, ...metered } : policy === 'meter' ? { ...bare, ...metered } : bare;
  await sw.addPort({ id: 'a', policy: sender, sink: () => { delivered++; } });
  await sw.addPort({ id: 'farm', policy: farm, sink: () => { delivered++; } });
  for (let i = 0; i < 8; i++) await sw.addPort({ id: `idle${i}`, sink: () => {} });
  // 1,000 MACs learned behind the farm port (one frame from each).
  for (let i = 0; i < 1000; i++) sw.inject('farm', udpFrame(FARM + i, MAC_A, 0x0a010000 + i, 0x0a000001));
  const frames = Array.from({ length: 1000 }, (_, i) => udpFrame(MAC_A, FARM + i, 0x0a000001, 0x0a010000 + i));
  const copies = frames.map((f) => Buffer.from(f));
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const k = i % 1000;
      copies[k]!.set(frames[k]!); // the switch may rewrite a frame in place (VLAN pop); keep inputs pristine
      sw.inject('a', copies[k]!);
    }
  };
  run(200_000);
  delivered = 0;
  let count = 0;
  const t0 = performance.now();
  const c0 = mainThreadCpuNs();
  while (performance.now() - t0 < seconds * 1000) { run(50_000); count += 50_000; }
  const rate = count / ((performance.now() - t0) / 1000);
  const cpuNs = (mainThreadCpuNs() - c0) / count;
  if (delivered !== count) throw new Error(`delivered ${delivered} of ${count}`);
  if (sw.stats().macEntries < 1001) throw new Error('MACs not learned');
  await sw.close();
  return { rate, cpuNs };
}

/** Main-thread CPU ns per frame of the sockets row's flow, in-process (part 'flow'). */
async function oneFlowCpu(policy: 'macs' | 'guards' | 'full', cache: boolean): Promise<number> {
  const sw = await VirtualSwitch.create({ name: 'bench-flow', type: 'Private' }, { flowCache: cache });
  const a: PortPolicyPatch = { mac: '52:54:00:00:00:01' };
  const guarded: PortPolicyPatch = { ...a, ipAddresses: ['10.0.0.1'], guards: { macAddressSpoofing: 'Off', dhcpGuard: 'On', routerGuard: 'On', arpGuard: 'On' } };
  const acls: ExtendedAcl[] = [];
  for (let i = 0; i < 99; i++) acls.push({ direction: 'Outbound', action: 'Deny', remoteIPAddress: `192.168.${i}.0/24`, protocol: 'UDP', remotePort: 5001, weight: 200 - i });
  acls.push({ direction: 'Outbound', action: 'Allow', remoteIPAddress: '10.0.0.0/8', weight: 1 });
  let delivered = 0;
  await sw.addPort({ id: 'a', policy: policy === 'macs' ? a : policy === 'guards' ? guarded : { ...guarded, extendedAcls: acls }, sink: () => {} });
  await sw.addPort({ id: 'b', policy: { mac: '52:54:00:00:00:02', ...(policy === 'full' ? { acls: [{ direction: 'Both', action: 'Meter', remoteIPAddress: '10.0.0.0/8' }] } : {}) }, sink: () => { delivered++; } });
  sw.inject('b', udpFrame(MAC_B, MAC_A, 0x0a000002, 0x0a000001));
  const frame = Buffer.from(udpFrame(MAC_A, MAC_B, 0x0a000001, 0x0a000002, 1514));
  const run = (n: number): void => { for (let i = 0; i < n; i++) sw.inject('a', frame); };
  run(200_000);
  delivered = 0;
  let count = 0;
  const t0 = performance.now(), c0 = mainThreadCpuNs();
  while (performance.now() - t0 < seconds * 1000) { run(100_000); count += 100_000; }
  const cpuNs = (mainThreadCpuNs() - c0) / count;
  if (delivered !== count) throw new Error(`delivered ${delivered} of ${count}`);
  await sw.close();
  return cpuNs;
}

/** bench/relay-floor.c built into `dir`, or null (no C compiler: the row is left out). */
function buildRelayFloor(dir: string): string | null {
  const out = join(dir, 'relay-floor');
  try {
    execFileSync('cc', ['-O2', '-o', out, new URL('relay-floor.c', import.meta.url).pathname], { stdio: 'pipe' });
    return out;
  } catch (e) {
    console.log(`# no C relay row: cannot build bench/relay-floor.c (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

/** Bytes/s through the C relay, and the CPU ns per frame of all threads (the worker's and the relay's). */
async function relayFloorRate(exe: string, dir: string): Promise<{ bytesPerSec: number; allCpu: number }> {
  const a = join(dir, 'fa.sock'), b = join(dir, 'fb.sock');
  const p = spawn(exe, [a, b], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (c: string) => { out += c; if (out.includes('listening\n')) resolve(); });
    p.once('exit', (code) => reject(new Error(`relay-floor exited with ${code}`)));
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const { bytesPerSec, cpuNsPerFrame } = await runWorker(seconds, { mode: 'relay', aPath: a, bPath: b, record: record(MAC_A, MAC_B) });
  await exited;
  const [cpuNs, moved] = out.slice(out.indexOf('listening\n') + 10).trim().split(' ').map(Number);
  return { bytesPerSec, allCpu: cpuNsPerFrame + cpuNs! / (moved! / (1514 + 4)) };
}

/**
 * Bytes/s of each; the main thread's CPU ns per 1514-byte frame moved by the relay and by the
 * switch, and the share of the worker's whole run (set-up and tail included) it spent running
 * and runnable but waiting for a CPU: together near 100 %, the main thread is the limit (or
 * the machine is, when the waiting dominates); well below, it is not.
 */
async function socketRates(dir: string): Promise<{
  direct: number; relay: number; switched: number; relayCpu: number; switchCpu: number; relayBusy: number; switchBusy: number; relayWait: number; switchWait: number;
  directAllCpu: number; relayAllCpu: number; switchAllCpu: number;
  /** The switch's main thread per MiB it forwarded. */
  switchCalls: { reads: number; writes: number; wakeups: number; preempted: number };
}> {
  const { bytesPerSec: direct, cpuNsPerFrame: directAllCpu } = await runWorker(seconds, { mode: 'direct', direct: join(dir, 'direct.sock'), record: record(MAC_A, MAC_B) });

  // Relay: accept two connections (first = sender, second = receiver), copy bytes across.
  const relayA = join(dir, 'ra.sock'), relayB = join(dir, 'rb.sock');
  let out: Socket | null = null;
  let relayed = 0;
  const ra = createServer((s) => { s.on('data', (c) => { relayed += c.length; if (out && !out.write(c)) { s.pause(); out.once('drain', () => s.resume()); } }); s.on('error', () => {}); });
  const rb = createServer((s) => { out = s; s.on('data', () => {}); s.on('error', () => {}); });
  await Promise.all([new Promise<void>((r) => ra.listen(relayA, r)), new Promise<void>((r) => rb.listen(relayB, r))]);
  let c0 = mainThreadCpuNs(), w0 = performance.now(), q0 = mainThreadWaitNs();
  const { bytesPerSec: relay, cpuNsPerFrame: relayWorkerCpu } = await runWorker(seconds, { mode: 'relay', aPath: relayA, bPath: relayB, record: record(MAC_A, MAC_B) });
  const relayCpu = (mainThreadCpuNs() - c0) / (relayed / (1514 + 4));
  const relayBusy = (mainThreadCpuNs() - c0) / 1e6 / (performance.now() - w0);
  const relayWait = (mainThreadWaitNs() - q0) / 1e6 / (performance.now() - w0);
  ra.close(); rb.close();

  const sw = await VirtualSwitch.create({ name: 'bench-sock', type: 'Private', socketDir: dir }, { flowCache });
  await sw.addPort({ id: 'a', policy: { mac: '52:54:00:00:00:01' } });
  await sw.addPort({ id: 'b', policy: { mac: '52:54:00:00:00:02' } });
  const hello = record(MAC_B, MAC_A); // b speaks first so the switch learns where MAC_B is
  c0 = mainThreadCpuNs(); w0 = performance.now(); q0 = mainThreadWaitNs();
  const calls0 = mainThreadCalls();
  const { bytesPerSec: switched, cpuNsPerFrame: switchWorkerCpu } = await runWorker(seconds, { mode: 'switch', aPath: join(dir, 'a.sock'), bPath: join(dir, 'b.sock'), record: record(MAC_A, MAC_B), hello });
  const switchCpu = (mainThreadCpuNs() - c0) / sw.portStats('b').txFrames;
  const switchBusy = (mainThreadCpuNs() - c0) / 1e6 / (performance.now() - w0);
  const switchWait = (mainThreadWaitNs() - q0) / 1e6 / (performance.now() - w0);
  const calls1 = mainThreadCalls();
  const mib = sw.portStats('b').txBytes / (1 << 20);
  const perMib = (k: keyof typeof calls0): number => (calls1[k] - calls0[k]) / mib;
  const switchCalls = { reads: perMib('reads'), writes: perMib('writes'), wakeups: perMib('wakeups'), preempted: perMib('preempted') };
  const st = sw.stats();
  await sw.close();
  if (Object.keys(st.drops).some((r) => r !== 'port-not-connected' && r !== 'tx-queue-full')) console.log('# drops', st.drops);
  if (st.drops['tx-queue-full']) console.log(`# ${st.drops['tx-queue-full']} frames dropped because the receiver did not keep up (no flow control on a switch)`);
  return {
    direct, relay, switched, relayCpu, switchCpu, relayBusy, switchBusy, relayWait, switchWait,
    directAllCpu, relayAllCpu: relayWorkerCpu + relayCpu, switchAllCpu: switchWorkerCpu + switchCpu, switchCalls,
  };
}

// Rounds alternate the measurement and its peer (no policy / full; raw pair, relay, switch), so
// a change in the machine's load hits both; each row shows the load average when it ran, and
// the ratios are medians over the rounds.
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const fmt = (n: number): string => (n / 1e6).toFixed(2);
const mb = (n: number): string => (n / (1 << 20)).toFixed(0);
const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;
const pipeRatios: number[] = [], cpuRatios: number[] = [], fulls: number[] = [], sockRatios: number[] = [], relayRatios: number[] = [], sockCpuRatios: number[] = [];
const floorRatios: number[] = [], floorCpuRatios: number[] = [], floorRawRatios: number[] = [];
const callsPerMib: number[] = [], wakeupsPerMib: number[] = [];
for (let round = 1; round <= rounds && parts === 'breakdown'; round++) {
  const ns: Partial<Record<Policy, number>> = {};
  for (const p of ['none', 'guards', 'acls', 'meter', 'full'] as const) ns[p] = (await pipelineRate(p)).cpuNs;
  const more = (p: Policy): string => `${ns[p]!.toFixed(0)} (+${(ns[p]! - ns.none!).toFixed(0)})`;
  console.log(`round ${round} breakdown, main-thread CPU ns per frame: no policy ${ns.none!.toFixed(0)}, guards ${more('guards')}, 100 ACLs ${more('acls')}, Meter ACL ${more('meter')}, full ${more('full')}   (load ${load()})`);
}
for (let round = 1; round <= rounds && parts === 'flow'; round++) {
  const cells: string[] = [];
  for (const p of ['macs', 'guards', 'full'] as const) {
    // Which goes first alternates: both share the process's compiled code.
    const first = await oneFlowCpu(p, round % 2 === 1), second = await oneFlowCpu(p, round % 2 === 0);
    const [on, off] = round % 2 === 1 ? [first, second] : [second, first];
    cells.push(`${p}: cache on ${on.toFixed(1)}, off ${off.toFixed(1)} (−${(off - on).toFixed(1)})`);
  }
  console.log(`round ${round} one flow, 1514-B frames, main-thread CPU ns per frame — ${cells.join('; ')}   (load ${load()})`);
}
for (let round = 1; round <= rounds && (parts === 'all' || parts === 'pipeline'); round++) {
  const { rate: none, cpuNs: noneCpu } = await pipelineRate('none');
  const { rate: full, cpuNs: fullCpu } = await pipelineRate('full');
  cpuRatios.push(noneCpu / fullCpu);
  fulls.push(full);
  pipeRatios.push(full / none);
  console.log(`round ${round} pipeline: no policy ${fmt(none)} M frames/s, 100 ACLs + guards + 1,000 MACs ${fmt(full)} M frames/s, ratio ${(full / none).toFixed(2)}; main-thread CPU ${noneCpu.toFixed(0)} / ${fullCpu.toFixed(0)} ns per frame, ratio ${(noneCpu / fullCpu).toFixed(2)}   (load ${load()})`);
}
const dir = mkdtempSync(join(tmpdir(), 'vmhost-swbench-'));
try {
  const floorExe = parts === 'all' || parts === 'sockets' ? buildRelayFloor(dir) : null;
  for (let round = 1; round <= rounds && (parts === 'all' || parts === 'sockets'); round++) {
    const r = await socketRates(dir);
    const floor = floorExe ? await relayFloorRate(floorExe, dir) : null;
    sockRatios.push(r.switched / r.direct);
    relayRatios.push(r.switched / r.relay);
    sockCpuRatios.push(r.directAllCpu / r.switchAllCpu);
    callsPerMib.push(r.switchCalls.reads + r.switchCalls.writes);
    wakeupsPerMib.push(r.switchCalls.wakeups);
    console.log(`round ${round} sockets: raw pair ${mb(r.direct)} MiB/s, plain relay ${mb(r.relay)} MiB/s, switch port → port ${mb(r.switched)} MiB/s ` +
      `(${(r.switched / (1514 + 4) / 1e3).toFixed(0)} k frames/s), switch / raw ${(r.switched / r.direct).toFixed(3)}, switch / relay ${(r.switched / r.relay).toFixed(3)}; main-thread CPU per frame: relay ${r.relayCpu.toFixed(0)} ns, switch ${r.switchCpu.toFixed(0)} ns; ` +
      `main thread running / waiting for a CPU: relay ${pct(r.relayBusy)} / ${pct(r.relayWait)}, switch ${pct(r.switchBusy)} / ${pct(r.switchWait)}; CPU of all threads per frame: raw pair ${r.directAllCpu.toFixed(0)} ns, relay ${r.relayAllCpu.toFixed(0)} ns, switch ${r.switchAllCpu.toFixed(0)} ns, raw / switch ${(r.directAllCpu / r.switchAllCpu).toFixed(3)}; switch main thread per MiB: ` +
      `${r.switchCalls.reads.toFixed(1)} reads, ${r.switchCalls.writes.toFixed(1)} writes, ${r.switchCalls.wakeups.toFixed(1)} wake-ups, ${r.switchCalls.preempted.toFixed(1)} preemptions   (load ${load()})`);
    if (floor) {
      floorRatios.push(r.switched / floor.bytesPerSec);
      floorCpuRatios.push(floor.allCpu / r.switchAllCpu);
      floorRawRatios.push(floor.bytesPerSec / r.direct);
      console.log(`round ${round} C relay (bench/relay-floor.c): ${mb(floor.bytesPerSec)} MiB/s, C relay / raw ${(floor.bytesPerSec / r.direct).toFixed(3)}, switch / C relay ${(r.switched / floor.bytesPerSec).toFixed(3)}; CPU of all threads per frame ${floor.allCpu.toFixed(0)} ns, C relay / switch ${(floor.allCpu / r.switchAllCpu).toFixed(3)}   (load ${load()})`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (parts === 'all' || parts === 'pipeline') console.log(`median full policy: ${fmt(median(fulls))} M frames/s; median ratio full / no policy: ${median(pipeRatios).toFixed(2)} (by main-thread CPU per frame: ${median(cpuRatios).toFixed(2)})`);
if (parts === 'all' || parts === 'sockets') console.log(`median ratio switch / raw socket pair: ${median(sockRatios).toFixed(3)} (by CPU of all threads per frame: ${median(sockCpuRatios).toFixed(3)}); switch / plain relay: ${median(relayRatios).toFixed(3)}; switch main thread per MiB: ${median(callsPerMib).toFixed(1)} reads + writes, ${median(wakeupsPerMib).toFixed(1)} wake-ups`);
if (floorRatios.length > 0) console.log(`median ratio C relay / raw socket pair: ${median(floorRawRatios).toFixed(3)}; switch / C relay: ${median(floorRatios).toFixed(3)} (by CPU of all threads per frame: ${median(floorCpuRatios).toFixed(3)})`);
