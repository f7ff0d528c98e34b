// Issue 15's kernel peer: iperf3 (TCP 1 stream; UDP with 64-byte payloads at full speed)
// between two network namespaces joined four ways, plain and encapsulated, ours and the kernel's:
//   kernel veth    a veth pair (the kernel's plain path)
//   kernel vxlan   each namespace a "host" with a provider address on a veth pair (MTU 1600)
//                  and a VXLAN device (VNI 5001) over it holding the customer address: the
//                  kernel encapsulating in the sender's own stack. The brief asked for a gretap
//                  pair; this kernel has no GRE (`ip link add … type gretap`: "Unknown device
//                  type", no ip_gre built in and no modules to load), VXLAN is the tunnel it has.
//   ours plain     a Private switch (in this process) with two ports, each relayed by
//                  vmhost-tapd to a tap moved into a namespace (bench/netns-pairs.ts's VM-port path)
//   ours nvgre     host A's External switch here and host B's in its own process
//                  (bench/nvgre-peer.ts), joined by their UDP uplinks on loopback, one VM port
//                  of VSID 5001 on each, relayed to a tap in a namespace: the frame goes tap →
//                  switch A → NVGRE over UDP → switch B → tap. Provider MTU 1600.
//   ours plain2    the same two hosts and uplinks without virtual subnets: nvgre / plain2 is
//                  the encapsulation's cost (VMHOST_NO_UDP_ADDON=1: uplinks on node:dgram)
// Prints the median of ROUNDS runs of each and the encapsulated / plain ratio of each side.
// Needs root, iperf3, ip. Cleans up on any exit.
//   node --import tsx bench/nvgre-netns.ts [seconds per iperf3 run, default 4]   (ROUNDS=3)
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { formatMacNumber } from '../src/packet/index.ts';
import { TapRelay, deleteTap } from '../src/host/tapd.ts';
import { VirtualSwitch } from '../src/switch/index.ts';
import { freeUdpPort } from '../src/switch/test-support.ts';
import { address, Cleanup, iperf, ipOf, moveTap, namespace, run, tag, TESTS, type Pair } from './netns-pairs.ts';
import { LOCAL, PA_HERE, PEER, nvgreHost, spawnPeer } from './nvgre-peer.ts';

const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PROVIDER_MTU = 1600;
const tests = TESTS.filter((t) => t.name !== 'TCP 4 streams');

