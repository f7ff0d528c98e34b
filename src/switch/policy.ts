// Port policy: the plain, JSON-serialisable settings of one switch port, in the words of the
// Hyper-V cmdlets that set them (Set-VMNetworkAdapter, Set-VMNetworkAdapterVlan,
// Add-VMNetworkAdapterExtendedAcl, Add-VMNetworkAdapterAcl). The daemon persists these as-is
// and hands them back to recreate a port. Validation and defaults live here; the pipeline
// stages compile them (vlan.ts, acl.ts, …). Depends on common, and packet for the VSID range.
import { VmhostError } from '../common/errors.ts';
import { VSID_MAX, VSID_MIN } from '../packet/index.ts';

export type VlanSetting =
  | { readonly mode: 'Untagged' }
  | { readonly mode: 'Access'; readonly vlanId: number }
  | { readonly mode: 'Trunk'; readonly allowedVlanIdList: readonly number[]; readonly nativeVlanId: number }
  | { readonly mode: 'Isolated' | 'Community'; readonly primaryVlanId: number; readonly secondaryVlanId: number }
  | { readonly mode: 'Promiscuous'; readonly primaryVlanId: number; readonly secondaryVlanIdList: readonly number[] };

export type OnOff = 'On' | 'Off';

export interface GuardSettings {
  /** Off (default): frames whose source MAC is not the port's MAC are dropped. On: any source MAC, learned. */
  readonly macAddressSpoofing: OnOff;
  /** On: DHCP server messages (OFFER/ACK/NAK/FORCERENEW, any BOOTREPLY) from this port are dropped. */
  readonly dhcpGuard: OnOff;
  /** On: ICMPv6 Router Advertisements and Redirects from this port are dropped. */
  readonly routerGuard: OnOff;
  /**
   * On: ARP and ND from this port may only claim addresses the port owns (see guards.ts for
   * the ownership rule): forged replies, gratuitous ARPs and NAs for another port's address
   * are dropped.
   */
  readonly arpGuard: OnOff;
}

export type AclDirection = 'Inbound' | 'Outbound';

/** Add-VMNetworkAdapterExtendedAcl. Inbound = toward the VM, Outbound = from the VM. */
export interface ExtendedAcl {
  readonly direction: AclDirection;
  readonly action: 'Allow' | 'Deny';
  /** CIDR or address (IPv4 or IPv6); absent or 'Any' = any. The VM's side. */
  readonly localIPAddress?: string;
  readonly remoteIPAddress?: string;
  /** 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | IP protocol number; absent or 'Any' = any IP protocol. */
  readonly protocol?: string | number;
  /** '80', '1000-2000' or a number; absent = any. Only for TCP/UDP. */
  readonly localPort?: string | number;
  readonly remotePort?: string | number;
  /** Higher weight is evaluated first. Unique per port and direction (as in Hyper-V). */
  readonly weight: number;
  readonly stateful?: boolean;
  /** Seconds a stateful flow lives without traffic (Hyper-V default 0 → 300 here). */
  readonly idleSessionTimeout?: number;
}

/** Add-VMNetworkAdapterAcl (2012 ACLs): Allow/Deny by address, and Meter (per-remote counters). */
export interface PortAcl {
  readonly direction: AclDirection | 'Both';
  readonly action: 'Allow' | 'Deny' | 'Meter';
  /** CIDR/address or 'Any'; exactly one of remoteIPAddress / remoteMacAddress. */
  readonly remoteIPAddress?: string;
  readonly remoteMacAddress?: string;
}

export interface BandwidthSettings {
  /** Cap on what the VM sends, bits/s; 0 = none. */
  readonly maximumBandwidth: number;
  /** Floor under congestion in bits/s (switch MinimumBandwidthMode Absolute). */
  readonly minimumBandwidthAbsolute: number;
  /** Relative share under congestion, 0–100 (switch MinimumBandwidthMode Weight). */
  readonly minimumBandwidthWeight: number;
}

export type PortMirroring = 'None' | 'Source' | 'Destination';

export interface PortPolicy {
  /** The adapter's MAC (`52:54:00:…`); absent = the first source MAC the port sends is taken as its MAC. */
  readonly mac?: string;
  /** Addresses the port owns from the start for the ARP/ND guard (IPv4/IPv6 text). */
  readonly ipAddresses: readonly string[];
  readonly vlan: VlanSetting;
  readonly guards: GuardSettings;
  readonly extendedAcls: readonly ExtendedAcl[];
  readonly acls: readonly PortAcl[];
  readonly bandwidth: BandwidthSettings;
  readonly mirroring: PortMirroring;
  /**
   * Egress capacity toward this port in bits/s (a congested link: an uplink, a slow VM). 0 =
   * unlimited. When set, frames toward the port are scheduled by the minimum-bandwidth
   * fair queue (bandwidth.ts).
   */
  readonly egressCapacity: number;
  /**
   * Set-VMNetworkAdapter -VirtualSubnetId (RFC 7637 VSID, 4096–16777214); absent or 0 = none.
   * A port in a virtual subnet learns MACs in that subnet and is bridged only to ports of the
   * same subnet; reaching other hosts (NVGRE) is the network virtualization extension's job.
   */
  readonly virtualSubnetId?: number;
}

