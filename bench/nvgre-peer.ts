// Host B of bench/nvgre.ts's end-to-end case, in a process of its own (a second host has its
// own CPU and event loop; in one thread with host A, A's port reads starved B's UDP reads and
// the kernel dropped most datagrams at B's socket): an External switch whose UDP uplink faces
// host A's, HNV policy with B's provider address, and VM port b in the virtual subnet on the
// given unix socket. Prints "ready" once the port listens, then "stats {json}" on SIGUSR2
// (port b's frames out, the uplink's frames in, the switch's drops), and exits on SIGTERM.
// Run by bench/nvgre.ts: node --import tsx bench/nvgre-peer.ts <json: localPort, remotePort, socketPath, providerMtu, plain?>
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { formatMacNumber } from '../src/packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../src/switch/index.ts';
import { HNV_EXTENSION } from '../src/hnv/index.ts';
import { addLookupRecord, addProviderAddress, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from '../src/hnv/policy.ts';

export const VSID = 5001;
export const LOCAL = 0x525400000001, PEER = 0x525400000002;
export const PA_HERE = '192.168.100.1', PA_THERE = '192.168.100.2';
/** The customer addresses of LOCAL and PEER (bench/netns-pairs.ts's, so namespaces can use them). */
export const CA_LOCAL = '10.99.0.1', CA_PEER = '10.99.0.2';

/** LOCAL's record on PA_HERE, PEER's on PA_THERE; `here` is this host's own PA. */
export function policy(here = PA_HERE): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: here, InterfaceIndex: 1, PrefixLength: 24 }));
  const mac = (n: number): string => n.toString(16).padStart(12, '0');
  p = addLookupRecord(p, lookupRecord({ CustomerAddress: CA_LOCAL, VirtualSubnetID: VSID, MACAddress: mac(LOCAL), ProviderAddress: PA_HERE, Rule: 'TranslationMethodEncap' }));
  p = addLookupRecord(p, lookupRecord({ CustomerAddress: CA_PEER, VirtualSubnetID: VSID, MACAddress: mac(PEER), ProviderAddress: PA_THERE, Rule: 'TranslationMethodEncap' }));
  return p;
}

export interface HostOptions { localPort: number; remotePort: number; socketPath: string; providerMtu: number; plain?: boolean }

/**
 * One host's switch: uplink on loopback toward the other, HNV policy with `pa`, one VM port of
 * the subnet. `plain`: the same switch, uplink and port, untagged and without virtual subnets
 * (no HNV extension): frames cross the uplink as they are — the baseline NVGRE's cost is
 * measured against.
 */
export async function nvgreHost(o: HostOptions & { pa: string; mac: number; port: string }): Promise<VirtualSwitch> {
  const sw = await VirtualSwitch.create({ name: 'bench', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: o.localPort, remoteAddress: '127.0.0.1', remotePort: o.remotePort } });
  if (!o.plain) sw.addExtension(HNV_EXTENSION, { config: { policy: policy(o.pa), providerMtu: o.providerMtu } as unknown as Record<string, unknown> });
  await sw.addPort({ id: o.port, socketPath: o.socketPath, policy: { mac: formatMacNumber(o.mac), ...(o.plain ? {} : { virtualSubnetId: VSID }) } });
  return sw;
}

export interface PeerStats { readonly delivered: number; readonly uplinkIn: number; readonly drops: Record<string, number> }

/** Host B in a process of its own: its pid, its stats on demand, and stop. Resolves once its port listens. */
export async function spawnPeer(o: HostOptions): Promise<{ pid: number; stats(): Promise<PeerStats>; stop(): Promise<void> }> {
  // PEER_CPU_PROF=<dir>: host B writes a cpu profile there (the decapsulating side's, on its own).
  const prof = process.env.PEER_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PEER_CPU_PROF}`] : [];
  const peer = spawn(process.execPath, [...prof, '--import', 'tsx', new URL(import.meta.url).pathname, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: peer.stdout! })[Symbol.asyncIterator]();
  const line = async (prefix: string): Promise<string> => {
    for (let l = await lines.next(); !l.done; l = await lines.next()) if ((l.value as string).startsWith(prefix)) return l.value as string;
    throw new Error(`nvgre-peer exited before '${prefix}'`);
  };
  const stop = async (): Promise<void> => { if (peer.exitCode === null) { peer.kill('SIGTERM'); await once(peer, 'exit'); } };
  try { await line('ready'); } catch (e) { await stop(); throw e; }
  return {
    pid: peer.pid!,
    stats: async () => { peer.kill('SIGUSR2'); return JSON.parse((await line('stats ')).slice(6)) as PeerStats; },
    stop,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const a = JSON.parse(process.argv[2]!) as HostOptions;
  const sw = await nvgreHost({ ...a, pa: PA_THERE, mac: PEER, port: 'b' });
  process.on('SIGUSR2', () => console.log(`stats ${JSON.stringify({ delivered: sw.portStats('b').txFrames, uplinkIn: sw.portStats(UPLINK_PORT_ID).rxFrames, drops: sw.stats().drops })}`));
  process.on('SIGTERM', () => { void sw.close().then(() => process.exit(0)); });
  console.log('ready');
}
