// Hyper-V Replica's throughput, RPO and CPU cost (issue 13): daemon A replicates a running test
// guest to daemon B on this machine (TLS over loopback, CompressionEnabled — the guest's records
// are random bytes, so deflate gains nothing and costs its CPU) while the guest writes 1 MiB
// records with O_DIRECT at RATES MiB/s (test/support/replica-guest.ts's rate writer: 48 slots of
// the data disk's first 48 MiB, so a cycle carries at most 48 MiB however much was written).
// Modes: 'interval' (-ReplicationFrequencySec 30, A's timer at SCALE × the frequency: 30 × 0.1
// = a cycle every 3 s) and 'continuous' (-ReplicationFrequencySec 1: a shipment every 200 ms).
// Per row, over WINDOW s of steady writing: the rate the guest achieved (its own count and
// uptime), the replicated rate (Measure-VMReplication's TotalReplicationSize: changed bytes
// sent, before compression), the cycles and their mean latency, the RPO — the age of B's newest
// recovery point (Get-VMReplication's LastReplicationTime on B: the moment A's point was taken),
// sampled every 250 ms: what a failover on B at that instant would lose — mean and max, and the
// CPU time (user + system, /proc) of each daemon per MiB replicated. A's daemon also serves the
// guest's disk (the block server is in the daemon), so 'none' rows (no replication, the same
// writer) give A's CPU for the writes alone; subtract it. Each row is followed by the breakdown
// of one point (shipment or cycle) by phase on each side, mean wall and CPU ms over the row's
// points (src/replica/shipment-trace.ts: VMHOST_REPLICA_TRACE, the daemon's whole CPU in the phase).
//   node --import tsx bench/replica.ts      (RATES=1,10,50 MODES=none,interval,continuous WINDOW=20 SCALE=0.1)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestDaemon, freePort } from '../test/support/daemon.ts';
import { install, issue, makeCa, trust } from '../test/support/replica-certs.ts';
import type { PhaseTimes } from '../src/replica/shipment-trace.ts';
import { enableReplicaServer, startPatternGuest, startRateWriter, stopRateWriter, type PatternGuest } from '../test/support/replica-guest.ts';

const RATES = (process.env.RATES ?? '1,10,50').split(',').map(Number);
const MODES = (process.env.MODES ?? 'none,interval,continuous').split(',') as Mode[];
const WINDOW = Number(process.env.WINDOW ?? 20);
const SCALE = Number(process.env.SCALE ?? 0.1);
type Mode = 'none' | 'interval' | 'continuous';
const MiB = 1 << 20;
const VM = 'bench';

/** User + system CPU time of a daemon's process so far, ms (/proc/PID/stat's clock ticks, 100 per second). */
async function cpuMs(d: TestDaemon): Promise<number> {
  const f = (await readFile(`/proc/${d.proc!.pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function json<T>(d: TestDaemon, path: string): Promise<T> {
  const r = await d.api('GET', path);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}`);
  return [r.json].flat()[0] as T;
}

interface Stats { SuccessfulReplicationCount: number; TotalReplicationSize: number; TotalLatencyMs: number }
const stats = (a: TestDaemon) => json<Stats>(a, `/api/v1/replication/statistics?VMName=${VM}`);
/** B's replica row: the moment of its newest point. */
const newestOnB = async (b: TestDaemon) => Date.parse((await json<{ LastReplicationTime: string }>(b, `/api/v1/replication?VMName=${VM}`)).LastReplicationTime);
const guestCount = async (g: PatternGuest) => (await g.run('cat /tmp/cn; cut -d" " -f1 /proc/uptime')).split(/\s+/).map(Number) as [number, number];

interface Row { mode: Mode; rate: number; wrote: number; replicated: number; cycles: number; latencyMs: number; rpoMean: number; rpoMax: number; cpuA: number; cpuB: number; load: number }

const TRACE = join(tmpdir(), `replica-bench-trace-${process.pid}.jsonl`);
process.env.VMHOST_REPLICA_TRACE = TRACE; // inherited by both daemons

/** Per side, each phase's mean wall and CPU ms over the points traced in [from, to). */
async function breakdown(from: number, to: number): Promise<string> {
  const lines = (await readFile(TRACE, 'utf8').catch(() => '')).split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { side: string; at: string; initial: boolean; phases: PhaseTimes })
    .filter((l) => !l.initial && Date.parse(l.at) >= from && Date.parse(l.at) < to);
  const out: string[] = [];
  for (const side of ['primary', 'replica']) {
    const ls = lines.filter((l) => l.side === side);
    if (ls.length === 0) continue;
    const sum: PhaseTimes = {};
    for (const l of ls) for (const [k, v] of Object.entries(l.phases)) { const p = (sum[k] ??= { wallMs: 0, cpuMs: 0 }); p.wallMs += v.wallMs; p.cpuMs += v.cpuMs; }
    const total = Object.values(sum).reduce((a, p) => a + p.wallMs, 0) / ls.length;
    out.push(`  ${side} (${ls.length} points, ${total.toFixed(0)} ms each): ` + Object.entries(sum).map(([k, p]) => `${k} ${(p.wallMs / ls.length).toFixed(0)}/${(p.cpuMs / ls.length).toFixed(0)}`).join(', '));
  }
  return out.length > 0 ? out.join('\n') + '  (wall/CPU ms per point)' : '  (no points traced)';
}