export type PortPolicyPatch = Partial<Omit<PortPolicy, 'guards' | 'bandwidth'>> & {
  readonly guards?: Partial<GuardSettings>;
  readonly bandwidth?: Partial<BandwidthSettings>;
};

export const DEFAULT_GUARDS: GuardSettings = { macAddressSpoofing: 'Off', dhcpGuard: 'Off', routerGuard: 'Off', arpGuard: 'Off' };
export const DEFAULT_BANDWIDTH: BandwidthSettings = { maximumBandwidth: 0, minimumBandwidthAbsolute: 0, minimumBandwidthWeight: 0 };

export function defaultPolicy(): PortPolicy {
  return {
    ipAddresses: [], vlan: { mode: 'Untagged' }, guards: DEFAULT_GUARDS, extendedAcls: [], acls: [],
    bandwidth: DEFAULT_BANDWIDTH, mirroring: 'None', egressCapacity: 0,
  };
}

/** Applies a patch (nested guards/bandwidth merge field by field); validates the result. */
export function mergePolicy(base: PortPolicy, patch: PortPolicyPatch): PortPolicy {
  const { guards, bandwidth, ...rest } = patch;
  const out: PortPolicy = {
    ...base, ...stripUndefined(rest),
    guards: { ...base.guards, ...stripUndefined(guards ?? {}) },
    bandwidth: { ...base.bandwidth, ...stripUndefined(bandwidth ?? {}) },
  };
  validatePolicy(out);
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function bad(message: string, context: Record<string, string | number> = {}): VmhostError {
  return new VmhostError('SWITCH_BAD_POLICY', message, { op: 'port-policy', ...context });
}

function checkVid(v: unknown, what: string): void {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 4094) throw bad(`${what} must be a VLAN ID 1–4094, not ${String(v)}`);
}

export function validatePolicy(p: PortPolicy): void {
  const v = p.vlan;
  switch (v.mode) {
    case 'Untagged': break;
    case 'Access': checkVid(v.vlanId, 'VlanId'); break;
    case 'Trunk':
      if (!Array.isArray(v.allowedVlanIdList) || v.allowedVlanIdList.length === 0) throw bad('Trunk needs AllowedVlanIdList');
      v.allowedVlanIdList.forEach((x) => checkVid(x, 'AllowedVlanIdList entry'));
      if (v.nativeVlanId !== 0) checkVid(v.nativeVlanId, 'NativeVlanId');
      break;
    case 'Isolated': case 'Community':
      checkVid(v.primaryVlanId, 'PrimaryVlanId'); checkVid(v.secondaryVlanId, 'SecondaryVlanId');
      if (v.primaryVlanId === v.secondaryVlanId) throw bad('SecondaryVlanId must differ from PrimaryVlanId');
      break;
    case 'Promiscuous':
      checkVid(v.primaryVlanId, 'PrimaryVlanId');
      if (!Array.isArray(v.secondaryVlanIdList) || v.secondaryVlanIdList.length === 0) throw bad('Promiscuous needs SecondaryVlanIdList');
      v.secondaryVlanIdList.forEach((x) => checkVid(x, 'SecondaryVlanIdList entry'));
      break;
    default: throw bad(`unknown VLAN mode ${String((v as { mode: unknown }).mode)}`);
  }
  for (const [k, val] of Object.entries(p.guards)) if (val !== 'On' && val !== 'Off') throw bad(`${k} must be On or Off`);
  for (const [k, val] of Object.entries(p.bandwidth)) if (typeof val !== 'number' || !(val >= 0)) throw bad(`${k} must be a number ≥ 0`);
  if (p.bandwidth.minimumBandwidthWeight > 100) throw bad('MinimumBandwidthWeight must be 0–100');
  if (!['None', 'Source', 'Destination'].includes(p.mirroring)) throw bad(`PortMirroring must be None, Source or Destination`);
  if (!(p.egressCapacity >= 0)) throw bad('egressCapacity must be ≥ 0');
  const vsid = p.virtualSubnetId ?? 0;
  if (vsid !== 0 && (!Number.isInteger(vsid) || vsid < VSID_MIN || vsid > VSID_MAX)) throw bad(`VirtualSubnetId must be 0 or ${VSID_MIN}–${VSID_MAX}, not ${String(vsid)}`);
  const weights = new Set<string>();
  for (const a of p.extendedAcls) {
    if (a.direction !== 'Inbound' && a.direction !== 'Outbound') throw bad(`ACL direction ${String(a.direction)}`);
    if (a.action !== 'Allow' && a.action !== 'Deny') throw bad(`extended ACL action ${String(a.action)}`);
    if (!Number.isInteger(a.weight) || a.weight < 0) throw bad(`ACL weight must be an integer ≥ 0`);
    const k = `${a.direction}/${a.weight}`;
    if (weights.has(k)) throw bad(`two ${a.direction} ACLs with weight ${a.weight}`, { weight: a.weight });
    weights.add(k);
  }
  for (const a of p.acls) {
    if (!['Inbound', 'Outbound', 'Both'].includes(a.direction)) throw bad(`ACL direction ${String(a.direction)}`);
    if (!['Allow', 'Deny', 'Meter'].includes(a.action)) throw bad(`ACL action ${String(a.action)}`);
    if ((a.remoteIPAddress === undefined) === (a.remoteMacAddress === undefined)) throw bad('an ACL needs exactly one of RemoteIPAddress / RemoteMacAddress');
  }
}
