// Our switch against the Linux kernel bridge (issue 17, item 6): iperf3 between two network
// namespaces joined (a) by our switch in a real vmhostd, each namespace holding a tap relayed by
// vmhost-tapd, and (b) by a Linux bridge with veth pairs. Cases, each ours and the bridge's in
// turn, ROUNDS times, medians printed:
//   TCP 1 stream, TCP 4 streams (Gbit/s received), UDP with 64-byte payloads at full speed
//   (`-u -l 64 -b 0`: packets/s received, and the loss), without and with policy: on ours
//   MacAddressSpoofing Off, DhcpGuard, RouterGuard, ArpGuard and 100 extended ACLs on both ports
//   (the traffic matches only the last), on the bridge the same in nftables (bridge family).
// Our no-policy case runs through host vNICs (New-VMSwitch -SwitchType Internal, Add-VMNetworkAdapter
// -ManagementOS, the taps moved into the namespaces): what a user runs. Guards and extended ACLs are
// settable only on VM adapters, so the policy case relays two VM adapters' ports (VMs never started)
// to taps with the same vmhost-tapd; 'ours (VM ports)' without policy shows that path costs the same.
// Beside ours: the CPU the daemon and the relays used (cores busy on average) over the case, and
// for both the average bytes per packet nsB's interface received (a TCP segment coalesced by GSO
// arrives as one packet of up to 64 KiB; through a tap it arrives as MTU-sized frames).
// The sending interface's tx_dropped (frames its queue refused) is printed with the UDP loss.
// Needs root, iperf3, nft, ip. Cleans up namespaces, bridges, taps, nftables tables and the daemon
// on any exit, Ctrl-C included. Results and their reading: BENCHMARKS.md.
//   node --import tsx bench/switch-vs-bridge.ts [seconds per iperf3 run, default 4]   (ROUNDS=3)
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { TestDaemon } from '../test/support/daemon.ts';
import { bridgePair, Cleanup, hostNicPair, iperf, run, TESTS, vmPortPair, type Pair, type Test } from './netns-pairs.ts';

const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

interface Sample { value: number; loss?: number; load: number; rxSize: number; txDropped: number; cpu?: { daemon: number; relays: number } }

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch { return 0; } // gone
}

