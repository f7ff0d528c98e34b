// Hyper-V's migration networks (Add-/Get-/Set-/Remove-VMMigrationNetwork): the subnets live
// migration traffic may use, each with a Priority (lower first). With Set-VMHost
// -UseAnyNetworkForMigration $false and at least one subnet listed, a destination binds its
// stream listener to its own address in the best subnet that holds one (refusing the move when
// none does), and a source sends only to a destination address in one of its subnets, from its
// own address there. With -UseAnyNetworkForMigration $true, or no subnet listed, the stream
// uses the API's address: a fresh host moves VMs before anyone lists a network (Hyper-V would
// refuse them; its listeners are not tied to a management address as ours are). Kept in
// migration.json beside the other migration settings. Pure: the host's addresses are passed in.
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';

export interface MigrationNetwork {
  /** Canonical CIDR: the network address (host bits clear), '/', the prefix length. */
  Subnet: string;
  Priority: number;
}

const MAX_PRIORITY = 2 ** 31 - 1;

interface Parsed { family: 'ipv4' | 'ipv6'; bytes: number[]; prefix: number }

function addressBytes(address: string, family: 'ipv4' | 'ipv6'): number[] {
  if (family === 'ipv4') return address.split('.').map(Number);
  const [head, tail] = address.includes('::') ? address.split('::') as [string, string] : [address, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 255]; });
}

function formatBytes(b: number[], family: 'ipv4' | 'ipv6'): string {
  if (family === 'ipv4') return b.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes '::'.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

function parse(subnet: string, param: string): Parsed {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(subnet.trim());
  const family = m ? ({ 4: 'ipv4', 6: 'ipv6' } as const)[isIP(m[1]!) as 4 | 6] : undefined;
  if (!m || family === undefined) throw invalid(param, `'${subnet}' is not a subnet: write ADDRESS/PREFIX (10.1.0.0/16, fd00:1::/64)`);
  if (family === 'ipv6' && m[1]!.includes('.')) throw invalid(param, `'${subnet}': write the IPv6 address in hex groups, without an embedded IPv4 address`);
  const prefix = Number(m[2]);
  const bits = family === 'ipv4' ? 32 : 128;
  if (prefix > bits) throw invalid(param, `'${subnet}': the prefix length of an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} subnet is 0 to ${bits}`);
  const bytes = addressBytes(m[1]!, family);
  const masked = bytes.map((x, i) => x & (0xff << Math.max(0, Math.min(8, 8 - (prefix - 8 * i)))) & 0xff);
  if (masked.some((x, i) => x !== bytes[i])) {
    throw invalid(param, `'${subnet}' has host bits set: the subnet is ${formatBytes(masked, family)}/${prefix}`);
  }
  return { family, bytes, prefix };
}

/** A subnet as Hyper-V shows it (canonical: 10.1.0.0/16, fd00:1::/64); refusals name `param`. */
export function canonicalSubnet(subnet: string, param = 'Subnet'): string {
  const p = parse(subnet, param);
  return `${formatBytes(p.bytes, p.family)}/${p.prefix}`;
}

function checkPriority(priority: number, param: string): number {
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) throw invalid(param, `must be a whole number from 0 to ${MAX_PRIORITY}`);
  return priority;
}

const byPriority = (list: MigrationNetwork[]) => [...list].sort((a, b) => a.Priority - b.Priority || a.Subnet.localeCompare(b.Subnet));

function find(list: MigrationNetwork[], subnet: string): MigrationNetwork {
  const s = canonicalSubnet(subnet);
  const n = list.find((x) => x.Subnet === s);
  if (!n) throw new VmhostError('NOT_FOUND', `No migration network ${s} on this host (Get-VMMigrationNetwork lists them)`, { subnet: s });
  return n;
}

/** Add-VMMigrationNetwork: without -Priority it goes after every listed one. */
export function addNetwork(list: MigrationNetwork[], subnet: string, priority?: number): MigrationNetwork[] {
  const s = canonicalSubnet(subnet);
  if (list.some((x) => x.Subnet === s)) throw new VmhostError('ALREADY_EXISTS', `Migration network ${s} is already listed (Set-VMMigrationNetwork changes its priority)`, { subnet: s });
  const p = priority === undefined ? Math.max(-1, ...list.map((x) => x.Priority)) + 1 : checkPriority(priority, 'Priority');
  return byPriority([...list, { Subnet: s, Priority: p }]);
}

