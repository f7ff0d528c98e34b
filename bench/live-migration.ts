// Move-VM's cost next to QEMU's own live migration (the peer, the lower bound).
//   node --import tsx bench/live-migration.ts        (REPEAT=3; MEMS=256 MiB; LOADS=idle; OPTIONS=TCPIP,Compression)
//   MEMS=256,1024 LOADS=idle,dirty OPTIONS=TCPIP node --import tsx bench/live-migration.ts   (issue 11's rows)
//   bench/shaped-loopback.sh 1000 env MEMS=256 LOADS=idle,dirty node --import tsx bench/live-migration.ts
//     (the same over a 1 Gbit/s link: a network namespace whose loopback tc shapes; LINK_MBIT is printed)
// LOADS=dirty: the guest runs guest-agent/memdirty.c over a quarter of its memory at 50 MB/s
// (in the peer too, started through the agent channel) — the load a move must converge under.
// Peer: two hand-started QEMUs (the test guest, TCG, the same padded RAM as ours: TCG_RAM_PAD
// in src/qemu/command-line.ts) on this machine, the source migrating to the destination's
// `-incoming tcp:127.0.0.1:…` directly, without TLS (over loopback, so a shaped link shapes it too). Ours: a test guest on host A moved to host B and back
// (Move-VM through the API: ticket from the destination, the relay for TCPIP or QEMU's TLS
// between the QEMUs for Compression and SMB, held disk, commit), with each performance option, while a guest on B pings it every 20 ms
// across the hosts' External switches (a UDP tunnel between them). Printed per run: total time
// (Move-VM's wall time; QEMU's total-time for the peer), QEMU's downtime, the blackout the
// pinging guest saw (the longest wait between replies, test/support/ping-blackout.ts; the
// peer's is its downtime), and
// the hand-over = the destination's commit (from the source letting go to the VM resumed and
// announced, its VM_MOVED_IN event; "state loaded" is its first part: the stream's tail still arriving), and the CPU time both daemons spent during the move (user +
// system, from /proc: the relays and the disk streams run there; TLS's cost shows here). Ratios:
// ours / peer, and Compression / TCPIP.
// Per move it also prints the wire's longest gap split in two (the pre-copy's, while the guest
// still ran here, and the switchover's, across STOP), the longest query-migrate answer the source
// waited for (QEMU's lock held), and each thread of both QEMUs and both daemons over those gaps:
// ran, waited for a core, slept (test/support/thread-sampler.ts, /proc schedstat every SAMPLE_MS=5 ms).
// The peer's dirtier runs as long before its migration as ours had before its move (capped at
// PEER_DIRTY_MAX_S=20): under TCG a sync's cost per dirty page grows with the guest's TLB, which
// grows for seconds after the dirtier starts (BENCHMARKS.md, branch migbisect).
// SYNC_TRACE=1: both print each of QEMU's dirty-bitmap syncs from QEMU's own trace (bench/sync-trace.ts).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient, agentChardevArgs, ensureGuestImage } from '../src/guest/index.ts';
import { QmpClient, migrateLive, startIncoming } from '../src/qemu/index.ts';
import { tuningFor, type PerformanceOption } from '../src/host/index.ts';
import { TestDaemon, freeUdpPort, waitFor } from '../test/support/daemon.ts';
import { cliTools } from '../test/support/cli-tools.ts';
import { pingBlackout } from '../test/support/ping-blackout.ts';
import { ThreadSampler, childrenWith, type ThreadShare } from '../test/support/thread-sampler.ts';
import { describeSyncs, syncsOf, tracedQemu } from './sync-trace.ts';