async function measure(mode: Mode, rate: number, a: TestDaemon, b: TestDaemon, g: PatternGuest): Promise<Row> {
  await startRateWriter(g, rate);
  await sleep(3000); // past the first records and a cycle
  const [n0, u0] = await guestCount(g);
  const s0 = mode === 'none' ? undefined : await stats(a);
  const [ca0, cb0] = [await cpuMs(a), await cpuMs(b)];
  const rpo: number[] = [];
  const end = Date.now() + WINDOW * 1000;
  while (Date.now() < end) {
    if (mode !== 'none') rpo.push((Date.now() - (await newestOnB(b))) / 1000);
    await sleep(250);
  }
  const [ca1, cb1] = [await cpuMs(a), await cpuMs(b)];
  const s1 = mode === 'none' ? undefined : await stats(a);
  const [n1, u1] = await guestCount(g);
  await stopRateWriter(g);
  const replicated = s0 && s1 ? (s1.TotalReplicationSize - s0.TotalReplicationSize) / MiB : 0;
  const cycles = s0 && s1 ? s1.SuccessfulReplicationCount - s0.SuccessfulReplicationCount : 0;
  const per = (ms: number) => ms / Math.max(replicated || (n1 - n0), 1e-9);
  return {
    mode, rate, wrote: (n1 - n0) / (u1 - u0), replicated: replicated / WINDOW, cycles, latencyMs: s0 && s1 && cycles > 0 ? (s1.TotalLatencyMs - s0.TotalLatencyMs) / cycles : 0,
    rpoMean: rpo.length > 0 ? rpo.reduce((x, y) => x + y, 0) / rpo.length : NaN, rpoMax: rpo.length > 0 ? Math.max(...rpo) : NaN,
    cpuA: per(ca1 - ca0), cpuB: per(cb1 - cb0), load: loadavg()[0]!,
  };
}

async function main(): Promise<void> {
  const certs = await mkdtemp(join(tmpdir(), 'replica-bench-'));
  const ca = await makeCa(certs, 'bench-ca');
  const [certA, certB] = await Promise.all([issue(certs, 'primary-a.vmhost.test', ca), issue(certs, 'replica-b.vmhost.test', ca, ['127.0.0.1'])]);
  // One after the other, each stopped on the way out: on a loaded machine a daemon may miss its start deadline.
  let a: TestDaemon | undefined, b: TestDaemon | undefined;
  try {
    a = await TestDaemon.start(undefined, ['--replication-timer-scale', String(SCALE)]);
    b = await TestDaemon.start();
    for (const [d, cert] of [[a, certA], [b, certB]] as const) {
      await install(d.dataDir, cert, 'host');
      await trust(d.dataDir, ca);
    }
    const port = await freePort();
    await enableReplicaServer(b, port, 'primary-a.vmhost.test');
    const g = await startPatternGuest(a, VM);
    console.log(`replica bench: WINDOW ${WINDOW} s per row, interval = 30 s × ${SCALE}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log('mode        MiB/s asked  guest wrote  replicated  cycles  latency ms  RPO mean s  RPO max s  A CPU ms/MiB  B CPU ms/MiB  load');
    for (const mode of MODES) {
      if (mode !== 'none') {
        await a.ok('Enable-VMReplication', '-VMName', VM, '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(port), '-AuthenticationType', 'Certificate',
          '-CertificateThumbprint', certA.thumbprint, '-CompressionEnabled', '$true', '-RecoveryHistory', '2', '-ReplicationFrequencySec', mode === 'continuous' ? '1' : '30');
        await a.ok('Start-VMInitialReplication', '-VMName', VM);
      }
      for (const rate of RATES) {
        const from = Date.now();
        const r = await measure(mode, rate, a, b, g);
        console.log(`${r.mode.padEnd(10)}  ${String(r.rate).padStart(11)}  ${r.wrote.toFixed(1).padStart(11)}  ${r.replicated.toFixed(1).padStart(10)}  ${String(r.cycles).padStart(6)}  `
          + `${r.latencyMs.toFixed(0).padStart(10)}  ${r.rpoMean.toFixed(2).padStart(10)}  ${r.rpoMax.toFixed(2).padStart(9)}  ${r.cpuA.toFixed(1).padStart(12)}  ${r.cpuB.toFixed(1).padStart(12)}  ${r.load.toFixed(1)}`);
        if (mode !== 'none') console.log(await breakdown(from, Date.now()));
      }
      if (mode !== 'none') await a.ok('Remove-VMReplication', '-VMName', VM);
    }
    console.log(`('none': no replication, CPU per MiB the guest wrote; load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  } finally {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(certs, { recursive: true, force: true });
    await rm(TRACE, { force: true });
  }
}

await main();