/** The vmhost-tapd relays that are children of these processes (the daemon's host vNICs, the bench's VM-port relays): other engineers' relays are not counted. */
function relayPids(parents: number[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.includes('(vmhost-tapd)') && parents.includes(Number(stat.split(') ')[1]!.split(' ')[1]))) out.push(Number(e));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/**
 * Bytes and packets nsB's interface has received (a TCP run's average shows whether segments
 * arrived coalesced by GSO or as MTU-sized frames), and the frames nsA's interface dropped
 * because its transmit queue was full (for a tap: its relay did not read them in time).
 */
async function counters(p: Pair): Promise<{ bytes: number; packets: number; txDropped: number }> {
  const stat = (ifname: string, k: string) => `$(cat /sys/class/net/${ifname}/statistics/${k})`;
  const both = await Promise.all([
    run('ip', ['netns', 'exec', p.nsB, 'sh', '-c', `echo ${stat(p.ifB, 'rx_bytes')} ${stat(p.ifB, 'rx_packets')}`]),
    run('ip', ['netns', 'exec', p.nsA, 'sh', '-c', `echo ${stat(p.ifA, 'tx_dropped')}`]),
  ]);
  const [bytes, packets, txDropped] = both.join(' ').trim().split(/\s+/).map(Number);
  return { bytes: bytes!, packets: packets!, txDropped: txDropped! };
}

async function measure(p: Pair, t: Test, daemonPid?: number): Promise<Sample> {
  const c0 = await counters(p);
  const relays = daemonPid ? relayPids([daemonPid, process.pid]) : [];
  const cpu0 = daemonPid ? { daemon: cpuSeconds(daemonPid), relays: relays.reduce((s, r) => s + cpuSeconds(r), 0) } : undefined;
  const t0 = performance.now();
  const r = await iperf(p, t, SECONDS);
  const wall = (performance.now() - t0) / 1000;
  const load = loadavg()[0]!;
  const c1 = await counters(p);
  const rxSize = (c1.bytes - c0.bytes) / Math.max(1, c1.packets - c0.packets);
  const txDropped = (c1.txDropped - c0.txDropped) / wall / 1e3;
  if (!cpu0) return { ...r, load, rxSize, txDropped };
  const relayCpu = relays.reduce((s, x) => s + cpuSeconds(x), 0);
  return { ...r, load, rxSize, txDropped, cpu: { daemon: (cpuSeconds(daemonPid!) - cpu0.daemon) / wall, relays: (relayCpu - cpu0.relays) / wall } };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(c: Cleanup): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, taps, nftables)');
  for (const tool of ['iperf3', 'nft', 'ip']) await run('sh', ['-c', `command -v ${tool}`]).catch(() => { throw new Error(`${tool} is not installed`); });
  const d = await TestDaemon.start();
  c.add('daemon', async () => { await d.terminate(); await d.stop(); });
  const daemonPid = d.proc!.pid!;

  // [ours, bridge] per policy setting; both of a row measured back to back, rows alternating.
  const rows: Array<{ policy: string; ours: Pair; bridge: Pair }> = [
    { policy: 'none', ours: await hostNicPair(c, d), bridge: await bridgePair(c, false) },
    { policy: 'none', ours: await vmPortPair(c, d, false), bridge: await bridgePair(c, false) },
    { policy: 'guards + 100 ACLs', ours: await vmPortPair(c, d, true), bridge: await bridgePair(c, true) },
  ];
  const results = new Map<string, { ours: Sample[]; bridge: Sample[] }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [ri, row] of rows.entries()) {
      for (const t of TESTS) {
        const key = `${ri}|${t.name}`;
        const slot = results.get(key) ?? results.set(key, { ours: [], bridge: [] }).get(key)!;
        slot.ours.push(await measure(row.ours, t, daemonPid));
        slot.bridge.push(await measure(row.bridge, t));
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${row.ours.label} ${t.name}: ${slot.ours.at(-1)!.value.toFixed(2)} vs ${slot.bridge.at(-1)!.value.toFixed(2)} ${t.unit}\n`);
      }
    }
  }

  console.log(`\nSwitch vs Linux bridge: iperf3 ${SECONDS} s per run, median of ${ROUNDS} rounds (ours and the bridge back to back)\n`);
  console.log('| policy | test | ours (path) | ours | bridge | ours / bridge | UDP loss ours / bridge (drops at the sending interface, kpps) | bytes per received packet ours / bridge | daemon CPU | relays CPU | load avg |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [ri, row] of rows.entries()) {
    for (const t of TESTS) {
      const { ours, bridge } = results.get(`${ri}|${t.name}`)!;
      const o = median(ours.map((s) => s.value)), b = median(bridge.map((s) => s.value));
      const fmt = (x: number) => (t.unit === 'kpps' ? `${x.toFixed(0)} kpps` : `${x.toFixed(2)} Gbit/s`);
      const drops = (xs: Sample[]) => median(xs.map((s) => s.txDropped)).toFixed(0);
      const loss = t.unit === 'kpps' ? `${median(ours.map((s) => s.loss!)).toFixed(0)} % / ${median(bridge.map((s) => s.loss!)).toFixed(0)} % (${drops(ours)} / ${drops(bridge)})` : '';
      const size = `${median(ours.map((s) => s.rxSize)).toFixed(0)} / ${median(bridge.map((s) => s.rxSize)).toFixed(0)}`;
      const cpu = (k: 'daemon' | 'relays') => `${median(ours.map((s) => s.cpu![k])).toFixed(2)}`;
      const loads = [...ours, ...bridge].map((s) => s.load);
      console.log(`| ${row.policy} | ${t.name} | ${row.ours.label} | ${fmt(o)} | ${fmt(b)} | **${(o / b).toFixed(3)}** | ${loss} | ${size} | ${cpu('daemon')} | ${cpu('relays')} | ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} |`);
    }
  }
}

const cleanup = new Cleanup();
let stopping = false;
async function finish(code: number): Promise<void> {
  if (stopping) return; // a second Ctrl-C must not cut the cleanup short
  stopping = true;
  await cleanup.run();
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { console.error(`\n${sig}: cleaning up`); void finish(130); });
main(cleanup).then(() => finish(0), (e: unknown) => { console.error(e); void finish(1); });