async function vethPair(c: Cleanup, nsA: string, nsB: string, ifA: string, ifB: string, mtu?: number): Promise<void> {
  await namespace(c, nsA);
  await namespace(c, nsB);
  await run('ip', ['-n', nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  if (mtu) for (const [ns, i] of [[nsA, ifA], [nsB, ifB]] as const) await run('ip', ['-n', ns, 'link', 'set', i, 'mtu', String(mtu)]);
}

async function kernelVeth(c: Cleanup): Promise<Pair> {
  const t = tag(), nsA = `nv${t}-ka`, nsB = `nv${t}-kb`;
  await vethPair(c, nsA, nsB, 'eth0', 'eth1');
  await address(nsA, 'eth0', 'a');
  await address(nsB, 'eth1', 'b');
  return { label: 'kernel veth', nsA, nsB, ipB: ipOf('b'), ifA: 'eth0', ifB: 'eth1' };
}

async function kernelVxlan(c: Cleanup): Promise<Pair> {
  const t = tag(), nsA = `nv${t}-xa`, nsB = `nv${t}-xb`;
  await vethPair(c, nsA, nsB, 'pa0', 'pa0b', PROVIDER_MTU);
  const pas = { a: '192.168.100.1', b: '192.168.100.2' };
  for (const [ns, dev, side, other] of [[nsA, 'pa0', 'a', 'b'], [nsB, 'pa0b', 'b', 'a']] as const) {
    await run('ip', ['-n', ns, 'addr', 'add', `${pas[side]}/24`, 'dev', dev]);
    await run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    await run('ip', ['-n', ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '5001', 'local', pas[side], 'remote', pas[other], 'dstport', '4789', 'dev', dev]);
    await run('ip', ['-n', ns, 'link', 'set', 'vx0', 'mtu', '1500']);
    await address(ns, 'vx0', side);
  }
  return { label: 'kernel vxlan', nsA, nsB, ipB: ipOf('b'), ifA: 'vx0', ifB: 'vx0' };
}

/** Taps for the two port sockets, each moved into its namespace. */
async function taps(c: Cleanup, label: string, paths: [string, string]): Promise<Pair> {
  const t = tag(), nsA = `nv${t}-oa`, nsB = `nv${t}-ob`;
  for (const [ns, side, path, mac] of [[nsA, 'a', paths[0], LOCAL], [nsB, 'b', paths[1], PEER]] as const) {
    const ifname = `nv${t}${side}`;
    const relay = await TapRelay.start({ ifname, mac: formatMacNumber(mac), socketPath: path });
    c.add(`tap ${ifname}`, async () => { await relay.stop(); await deleteTap(ifname); });
    await namespace(c, ns);
    await moveTap(c, ifname, ns, side);
  }
  return { label, nsA, nsB, ipB: ipOf('b'), ifA: `nv${t}a`, ifB: `nv${t}b` };
}

async function oursPlain(c: Cleanup, dir: string): Promise<Pair> {
  const sw = await VirtualSwitch.create({ name: 'bench', type: 'Private' });
  c.add('switch plain', () => sw.close());
  const paths: [string, string] = [join(dir, 'pa.sock'), join(dir, 'pb.sock')];
  await sw.addPort({ id: 'a', socketPath: paths[0], policy: { mac: formatMacNumber(LOCAL) } });
  await sw.addPort({ id: 'b', socketPath: paths[1], policy: { mac: formatMacNumber(PEER) } });
  return taps(c, 'ours plain', paths);
}

/** Two hosts joined by their UDP uplinks: 'ours nvgre', or 'ours plain2' — the same without virtual subnets (no encapsulation). */
async function oursTwoHosts(c: Cleanup, dir: string, plain: boolean): Promise<Pair> {
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const label = plain ? 'ours plain2' : 'ours nvgre', tagOf = plain ? 'p2' : 'n';
  const paths: [string, string] = [join(dir, `${tagOf}a.sock`), join(dir, `${tagOf}b.sock`)];
  const peer = await spawnPeer({ localPort: pb, remotePort: pa, socketPath: paths[1], providerMtu: PROVIDER_MTU, plain });
  c.add(`${label}: host B`, () => peer.stop());
  const sw = await nvgreHost({ localPort: pa, remotePort: pb, pa: PA_HERE, mac: LOCAL, port: 'a', socketPath: paths[0], providerMtu: PROVIDER_MTU, plain });
  c.add(`${label}: host A`, () => sw.close());
  return taps(c, label, paths);
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const c = new Cleanup();
process.on('SIGINT', () => { void c.run().then(() => process.exit(130)); });
const dir = mkdtempSync(join(tmpdir(), 'vmhost-nvgrens-'));
c.add('socket dir', async () => rmSync(dir, { recursive: true, force: true }));
try {
  const pairs = [await kernelVeth(c), await kernelVxlan(c), await oursPlain(c, dir), await oursTwoHosts(c, dir, true), await oursTwoHosts(c, dir, false)];
  console.log(`nvgre-netns: ${SECONDS} s per run, ${ROUNDS} rounds, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const results = new Map<string, number[]>();
  for (let r = 1; r <= ROUNDS; r++) {
    for (const t of tests) {
      for (const p of pairs) {
        const x = await iperf(p, t, SECONDS);
        const key = `${p.label}|${t.name}`;
        results.set(key, [...(results.get(key) ?? []), x.value]);
        console.log(`round ${r} ${t.name} ${p.label}: ${x.value.toFixed(t.unit === 'kpps' ? 0 : 2)} ${t.unit}${x.loss !== undefined ? `, loss ${x.loss.toFixed(1)} %` : ''}   (load ${loadavg()[0]!.toFixed(2)})`);
      }
    }
  }
  for (const t of tests) {
    const m = (label: string): number => median(results.get(`${label}|${t.name}`)!);
    const f = (label: string): string => `${label} ${m(label).toFixed(t.unit === 'kpps' ? 0 : 2)} ${t.unit}`;
    console.log(`median ${t.name}: ${f('kernel veth')}, ${f('kernel vxlan')} (vxlan / veth ${(m('kernel vxlan') / m('kernel veth')).toFixed(2)}); ${f('ours plain')}, ${f('ours plain2')}, ${f('ours nvgre')} (nvgre / plain ${(m('ours nvgre') / m('ours plain')).toFixed(2)}, nvgre / plain2 ${(m('ours nvgre') / m('ours plain2')).toFixed(2)}); ours nvgre / kernel vxlan ${(m('ours nvgre') / m('kernel vxlan')).toFixed(3)}`);
  }
} finally {
  await c.run();
}
