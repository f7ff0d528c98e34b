// The Hyper-V Network Virtualization policy of a host, in the words of the Windows Server 2012
// R2 NetWNV cmdlets that set it (New-NetVirtualizationProviderAddress, -LookupRecord,
// -CustomerRoute) and of Set-VMNetworkAdapter -VirtualSubnetId: plain JSON-serialisable
// records, validated and normalized here, changed only through the pure functions below (each
// returns a new policy). A routing domain (RDID, a GUID) holds virtual subnets (VSIDs); as in
// 2012 R2 the domain of a subnet is named by its customer routes and the lookup records'
// CustomerID, and one VSID belongs to one routing domain only. Lookups for the data path are in
// lookup.ts. Depends on common and packet (address parsing) only.
import { VmhostError } from '../common/index.ts';
import { formatIpv4, formatIpv6, ipv4Mask, parseCidr, parseIpv4Address as parseIpv4, parseIpv6Address as parseIpv6, parseMac, type Cidr } from '../packet/index.ts';

/** RFC 7637: 24-bit VSIDs; 0–4095 are reserved, 0xFFFFFF too. */
export const VSID_MIN = 4096;
export const VSID_MAX = 16_777_214;

/** New-NetVirtualizationProviderAddress: an address of this host on the provider network. */
export interface ProviderAddress {
  readonly providerAddress: string;
  /** The host interface the address is on (Get-NetAdapter's ifIndex). */
  readonly interfaceIndex: number;
  readonly prefixLength: number;
  /** 0 = untagged. */
  readonly vlanId: number;
}

export type LookupRule = 'TranslationMethodEncap' | 'TranslationMethodNat';
export type LookupType = 'Static' | 'Dynamic' | 'L2Only' | 'GatewayWildcard';

/** New-NetVirtualizationLookupRecord: where a customer address of a virtual subnet lives. */
export interface LookupRecord {
  readonly customerAddress: string;
  readonly virtualSubnetId: number;
  /** 12 upper-case hex digits, as Get-NetVirtualizationLookupRecord shows it. */
  readonly macAddress: string;
  readonly providerAddress: string;
  readonly rule: LookupRule;
  readonly type: LookupType;
  /** The routing domain (RDID); absent = the one the subnet's customer routes name. */
  readonly customerId?: string;
  readonly vmName?: string;
  readonly useVmMacAddress: boolean;
}

/** New-NetVirtualizationCustomerRoute: a prefix of a routing domain, on-link in a subnet (next hop 0.0.0.0/::) or via a next hop. */
export interface CustomerRoute {
  readonly routingDomainId: string;
  readonly virtualSubnetId: number;
  /** Normalized CIDR text. */
  readonly destinationPrefix: string;
  readonly nextHop: string;
  readonly metric: number;
}

export interface HnvPolicy {
  readonly providerAddresses: readonly ProviderAddress[];
  readonly lookupRecords: readonly LookupRecord[];
  readonly customerRoutes: readonly CustomerRoute[];
}

export function emptyPolicy(): HnvPolicy {
  return { providerAddresses: [], lookupRecords: [], customerRoutes: [] };
}

function bad(param: string, message: string): VmhostError {
  return new VmhostError('HNV_BAD_POLICY', `${param}: ${message}`, { op: 'hnv-policy', param });
}

// ---- field rules ----------------------------------------------------------------------

export function checkVsid(v: unknown, param = 'VirtualSubnetID'): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < VSID_MIN || v > VSID_MAX) {
    throw bad(param, `${String(v)} is not a virtual subnet ID (${VSID_MIN}–${VSID_MAX})`);
  }
  return v;
}

/** `{…}` or bare GUID → `{lower-case}`, as the cmdlets print routing domain IDs (braced). */
export function normalizeRdid(text: string, param = 'RoutingDomainID'): string {
  const m = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i.exec(text);
  if (!m || (text.startsWith('{') !== text.endsWith('}'))) throw bad(param, `'${text}' is not a GUID`);
  if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(m[1]!)) throw bad(param, 'the empty GUID names no routing domain');
  return `{${m[1]!.toLowerCase()}}`;
}

/** An IPv4 or IPv6 address in its canonical text (the key lookups use). */
export function normalizeAddress(text: string, param: string): string {
  try {
    return text.includes(':') ? formatIpv6(parseIpv6(text)) : formatIpv4(parseIpv4(text));
  } catch {
    throw bad(param, `'${text}' is not an IP address`);
  }
}

function unicast(text: string, param: string): string {
  const a = normalizeAddress(text, param);
  const first = a.includes(':') ? parseIpv6(a)[0]! : parseIpv4(a) >>> 24;
  const unspecified = a === '0.0.0.0' || a === '::';
  if (unspecified || (a.includes(':') ? first === 0xff : first >= 224)) throw bad(param, `${a} is not a unicast address`);
  return a;
}