const REPEAT = Number(process.env.REPEAT ?? 3);
const MEMS = (process.env.MEMS ?? process.env.MEM ?? '256').split(',').map(Number);
const LOADS = (process.env.LOADS ?? 'idle').split(',') as Array<'idle' | 'dirty'>;
const OPTIONS = (process.env.OPTIONS ?? 'TCPIP,Compression').split(',') as PerformanceOption[];
const DIRTY_RATE = 50;
/** The dirtier's command line for a guest of `mem` MiB: a quarter of its memory kept dirty. */
const dirtier = (mem: number) => `setsid vmhost-memdirty ${mem / 4} ${DIRTY_RATE} </dev/null >/dev/null 2>&1 & sleep 1`;
const scratch = mkdtempSync(join(tmpdir(), 'mig-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const SYNC_TRACE = process.env.SYNC_TRACE === '1';
const QEMU_BIN = SYNC_TRACE ? tracedQemu(scratch, process.env.VMHOST_QEMU) : 'qemu-system-x86_64';
// Ours through the daemons, which take VMHOST_QEMU from their environment.
if (SYNC_TRACE) process.env.VMHOST_QEMU = QEMU_BIN;
const PEER_DIRTY_MAX_MS = Number(process.env.PEER_DIRTY_MAX_S ?? 20) * 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `loadedMs`: from the commit call to the destination QEMU's state loaded (the stream's tail still arriving, with the guest stopped). */
interface Run { totalMs: number; downtimeMs: number; blackoutMs: number; preCopyMs: number; switchoverMs: number; handoverMs: number; loadedMs: number; daemonCpuMs: number; lockMs: number; channels?: number }
/** The moving guest's and the pinging guest's addresses on the External switches' VLAN-less segment. */
const BENCH_IP = '10.89.0.1', PINGER_IP = '10.89.0.2';

async function qemu(name: string, mem: number, incoming: boolean): Promise<{ qmp: QmpClient; agent: AgentClient; pid: number; kill(): Promise<void> }> {
  const img = await ensureGuestImage();
  const sock = join(scratch, `${name}.qmp`);
  const agentSock = join(scratch, `${name}.agent`);
  const p = spawn(QEMU_BIN, ['-name', `guest=peer-${name},debug-threads=on`, '-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', `${mem * 1024 + 4}K`, '-kernel', img.kernel, '-initrd', img.initrd,
    '-append', 'console=ttyS0 quiet panic=-1', '-serial', 'null', '-qmp', `unix:${sock},server=on,wait=off`, ...agentChardevArgs(agentSock),
    ...(incoming ? ['-incoming', 'defer'] : [])], { stdio: 'ignore' });
  const qmp = await waitFor(`${name} QMP`, 30_000, async () => QmpClient.connect(sock).catch(() => undefined));
  const agent = new AgentClient({ path: agentSock, reconnectDelayMs: 100 });
  await agent.connect();
  return { qmp, agent, pid: p.pid!, kill: async () => { await agent.close(); p.kill('SIGKILL'); } };
}

/** `dirtyMs`: how long the dirtier runs before the migration (ours' age at its move). */
async function peer(option: PerformanceOption, mem: number, load: 'idle' | 'dirty', dirtyMs: number): Promise<Run> {
  const src = await qemu('src', mem, false);
  const dst = await qemu('dst', mem, true);
  const sampler = new ThreadSampler(() => [{ label: 'peer source QEMU', pid: src.pid }], Number(process.env.SAMPLE_MS ?? 5));
  try {
    await src.agent.waitReady(120_000); // the guest booted into its shell
    if (load === 'dirty') {
      await src.agent.exec(dirtier(mem));
      await sleep(Math.min(dirtyMs, PEER_DIRTY_MAX_MS));
    }
    const port = await startIncoming(dst.qmp, 'tcp:127.0.0.1:0', tuningFor(option));
    sampler.start();
    const r = await migrateLive(src.qmp, `tcp:127.0.0.1:${port}`, tuningFor(option));
    sampler.stop();
    if (SYNC_TRACE) console.log(`  peer's syncs (QEMU's lock held ms/dirty pages, the migration thread's ms; the dirtier ran ${Math.round(Math.min(dirtyMs, PEER_DIRTY_MAX_MS) / 1000)} s before): ${describeSyncs(syncsOf(scratch, src.pid), sampler, 'peer source QEMU')}`);
    return { totalMs: r.totalTimeMs ?? NaN, downtimeMs: r.downtimeMs ?? NaN, blackoutMs: r.downtimeMs ?? NaN, preCopyMs: NaN, switchoverMs: r.downtimeMs ?? NaN, handoverMs: 0, loadedMs: 0, daemonCpuMs: 0, lockMs: r.longestAnswer.ms };
  } finally {
    sampler.stop();
    await src.kill();
    await dst.kill();
  }
}

/** User + system CPU time of a daemon's process so far (clock ticks of /proc/PID/stat, 100 per second). */
const cpuMs = (d: TestDaemon): number => {
  const f = readFileSync(`/proc/${d.proc!.pid!}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

/** Both External switches captured whole (every frame entering each, with the daemon's own clock) while the move runs: the trace's frames. */
async function captureBoth(from: TestDaemon, to: TestDaemon): Promise<() => Promise<{ from: Frame[]; to: Frame[] }>> {
  const path = (d: TestDaemon) => join(scratch, `${d === from ? 'from' : 'to'}-${Date.now()}.pcap`);
  const files = [path(from), path(to)] as const;
  await from.api('POST', '/api/v1/switches/Ext/capture', { Path: files[0] });
  await to.api('POST', '/api/v1/switches/Ext/capture', { Path: files[1] });
  return async () => {
    await from.api('DELETE', '/api/v1/switches/Ext/capture');
    await to.api('DELETE', '/api/v1/switches/Ext/capture');
    const read = async (f: string) => { const r = await framesOf(f); rmSync(f, { force: true }); return r; };
    return { from: await read(files[0]), to: await read(files[1]) };
  };
}

/** A frame of the moving guest's traffic entering a switch: its RARPs (announce-self), ARPs from its address, pings to and from it. */
interface Frame { at: number; kind: 'rarp' | 'arp' | 'request' | 'reply'; seq?: number }

async function framesOf(file: string): Promise<Frame[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=,', '-e', 'frame.time_epoch', '-e', 'eth.type', '-e', 'arp.src.proto_ipv4', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type', '-e', 'icmp.seq'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (b: Buffer) => { text += b.toString(); });
    p.on('error', reject);
    p.on('exit', () => resolve(text));
  });
  const frames: Frame[] = [];
  for (const line of out.split('\n')) {
    const [t, type, arpSrc, ipSrc, ipDst, icmp, seq] = line.split(',');
    const at = Number(t) * 1000;
    if (type === '0x8035') frames.push({ at, kind: 'rarp' });
    else if (type === '0x0806' && arpSrc === BENCH_IP) frames.push({ at, kind: 'arp' });
    else if (icmp === '8' && ipDst === BENCH_IP) frames.push({ at, kind: 'request', seq: Number(seq) });
    else if (icmp === '0' && ipSrc === BENCH_IP) frames.push({ at, kind: 'reply', seq: Number(seq) });
  }
  return frames;
}

/** `name 123` pairs (a step and its epoch ms) from a move event's "epoch ms:" list. */
const epochsOf = (message: string | undefined): [string, number][] =>
  [...(/epoch ms: ([^)]*)/.exec(message ?? '')?.[1] ?? '').matchAll(/([a-zA-Z][a-zA-Z ]*?) (\d+)(?:,|$)/g)].map((m) => [m[1]!.trim(), Number(m[2])]);

/**
 * Where the blackout went, on one clock (both daemons run on this machine): every step of both
 * daemons and the frames both switches saw, in ms from QEMU's STOP on the source.
 */
function trace(outMsg: string | undefined, inMsg: string | undefined, frames: { from: Frame[]; to: Frame[] }): string {
  const steps = [...epochsOf(outMsg).map(([w, t]) => [`source: ${w}`, t] as const), ...epochsOf(inMsg).map(([w, t]) => [`destination: ${w}`, t] as const)];
  const stop = stopOf(outMsg);
  if (stop === undefined) return '  (no trace: the move events carry no times)';
  const rows: (readonly [string, number])[] = [['source: QEMU STOP', stop], ...steps];
  const lock = lockOf(outMsg);
  const raised = /setup (?:at nice -?\d+|not raised \([^)]*\))/.exec(outMsg ?? '')?.[0];
  if (lock) rows.push([`source: a query-migrate sent, answered ${lock.ms} ms later (QEMU's lock held; status ${lock.status})${raised ? `; the migration thread's ${raised}` : ''}`, lock.at]);
  const resumed = /guest resumed (\d+)/.exec(inMsg ?? '');
  if (resumed) rows.push(['destination: QEMU RESUME', Number(resumed[1])]);
  for (const [side, fs] of [['source switch', frames.from], ['destination switch', frames.to]] as const) {
    const after = fs.filter((f) => f.at >= stop);
    const first = (k: Frame['kind']) => after.find((f) => f.kind === k);
    for (const k of ['rarp', 'arp'] as const) { const f = first(k); if (f) rows.push([`${side}: first ${k === 'rarp' ? 'RARP (announce-self)' : 'ARP from the guest'}`, f.at]); }
    const lastReply = fs.filter((f) => f.kind === 'reply' && f.at < stop).at(-1);
    if (lastReply) rows.push([`${side}: last echo reply before STOP (seq ${lastReply.seq})`, lastReply.at]);
    const reply = first('reply');
    if (reply) rows.push([`${side}: first echo reply after STOP (seq ${reply.seq})`, reply.at]);
    const req = reply && after.filter((f) => f.kind === 'request' && f.seq === reply.seq).at(0);
    if (req) rows.push([`${side}: its echo request entered`, req.at]);
  }
  rows.sort((x, y) => x[1] - y[1]);
  return rows.map(([w, t]) => `  ${String(Math.round(t - stop)).padStart(6)} ms  ${w}`).join('\n');
}

/** The longest wait between two consecutive frames of `fs`, with its ends (epoch ms). */
interface Gap { ms: number; from: number; to: number }
const longestGap = (fs: Frame[]): Gap => {
  let best = { ms: 0, from: NaN, to: NaN };
  for (let i = 1; i < fs.length; i++) if (fs[i]!.at - fs[i - 1]!.at > best.ms) best = { ms: fs[i]!.at - fs[i - 1]!.at, from: fs[i - 1]!.at, to: fs[i]!.at };
  return best;
};

/**
 * The blackout on the wire: the longest wait between two echo replies entering the pinger's
 * switch (its own clock), with where it starts and ends from the source's STOP, and the longest
 * gap between the pinger's requests (a pinger starved of CPU sends late: that is no blackout).
 * Split in two: the pre-copy's longest gap (replies both before STOP: the guest still ran here)
 * and the switchover's (the last reply before STOP to the first after it).
 */
function wireBlackout(pingerSide: Frame[], stop: number | undefined): { gap: Gap; preCopy: Gap; switchover: Gap; text: string } {
  const replies = pingerSide.filter((f) => f.kind === 'reply');
  const r = longestGap(replies), q = longestGap(pingerSide.filter((f) => f.kind === 'request'));
  const preCopy = stop === undefined ? { ms: NaN, from: NaN, to: NaN } : longestGap(replies.filter((f) => f.at < stop));
  const lastBefore = stop === undefined ? undefined : replies.filter((f) => f.at < stop).at(-1), firstAfter = stop === undefined ? undefined : replies.find((f) => f.at >= stop);
  const switchover = lastBefore && firstAfter ? { ms: firstAfter.at - lastBefore.at, from: lastBefore.at, to: firstAfter.at } : { ms: NaN, from: NaN, to: NaN };
  const rel = (t: number) => (stop === undefined ? '?' : String(Math.round(t - stop)));
  return { gap: r, preCopy, switchover, text: `on the wire ${Math.round(r.ms)} ms (replies at ${rel(r.from)} → ${rel(r.to)} ms from STOP): pre-copy ${Math.round(preCopy.ms)} ms (${rel(preCopy.from)} → ${rel(preCopy.to)}), switchover ${Math.round(switchover.ms)} ms (${rel(switchover.from)} → ${rel(switchover.to)}); the pinger's longest pause between requests ${Math.round(q.ms)} ms (at ${rel(q.from)} → ${rel(q.to)})` };
}

/** The longest wait for QEMU's answer to query-migrate during the pre-copy (its lock held), from VM_MOVED_OUT's message. */
const lockOf = (outMsg: string | undefined): { ms: number; status: string; at: number } | undefined => {
  const m = /lock held up to (\d+) ms in (\S+) at (\d+)/.exec(outMsg ?? '');
  return m ? { ms: Number(m[1]), status: m[2]!, at: Number(m[3]) } : undefined;
};

/** The source's STOP (QEMU's event) from its VM_MOVED_OUT message, in epoch ms. */
const stopOf = (outMsg: string | undefined): number | undefined => {
  const m = /guest stopped (\d+)/.exec(outMsg ?? '');
  return m ? Number(m[1]) : undefined;
};

/** The threads that mattered in `gap`: the vCPUs always, the rest when they ran or waited ≥ 10 ms. */
function finding(what: string, gap: Gap, stop: number, sampler: ThreadSampler): string {
  if (!(gap.ms > 0)) return `  threads in ${what}: (no such gap)`;
  const d = sampler.during(gap.from, gap.to);
  const shown = d.shares.filter((s) => /CPU \d/.test(s.thread) || s.ranMs + s.waitedMs >= 10);
  const row = (s: ThreadShare) => `    ${s.thread.padEnd(44)} ran ${String(Math.round(s.ranMs)).padStart(5)} ms, waited for a core ${String(Math.round(s.waitedMs)).padStart(5)} ms, slept ${String(Math.round(s.sleptMs)).padStart(5)} ms  [${s.priority}]`;
  const vcpu = d.shares.find((s) => s.thread.startsWith('source QEMU: CPU 0'));
  const mig = d.shares.filter((s) => s.thread.startsWith('source QEMU: ') && /live_migration|multifdsend/.test(s.thread)).reduce((a, s) => a + s.ranMs, 0);
  // QEMU's main thread runs the NIC's backend and the timers: asleep with the vCPU while the migration thread runs, the lock is held.
  const main = d.shares.find((s) => s.thread.startsWith('source QEMU: qemu-system'));
  const headline = vcpu ? `the moving guest's vCPU ran ${Math.round(vcpu.ranMs)} ms, waited for a core ${Math.round(vcpu.waitedMs)} ms, slept ${Math.round(vcpu.sleptMs)} ms; QEMU's main thread ran ${Math.round(main?.ranMs ?? NaN)} ms, slept ${Math.round(main?.sleptMs ?? NaN)} ms; the source's migration threads ran ${Math.round(mig)} ms` : 'no source vCPU sampled';
  return `  threads in ${what} (${Math.round(gap.ms)} ms, ${Math.round(gap.from - stop)} → ${Math.round(gap.to - stop)} ms from STOP; sampled ${Math.round(d.from - stop)} → ${Math.round(d.to - stop)}): ${headline}\n${shown.map(row).join('\n')}`;
}

/** `dirtyMs`: how long the guest's dirtier has run (printed with its syncs). */
async function ours(from: TestDaemon, to: TestDaemon, pinger: TestDaemon, dirtyMs: number): Promise<Run> {
  const sourceQemu = childrenWith(from.proc!.pid!, 'guest=bench')[0];
  const vmId = ((await from.api('GET', '/api/v1/vms/bench')).json as { Id: string }).Id;
  const ticket = (await to.api('POST', '/api/v1/migrations/tickets', { VMId: vmId })).json as { Ticket: string };
  const ping = cliTools(pinger);
  await ping.sh('pinger', `setsid ping -i 0.02 -W 1 ${BENCH_IP} </dev/null >/tmp/ping.log 2>&1 & sleep 1`);
  const captured = await captureBoth(from, to);
  const name = (d: TestDaemon) => (d === from ? 'source' : 'destination');
  const sampler = new ThreadSampler(() => [
    ...[from, to].map((d) => ({ label: `${name(d)} daemon`, pid: d.proc!.pid! })),
    ...[from, to].flatMap((d) => childrenWith(d.proc!.pid!, 'guest=bench').map((pid) => ({ label: `${name(d)} QEMU`, pid }))),
    ...childrenWith(pinger.proc!.pid!, 'guest=pinger').map((pid) => ({ label: 'pinger QEMU', pid })),
  ], Number(process.env.SAMPLE_MS ?? 5));
  sampler.start();
  const cpu0 = cpuMs(from) + cpuMs(to);
  const t0 = Date.now();
  const r = await from.api('POST', '/api/v1/vms/bench/move', { DestinationHost: `127.0.0.1:${to.port}`, Ticket: ticket.Ticket });
  const totalMs = Date.now() - t0;
  const daemonCpuMs = cpuMs(from) + cpuMs(to) - cpu0;
  await sleep(2000);
  sampler.stop();
  const log = (await ping.sh('pinger', 'kill $(pidof ping) 2>/dev/null; cat /tmp/ping.log')).out;
  const seen = pingBlackout(log, 20);
  const frames = await captured();
  if (r.status !== 200) {
    const tail = (d: TestDaemon) => readFileSync(join(d.dataDir, 'events.jsonl'), 'utf8').split('\n').slice(-6).join('\n');
    throw new Error(`Move-VM failed: ${r.text}\nsource events:\n${tail(from)}\ndestination events:\n${tail(to)}`);
  }
  await sleep(500); // the event log is written behind the answer
  const out = [...readFileSync(join(from.dataDir, 'events.jsonl'), 'utf8').matchAll(/VM moved to [^"]*downtime (\d+) ms[^"]*/g)].at(-1);
  const channels = /(\d+) multifd channels/.exec(out?.[0] ?? '')?.[1];
  const lock = lockOf(out?.[0]);
  const inn = [...readFileSync(join(to.dataDir, 'events.jsonl'), 'utf8').matchAll(/announced (\d+) ms after the source let go \(ms: state loaded (\d+)[^"]*/g)].at(-1);
  if (process.env.PING_LOG) console.log(log.split('\n').filter((l) => /seq=/.test(l)).map((l) => /seq=(\d+) ttl=\d+ time=([\d.]+)/.exec(l)?.slice(1).join(':')).join(' '));
  const wire = wireBlackout(from === pinger ? frames.from : frames.to, stopOf(out?.[0]));
  console.log(`  trace of one move (blackout from the ping log ${seen.blackoutMs} ms; ${wire.text}), ms from the source's STOP:\n${trace(out?.[0], inn?.[0], frames)}`);
  const stop = stopOf(out?.[0]);
  if (stop !== undefined) {
    console.log(finding('the longest pre-copy gap', wire.preCopy, stop, sampler));
    console.log(finding('the switchover gap', wire.switchover, stop, sampler));
    console.log(finding('the whole move', { ms: totalMs, from: t0, to: t0 + totalMs }, stop, sampler));
  }
  if (SYNC_TRACE && sourceQemu !== undefined) console.log(`  our syncs (QEMU's lock held ms/dirty pages, the migration thread's ms; the dirtier had run ${Math.round(dirtyMs / 1000)} s): ${describeSyncs(syncsOf(scratch, sourceQemu), sampler, 'source QEMU')}`);
  return { preCopyMs: Math.round(wire.preCopy.ms), switchoverMs: Math.round(wire.switchover.ms), totalMs, downtimeMs: Number(out?.[1]), blackoutMs: seen.replies > 0 ? seen.blackoutMs : NaN, handoverMs: Number(inn?.[1]), loadedMs: Number(inn?.[2]), daemonCpuMs, lockMs: lock?.ms ?? NaN, ...(channels ? { channels: Number(channels) } : {}) };
}

const show = (label: string, runs: Run[]) => {
  const m = { total: median(runs.map((r) => r.totalMs)), down: median(runs.map((r) => r.downtimeMs)), black: median(runs.map((r) => r.blackoutMs)), preCopy: median(runs.map((r) => r.preCopyMs)), switchover: median(runs.map((r) => r.switchoverMs)), handover: median(runs.map((r) => r.handoverMs)), loaded: median(runs.map((r) => r.loadedMs)), cpu: median(runs.map((r) => r.daemonCpuMs)), lock: median(runs.map((r) => r.lockMs)) };
  console.log(`${label.padEnd(40)} total ${String(m.total).padStart(6)} ms  downtime ${String(m.down).padStart(4)} ms  blackout ${String(m.black).padStart(5)} ms (wire: pre-copy ${String(m.preCopy).padStart(5)}, switchover ${String(m.switchover).padStart(4)}; QEMU's lock held ${String(m.lock).padStart(4)})  hand-over ${String(m.handover).padStart(4)} ms (state loaded ${String(m.loaded).padStart(4)})  daemons' CPU ${String(m.cpu).padStart(5)} ms   (runs: ${runs.map((r) => r.totalMs).join(', ')})${runs.some((r) => r.channels) ? `, channels ${runs.map((r) => r.channels).join(', ')}` : ''}`);
  return m;
};

const LINK = process.env.LINK_MBIT ? `a ${process.env.LINK_MBIT} Mbit/s link (tc tbf on a namespace's loopback)` : 'loopback, unshaped';
console.log(`# test guest, TCG, ${LINK}, MEMS=${MEMS.join(',')} LOADS=${LOADS.join(',')} OPTIONS=${OPTIONS.join(',')} REPEAT=${REPEAT}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const [pa, pb] = [await freeUdpPort(), await freeUdpPort()];
const uplink = (local: number, remote: number) => ['--net-adapter', `Uplink=udp:127.0.0.1:${local}->127.0.0.1:${remote}`];
const [a, b] = await Promise.all([TestDaemon.start(undefined, uplink(pa, pb)), TestDaemon.start(undefined, uplink(pb, pa))]);
try {
  for (const d of [a, b]) {
    await d.api('PATCH', '/api/v1/host/migration', { VirtualMachineMigrationEnabled: true });
    await cliTools(d).ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink');
  }
  // The guest that pings the moving one: on B, so it sees the move to B and the move back across the tunnel.
  await b.api('POST', '/api/v1/vms', { Name: 'pinger', MemoryStartupBytes: 256 * 1024 * 1024, SwitchName: 'Ext' });
  await b.api('POST', '/api/v1/vms/pinger/start');
  await cliTools(b).heartbeat('pinger');
  await cliTools(b).sh('pinger', `ip addr add ${PINGER_IP}/24 dev eth0 && ip link set eth0 up`);
  const compressionRatios: string[] = [];
  for (const mem of MEMS) {
    for (const load of LOADS) {
      await a.api('POST', '/api/v1/vms', { Name: 'bench', MemoryStartupBytes: mem * 1024 * 1024, SwitchName: 'Ext' });
      await a.api('POST', '/api/v1/vms/bench/start');
      await waitFor('guest heartbeat', 120_000, async () => ((await a.api('GET', '/api/v1/vms/bench')).json as { Heartbeat: string }).Heartbeat === 'OK');
      await cliTools(a).sh('bench', `ip addr add ${BENCH_IP}/24 dev eth0 && ip link set eth0 up`);
      if (load === 'dirty') await a.api('POST', '/api/v1/vms/bench/invoke', { ScriptBlock: dirtier(mem), TimeoutSeconds: 30 });
      const dirtySince = Date.now();
      let moves = 0;
      const totals: Partial<Record<PerformanceOption, number>> = {};
      for (const option of OPTIONS) {
        for (const d of [a, b]) await d.api('PATCH', '/api/v1/host/migration', { VirtualMachineMigrationPerformanceOption: option });
        const mine: Run[] = [];
        const theirs: Run[] = [];
        for (let i = 0; i < REPEAT; i++) {
          // The guest goes back and forth: each move starts where the last one left it.
          const dirtyMs = load === 'dirty' ? Date.now() - dirtySince : 0;
          try {
            mine.push(await (moves % 2 === 0 ? ours(a, b, b, dirtyMs) : ours(b, a, b, dirtyMs)));
            moves++;
          } catch (e) {
            console.log(`Move-VM ${option} failed: ${(e as Error).message.split('\n')[0]}`);
          }
          theirs.push(await peer(option, mem, load, dirtyMs));
        }
        const label = `${mem} MiB ${load} ${option}`;
        const p = show(`QEMU→QEMU ${label}`, theirs);
        if (mine.length === 0) continue;
        const o = show(`Move-VM ${label}`, mine);
        totals[option] = o.total;
        console.log(`ratio ours/peer ${label}: total ${(o.total / p.total).toFixed(2)}, blackout ${(o.black / p.black).toFixed(2)}`);
      }
      if (totals.TCPIP && totals.Compression) compressionRatios.push(`${mem} MiB ${load}, ${process.env.LINK_MBIT ? `${process.env.LINK_MBIT} Mbit/s` : 'loopback'}: Compression/TCPIP total ${(totals.Compression / totals.TCPIP).toFixed(2)} (goal ≤ 0.5)`);
      await (moves % 2 === 0 ? a : b).api('DELETE', '/api/v1/vms/bench?force=true');
    }
  }
  for (const line of compressionRatios) console.log(line);
} finally {
  await Promise.all([a.stop(), b.stop()]);
}
console.log(`# load average after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
