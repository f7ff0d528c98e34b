// Two network namespaces joined by one L2 segment, three ways, for bench/switch-vs-bridge.ts:
//   bridgePair   a Linux bridge with a veth pair into each namespace (optionally nftables rules
//                in the bridge family equivalent to our port policy)
//   hostNicPair  our switch through the host vNIC path a user runs: an Internal switch, two
//                management-OS adapters (taps relayed by vmhost-tapd), each tap moved into a namespace
//   vmPortPair   our switch through two VM adapters' ports (VMs never started), each port's socket
//                relayed by vmhost-tapd to a tap in a namespace: the way to give the taps a port
//                policy, since guards and extended ACLs are only settable on VM adapters
// Everything created is registered with a Cleanup, undone in reverse order even on failure or Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { shortSocketRoot, socketDirFor } from '../src/host/runtime-dir.ts';
import { deleteTap, TapRelay } from '../src/host/tapd.ts';
import type { TestDaemon } from '../test/support/daemon.ts';

/** Runs a command; its stdout, or an error naming the command and its stderr. */
export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    p.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    p.on('error', fail);
    p.on('close', (code) => (code === 0 ? ok(out) : fail(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
    if (input !== undefined) p.stdin!.end(input);
  });
}

/** Undo actions, run last-registered first; each failure is printed and the rest still run. */
export class Cleanup {
  private readonly steps: Array<{ what: string; undo: () => Promise<unknown> }> = [];

  add(what: string, undo: () => Promise<unknown>): void { this.steps.push({ what, undo }); }

  async run(): Promise<void> {
    for (let s = this.steps.pop(); s; s = this.steps.pop()) {
      await s.undo().catch((e: unknown) => console.error(`cleanup: ${s!.what}: ${(e as Error).message}`));
    }
  }
}

export interface Pair {
  readonly label: string;
  readonly nsA: string;
  readonly nsB: string;
  /** The address iperf3's server listens on, in nsB. */
  readonly ipB: string;
  /** nsA's interface (its tx_dropped counts frames its queue refused) and nsB's (its counters give the average size of what arrived). */
  readonly ifA: string;
  readonly ifB: string;
}

/** The port policy of the "full policy" cases, the same on both sides: see the README of the bench in BENCHMARKS.md. */
export const ACL_COUNT = 100;
const SUBNET = '10.99.0';
export const ipOf = (side: 'a' | 'b') => `${SUBNET}.${side === 'a' ? 1 : 2}`;
export const tag = () => randomBytes(3).toString('hex');