export function normalizeMacText(text: string, param = 'MACAddress'): string {
  let b: Uint8Array;
  try { b = parseMac(text); } catch { throw bad(param, `'${text}' is not a MAC address`); }
  if ((b[0]! & 1) !== 0) throw bad(param, `${text} is a multicast address`);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
}

export function normalizePrefix(text: string, param = 'DestinationPrefix'): { text: string; cidr: Cidr } {
  let c: Cidr;
  try { c = parseCidr(text); } catch { throw bad(param, `'${text}' is not a prefix (address/length)`); }
  // The network address: host bits cleared, so 10.0.0.7/24 and 10.0.0.0/24 are one route.
  const cidr: Cidr = c.version === 4
    ? { ...c, address: (c.address & ipv4Mask(c.prefixLength)) >>> 0 }
    : { ...c, address: c.address.map((byte, i) => byte & (0xff << Math.max(0, Math.min(8, (i + 1) * 8 - c.prefixLength))) & 0xff) };
  return { text: `${cidr.version === 4 ? formatIpv4(cidr.address) : formatIpv6(cidr.address)}/${cidr.prefixLength}`, cidr };
}

function int(v: unknown, param: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(param, `${String(v)} is not an integer in ${min}–${max}`);
  return v;
}

// ---- records --------------------------------------------------------------------------

export function providerAddress(p: { ProviderAddress: string; InterfaceIndex: number; PrefixLength: number; VlanID?: number }): ProviderAddress {
  const providerAddress = unicast(p.ProviderAddress, 'ProviderAddress');
  return {
    providerAddress, interfaceIndex: int(p.InterfaceIndex, 'InterfaceIndex', 1, 0x7fff_ffff),
    prefixLength: int(p.PrefixLength, 'PrefixLength', 1, providerAddress.includes(':') ? 128 : 32),
    vlanId: int(p.VlanID ?? 0, 'VlanID', 0, 4094),
  };
}

export interface LookupRecordParams {
  CustomerAddress: string; VirtualSubnetID: number; MACAddress: string; ProviderAddress: string; Rule: string;
  Type?: string; CustomerID?: string; VMName?: string; UseVmMACAddress?: boolean;
}

const TYPES: readonly LookupType[] = ['Static', 'Dynamic', 'L2Only', 'GatewayWildcard'];

export function lookupRecord(p: LookupRecordParams): LookupRecord {
  if (p.Rule === 'TranslationMethodNat') {
    throw bad('Rule', 'TranslationMethodNat (IP rewrite) is not supported: vmhost carries customer addresses in NVGRE only (TranslationMethodEncap)');
  }
  if (p.Rule !== 'TranslationMethodEncap') throw bad('Rule', `'${p.Rule}' is not TranslationMethodEncap or TranslationMethodNat`);
  const type = TYPES.find((t) => t.toLowerCase() === (p.Type ?? 'Static').toLowerCase());
  if (!type) throw bad('Type', `'${p.Type}' is not one of ${TYPES.join(', ')}`);
  const customerAddress = type === 'GatewayWildcard' ? normalizeAddress(p.CustomerAddress, 'CustomerAddress') : unicast(p.CustomerAddress, 'CustomerAddress');
  if (type === 'GatewayWildcard' && customerAddress !== '0.0.0.0' && customerAddress !== '::') {
    throw bad('CustomerAddress', 'a GatewayWildcard record has the wildcard customer address 0.0.0.0 or ::');
  }
  const rec: LookupRecord = {
    customerAddress, virtualSubnetId: checkVsid(p.VirtualSubnetID), macAddress: normalizeMacText(p.MACAddress),
    providerAddress: unicast(p.ProviderAddress, 'ProviderAddress'), rule: 'TranslationMethodEncap', type,
    useVmMacAddress: p.UseVmMACAddress ?? false,
    ...(p.CustomerID !== undefined ? { customerId: normalizeRdid(p.CustomerID, 'CustomerID') } : {}),
    ...(p.VMName !== undefined && p.VMName !== '' ? { vmName: p.VMName } : {}),
  };
  return rec;
}

export interface CustomerRouteParams { RoutingDomainID: string; VirtualSubnetID: number; DestinationPrefix: string; NextHop: string; Metric?: number }

export function customerRoute(p: CustomerRouteParams): CustomerRoute {
  const { text, cidr } = normalizePrefix(p.DestinationPrefix);
  const nextHop = normalizeAddress(p.NextHop, 'NextHop');
  if (nextHop.includes(':') !== (cidr.version === 6)) throw bad('NextHop', `${nextHop} is not of the prefix's family (${text})`);
  return {
    routingDomainId: normalizeRdid(p.RoutingDomainID), virtualSubnetId: checkVsid(p.VirtualSubnetID),
    destinationPrefix: text, nextHop, metric: int(p.Metric ?? 0, 'Metric', 0, 0xffff_ffff),
  };
}