/** Set-VMMigrationNetwork -NewSubnet -NewPriority. */
export function setNetwork(list: MigrationNetwork[], subnet: string, change: { NewSubnet?: string; NewPriority?: number }): MigrationNetwork[] {
  const n = find(list, subnet);
  if (change.NewSubnet === undefined && change.NewPriority === undefined) throw invalid('NewSubnet', 'give -NewSubnet or -NewPriority');
  const s = change.NewSubnet === undefined ? n.Subnet : canonicalSubnet(change.NewSubnet, 'NewSubnet');
  if (s !== n.Subnet && list.some((x) => x.Subnet === s)) throw new VmhostError('ALREADY_EXISTS', `Migration network ${s} is already listed`, { subnet: s });
  const p = change.NewPriority === undefined ? n.Priority : checkPriority(change.NewPriority, 'NewPriority');
  return byPriority(list.map((x) => (x === n ? { Subnet: s, Priority: p } : x)));
}

export function removeNetwork(list: MigrationNetwork[], subnet: string): MigrationNetwork[] {
  const n = find(list, subnet);
  return list.filter((x) => x !== n);
}

/** Get-VMMigrationNetwork -Subnet -Priority: the listed ones that match, best first. */
export function selectNetworks(list: MigrationNetwork[], filter: { Subnet?: string; Priority?: number }): MigrationNetwork[] {
  const s = filter.Subnet === undefined ? undefined : canonicalSubnet(filter.Subnet);
  return byPriority(list).filter((x) => (s === undefined || x.Subnet === s) && (filter.Priority === undefined || x.Priority === filter.Priority));
}

/** A saved list, checked as if added again (a hand-edited file cannot smuggle in a bad subnet). */
export function checkNetworks(saved: unknown): MigrationNetwork[] {
  if (!Array.isArray(saved)) return [];
  return saved.reduce<MigrationNetwork[]>((list, n: { Subnet?: unknown; Priority?: unknown }) => addNetwork(list, String(n.Subnet), Number(n.Priority)), []);
}

function contains(n: MigrationNetwork, address: string): boolean {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  const [net, prefix] = n.Subnet.split('/') as [string, string];
  if ((isIP(net) === 6 ? 'ipv6' : 'ipv4') !== family) return false;
  const b = new BlockList();
  b.addSubnet(net, Number(prefix), family);
  return b.check(address, family);
}

/** This machine's addresses (every interface's, loopback included). */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((xs) => (xs ?? []).map((x) => x.address.replace(/%.*$/, '')));
}

export interface NetworkPolicy { useAny: boolean; networks: MigrationNetwork[] }

const restricted = (p: NetworkPolicy) => !p.useAny && p.networks.length > 0;
const listed = (p: NetworkPolicy) => byPriority(p.networks).map((n) => n.Subnet).join(', ');

/** Destination: the address its stream listener binds — its own in the best subnet, else the API's. */
export function listenAddress(p: NetworkPolicy, locals: string[], apiAddress: string): string {
  if (!restricted(p)) return apiAddress;
  for (const n of byPriority(p.networks)) {
    const mine = locals.find((a) => contains(n, a));
    if (mine !== undefined) return mine;
  }
  throw new VmhostError('MIGRATION_NO_NETWORK', `this host has no address on its migration networks (${listed(p)}): Add-VMMigrationNetwork a subnet it is on, or Set-VMHost -UseAnyNetworkForMigration $true`, { networks: listed(p) });
}

/** Source: the local address the stream leaves from to reach `destination` (undefined: the kernel's choice). */
export function sourceAddress(p: NetworkPolicy, locals: string[], destination: string): string | undefined {
  if (!restricted(p)) return undefined;
  const n = byPriority(p.networks).find((x) => contains(x, destination));
  if (!n) {
    throw new VmhostError('MIGRATION_NO_NETWORK', `the destination's migration address ${destination} is on none of this host's migration networks (${listed(p)}): Add-VMMigrationNetwork its subnet, or Set-VMHost -UseAnyNetworkForMigration $true`, { address: destination, networks: listed(p) });
  }
  return locals.find((a) => contains(n, a));
}