export async function namespace(c: Cleanup, name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  c.add(`netns ${name}`, () => run('ip', ['netns', 'del', name]));
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Gives `ifname` (already in `ns`) its address and brings it up. */
export async function address(ns: string, ifname: string, side: 'a' | 'b'): Promise<void> {
  await run('ip', ['-n', ns, 'addr', 'add', `${ipOf(side)}/24`, 'dev', ifname]);
  await run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
}

/**
 * A tap moved into `ns`. Its relay keeps the tap's file descriptor, which works from any
 * namespace. Cleanup moves it back first: deleting a namespace would otherwise take the tap
 * with it behind vmhost-tapd's back, and `--delete` looks the tap up in the host namespace.
 */
export async function moveTap(c: Cleanup, ifname: string, ns: string, side: 'a' | 'b'): Promise<void> {
  await run('ip', ['link', 'set', ifname, 'netns', ns]);
  c.add(`tap ${ifname} back from ${ns}`, () => run('ip', ['-n', ns, 'link', 'set', ifname, 'netns', '1']));
  await address(ns, ifname, side);
}

/** nftables rules in the bridge family that do what the port policy of vmPortPair does. */
function bridgeRuleset(table: string, ports: Array<{ ifname: string; mac: string; ip: string }>): string {
  const rules: string[] = [];
  for (const p of ports) {
    const iif = `iifname "${p.ifname}"`;
    rules.push(`${iif} ether saddr != ${p.mac} drop`, `${iif} arp saddr ether != ${p.mac} drop`); // MacAddressSpoofing Off
    rules.push(`${iif} arp saddr ip != ${p.ip} drop`); // ArpGuard
    rules.push(`${iif} udp sport 67 drop`, `${iif} udp sport 547 udp dport 546 drop`); // DhcpGuard
    rules.push(`${iif} icmpv6 type { nd-router-advert, nd-redirect } drop`); // RouterGuard
  }
  // The extended ACLs: 99 that never match, then the one that does (every frame walks all 100).
  for (let i = 0; i < ACL_COUNT - 1; i++) rules.push(`ip daddr 192.168.${i}.0/24 udp dport 5001 drop`);
  rules.push(`ip daddr ${SUBNET}.0/24 accept`);
  return `table bridge ${table} {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n}\n`;
}

export async function bridgePair(c: Cleanup, policy: boolean): Promise<Pair> {
  const t = `vb${tag()}`;
  const br = `${t}br`, nsA = `${t}-a`, nsB = `${t}-b`;
  await run('ip', ['link', 'add', br, 'type', 'bridge']);
  c.add(`bridge ${br}`, () => run('ip', ['link', 'del', br]));
  await run('ip', ['link', 'set', br, 'up']);
  const ports: Array<{ ifname: string; mac: string; ip: string }> = [];
  for (const [ns, side] of [[nsA, 'a'], [nsB, 'b']] as const) {
    await namespace(c, ns);
    const host = `${t}${side}0`, inner = `${t}${side}1`;
    await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
    c.add(`veth ${host}`, () => run('ip', ['link', 'del', host]).catch(() => undefined)); // gone with its namespace already
    await run('ip', ['link', 'set', host, 'master', br, 'up']);
    await address(ns, inner, side);
    const mac = (await run('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${inner}/address`])).trim();
    ports.push({ ifname: host, mac, ip: ipOf(side) });
  }
  if (policy) {
    const table = `vmhost_bench_${t}`;
    await run('nft', ['-f', '-'], bridgeRuleset(table, ports));
    c.add(`nft table ${table}`, () => run('nft', ['delete', 'table', 'bridge', table]));
  }
  return { label: policy ? 'bridge + nftables' : 'bridge', nsA, nsB, ipB: ipOf('b'), ifA: `${t}a1`, ifB: `${t}b1` };
}

interface HostNicView { Name: string; InterfaceName: string }

export async function hostNicPair(c: Cleanup, d: TestDaemon): Promise<Pair> {
  const t = tag(), sw = `bench-${t}`, nsA = `vb${t}-ha`, nsB = `vb${t}-hb`;
  await d.ok('New-VMSwitch', '-Name', sw, '-SwitchType', 'Internal'); // gives the host its first vNIC, named after the switch
  c.add(`switch ${sw}`, () => d.ok('Remove-VMSwitch', '-Name', sw, '-Force'));
  await d.ok('Add-VMNetworkAdapter', '-ManagementOS', '-Name', `${sw}-b`, '-SwitchName', sw);
  const r = await d.api('GET', `/api/v1/host/network-adapters?SwitchName=${sw}`);
  const nics = r.json as HostNicView[];
  if (r.status !== 200 || nics.length !== 2) throw new Error(`host vNICs of ${sw}: ${r.text}`);
  for (const [i, [ns, side]] of ([[nsA, 'a'], [nsB, 'b']] as const).entries()) {
    await namespace(c, ns);
    await moveTap(c, nics[i]!.InterfaceName, ns, side);
  }
  return { label: 'ours (host vNICs)', nsA, nsB, ipB: ipOf('b'), ifA: nics[0]!.InterfaceName, ifB: nics[1]!.InterfaceName };
}

interface AdapterView { Id: string; MacAddress: string }

/** The socket of a VM adapter's port: `<switch socket dir>/<first 13 characters of its id>.sock` (host/vm-network.ts). */
function portSocket(d: TestDaemon, adapterId: string): string {
  const name = `${adapterId.slice(0, 13)}.sock`;
  const found = [socketDirFor(d.dataDir, 'sw'), join(shortSocketRoot(d.dataDir), 'sw')].map((dir) => join(dir, name)).find((p) => existsSync(p));
  if (!found) throw new Error(`no port socket ${name} for adapter ${adapterId}`);
  return found;
}

export async function vmPortPair(c: Cleanup, d: TestDaemon, policy: boolean): Promise<Pair> {
  const t = tag(), sw = `bench-${t}`, nsA = `vb${t}-va`, nsB = `vb${t}-vb`;
  await d.ok('New-VMSwitch', '-Name', sw, '-SwitchType', 'Private');
  c.add(`switch ${sw}`, () => d.ok('Remove-VMSwitch', '-Name', sw, '-Force'));
  for (const [ns, side] of [[nsA, 'a'], [nsB, 'b']] as const) {
    const vm = `${sw}-${side}`;
    await d.ok('New-VM', '-Name', vm, '-SwitchName', sw);
    c.add(`VM ${vm}`, () => d.ok('Remove-VM', '-Name', vm, '-Force'));
    if (policy) {
      await d.ok('Set-VMNetworkAdapter', '-VMName', vm, '-MacAddressSpoofing', 'Off', '-DhcpGuard', 'On', '-RouterGuard', 'On', '-ArpGuard', 'On');
      // The route Add-VMNetworkAdapterExtendedAcl calls, without starting the CLI 100 times.
      for (let i = 0; i < ACL_COUNT; i++) {
        const last = i === ACL_COUNT - 1;
        const body = last
          ? { Direction: 'Outbound', Action: 'Allow', Weight: 1, RemoteIPAddress: `${SUBNET}.0/24` }
          : { Direction: 'Outbound', Action: 'Deny', Weight: 1000 - i, RemoteIPAddress: `192.168.${i}.0/24`, Protocol: 'UDP', RemotePort: '5001' };
        const r = await d.api('POST', `/api/v1/vms/${vm}/network-adapters/extended-acls`, body);
        if (r.status !== 201) throw new Error(`extended ACL ${i} on ${vm}: ${r.status} ${r.text}`);
      }
    }
    const a = (await d.api('GET', `/api/v1/vms/${vm}/network-adapters`)).json as AdapterView[];
    const mac = a[0]!.MacAddress.match(/../g)!.join(':').toLowerCase();
    const ifname = `vb${t}${side}`;
    const relay = await TapRelay.start({ ifname, mac, socketPath: portSocket(d, a[0]!.Id) });
    c.add(`tap ${ifname}`, async () => { await relay.stop(); await deleteTap(ifname); });
    await namespace(c, ns);
    await moveTap(c, ifname, ns, side);
  }
  return { label: policy ? 'ours (VM ports) + policy' : 'ours (VM ports)', nsA, nsB, ipB: ipOf('b'), ifA: `vb${t}a`, ifB: `vb${t}b` };
}

export interface Test { readonly name: string; readonly args: string[]; readonly unit: 'Gbit/s' | 'kpps' }
export const TESTS: Test[] = [
  { name: 'TCP 1 stream', args: [], unit: 'Gbit/s' },
  { name: 'TCP 4 streams', args: ['-P', '4'], unit: 'Gbit/s' },
  { name: 'UDP 64 B', args: ['-u', '-l', '64', '-b', '0'], unit: 'kpps' },
];


interface IperfEnd {
  sum_received?: { bits_per_second: number };
  sum?: { packets: number; lost_packets: number; seconds: number; lost_percent: number };
}

/** iperf3 servers running now: killed on exit, whatever ends the bench. */
const servers = new Set<ChildProcess>();
process.on('exit', () => { for (const s of servers) s.kill('SIGKILL'); });

/** One iperf3 run of `seconds` from nsA to nsB: the server is one-off (-1) in nsB. */
export async function iperf(p: Pair, t: Test, seconds: number): Promise<{ value: number; loss?: number }> {
  // --forceflush: to a pipe iperf3 would hold 'Server listening' in its stdio buffer.
  const server = spawn('ip', ['netns', 'exec', p.nsB, 'iperf3', '-s', '-1', '--forceflush', '-B', p.ipB], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.add(server);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((ok, fail) => {
      server.stdout.on('data', (b: Buffer) => { if (b.toString().includes('Server listening')) ok(); });
      server.on('close', (code) => fail(new Error(`iperf3 server in ${p.nsB} exited ${code}`)));
      timer = setTimeout(() => fail(new Error(`iperf3 server in ${p.nsB} not listening after 10 s`)), 10_000);
    });
    const out = await run('ip', ['netns', 'exec', p.nsA, 'iperf3', '-c', p.ipB, '-t', String(seconds), '-J', ...t.args]);
    const j = JSON.parse(out) as { end: IperfEnd; error?: string };
    if (j.error) throw new Error(`iperf3 ${t.name} ${p.nsA} → ${p.nsB}: ${j.error}`);
    const end = j.end;
    if (t.unit === 'Gbit/s') return { value: end.sum_received!.bits_per_second / 1e9 };
    const s = end.sum!; // UDP: the client's summary carries the server's received and lost counts
    return { value: (s.packets - s.lost_packets) / s.seconds / 1e3, loss: s.lost_percent };
  } finally {
    clearTimeout(timer);
    server.kill('SIGKILL');
    servers.delete(server);
  }
}