// ---- changes --------------------------------------------------------------------------

/** The routing domain a virtual subnet is in, as the policy names it (routes first, then records' CustomerID). */
export function routingDomainOf(policy: HnvPolicy, vsid: number): string | undefined {
  return policy.customerRoutes.find((r) => r.virtualSubnetId === vsid)?.routingDomainId
    ?? policy.lookupRecords.find((r) => r.virtualSubnetId === vsid && r.customerId !== undefined)?.customerId;
}

function checkDomain(policy: HnvPolicy, vsid: number, rdid: string | undefined, param: string): void {
  const have = routingDomainOf(policy, vsid);
  if (rdid !== undefined && have !== undefined && have !== rdid) {
    throw bad(param, `virtual subnet ${vsid} is in routing domain ${have}, not ${rdid} (a subnet belongs to one routing domain)`);
  }
}

function exists(what: string, context: Record<string, string | number>): VmhostError {
  return new VmhostError('ALREADY_EXISTS', `${what} already exists`, { op: 'hnv-policy', ...context });
}

export function addProviderAddress(policy: HnvPolicy, pa: ProviderAddress): HnvPolicy {
  if (policy.providerAddresses.some((x) => x.providerAddress === pa.providerAddress)) throw exists(`Provider address ${pa.providerAddress}`, { providerAddress: pa.providerAddress });
  return { ...policy, providerAddresses: [...policy.providerAddresses, pa] };
}

export function addLookupRecord(policy: HnvPolicy, rec: LookupRecord): HnvPolicy {
  if (policy.lookupRecords.some((x) => x.virtualSubnetId === rec.virtualSubnetId && x.customerAddress === rec.customerAddress)) {
    throw exists(`A lookup record for ${rec.customerAddress} in virtual subnet ${rec.virtualSubnetId}`, { customerAddress: rec.customerAddress, virtualSubnetId: rec.virtualSubnetId });
  }
  checkDomain(policy, rec.virtualSubnetId, rec.customerId, 'CustomerID');
  return { ...policy, lookupRecords: [...policy.lookupRecords, rec] };
}

export function addCustomerRoute(policy: HnvPolicy, r: CustomerRoute): HnvPolicy {
  if (policy.customerRoutes.some((x) => x.routingDomainId === r.routingDomainId && x.virtualSubnetId === r.virtualSubnetId && x.destinationPrefix === r.destinationPrefix)) {
    throw exists(`A customer route to ${r.destinationPrefix} in routing domain ${r.routingDomainId}, virtual subnet ${r.virtualSubnetId}`, { destinationPrefix: r.destinationPrefix });
  }
  checkDomain(policy, r.virtualSubnetId, r.routingDomainId, 'RoutingDomainID');
  return { ...policy, customerRoutes: [...policy.customerRoutes, r] };
}

/** Remove-*: the records `match` selects go; the caller says NOT_FOUND when none did (Windows' wording differs per cmdlet). */
export function without<K extends keyof HnvPolicy>(policy: HnvPolicy, key: K, match: (x: HnvPolicy[K][number]) => boolean): { policy: HnvPolicy; removed: HnvPolicy[K][number][] } {
  const list = policy[key] as readonly HnvPolicy[K][number][];
  const removed = list.filter(match);
  return { policy: { ...policy, [key]: list.filter((x) => !match(x)) }, removed };
}

/** One adapter of a VM in a virtual subnet: what its lookup records are found by. */
export interface VirtualSubnetAdapter { readonly virtualSubnetId: number; readonly macAddress: string }

/**
 * A VM moved to the host whose provider address is `pa`: every lookup record of its adapters
 * (same VSID and MAC) names `pa` from now on — the customer address, VSID and MAC stay, only
 * the PA changes, as the orchestrator re-points records on a Hyper-V live migration. `moved`
 * counts the records that changed (0: the policy is returned as it was).
 */
export function movedTo(policy: HnvPolicy, adapters: readonly VirtualSubnetAdapter[], pa: string): { policy: HnvPolicy; moved: number } {
  const to = unicast(pa, 'ProviderAddress');
  const keys = new Set(adapters.map((a) => `${a.virtualSubnetId}/${normalizeMacText(a.macAddress)}`));
  let moved = 0;
  const lookupRecords = policy.lookupRecords.map((r) => {
    if (r.providerAddress === to || !keys.has(`${r.virtualSubnetId}/${r.macAddress}`)) return r;
    moved++;
    return { ...r, providerAddress: to };
  });
  return moved === 0 ? { policy, moved } : { policy: { ...policy, lookupRecords }, moved };
}
