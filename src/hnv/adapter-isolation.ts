// A VM adapter's multi-tenant settings, as Set-VmNetworkAdapterIsolation and
// Add-/Set-/Remove-VmNetworkAdapterRoutingDomainMapping name them (the cmdlet reference,
// section 1.6): the isolation mode and default isolation ID, and the routing domains the
// adapter is in with the virtual subnets (isolation IDs) of each. Pure and validated, like
// policy.ts. Applied (host/adapter-policy.ts): the virtual subnet modes put the port in the
// default isolation ID's subnet — the same VSID Set-VMNetworkAdapter -VirtualSubnetId sets, kept
// as one (isolationVsid / withVsid) — and Vlan mode makes it an access port of that VLAN. An
// adapter with routing domain mappings sits in one of their subnets (checkMapped). vmhost's
// guests send untagged frames: the multi-tenant stack's per-compartment tagged traffic is not
// carried, so AllowUntaggedTraffic and MultiTenantStack are kept and shown only.
import { VmhostError } from '../common/index.ts';
import { checkVsid, normalizeRdid } from './policy.ts';

export type IsolationMode = 'None' | 'NativeVirtualSubnet' | 'ExternalVirtualSubnet' | 'Vlan';
const MODES: readonly IsolationMode[] = ['None', 'NativeVirtualSubnet', 'ExternalVirtualSubnet', 'Vlan'];

export interface AdapterIsolation {
  readonly isolationMode: IsolationMode;
  /** A VLAN ID in Vlan mode, a VSID in the virtual subnet modes, 0 in None. */
  readonly defaultIsolationId: number;
  readonly allowUntaggedTraffic: boolean;
  readonly multiTenantStack: 'On' | 'Off';
}

export interface RoutingDomainMapping {
  readonly routingDomainId: string;
  readonly routingDomainName: string;
  /** The VSIDs of the domain this adapter carries, with their names (same order and length). */
  readonly isolationIds: readonly number[];
  readonly isolationNames: readonly string[];
}

function bad(param: string, message: string): VmhostError {
  return new VmhostError('HNV_BAD_POLICY', `${param}: ${message}`, { op: 'adapter-isolation', param });
}

export function defaultIsolation(): AdapterIsolation {
  return { isolationMode: 'None', defaultIsolationId: 0, allowUntaggedTraffic: false, multiTenantStack: 'Off' };
}

export interface SetIsolationParams { IsolationMode?: string; DefaultIsolationID?: number; AllowUntaggedTraffic?: boolean; MultiTenantStack?: 'On' | 'Off' }

/** Set-VmNetworkAdapterIsolation: the given fields over `current`, the result checked as a whole. */
export function setIsolation(current: AdapterIsolation, p: SetIsolationParams): AdapterIsolation {
  const mode = p.IsolationMode === undefined ? current.isolationMode : MODES.find((m) => m.toLowerCase() === p.IsolationMode!.toLowerCase());
  if (!mode) throw bad('IsolationMode', `'${p.IsolationMode}' is not one of ${MODES.join(', ')}`);
  // A mode change without an ID leaves no meaningful old ID (a VLAN is no VSID): it must be given.
  const id = p.DefaultIsolationID ?? (mode === current.isolationMode ? current.defaultIsolationId : 0);
  if (mode === 'None' && id !== 0) throw bad('DefaultIsolationID', 'isolation mode None has no isolation ID');
  if (mode === 'Vlan' && (!Number.isInteger(id) || id < 1 || id > 4094)) throw bad('DefaultIsolationID', `${id} is not a VLAN ID (1–4094) for isolation mode Vlan`);
  if (mode === 'NativeVirtualSubnet' || mode === 'ExternalVirtualSubnet') checkVsid(id, 'DefaultIsolationID');
  const multiTenantStack = p.MultiTenantStack ?? current.multiTenantStack;
  if (multiTenantStack === 'On' && mode === 'None') throw bad('MultiTenantStack', 'a multi-tenant stack needs an isolation mode other than None');
  return { isolationMode: mode, defaultIsolationId: id, allowUntaggedTraffic: p.AllowUntaggedTraffic ?? current.allowUntaggedTraffic, multiTenantStack };
}

export interface MappingParams { RoutingDomainID: string; RoutingDomainName: string; IsolationID?: readonly number[]; IsolationName?: readonly string[] }

function subnets(ids: readonly number[], names: readonly string[] | undefined): { isolationIds: number[]; isolationNames: string[] } {
  const isolationIds = ids.map((v) => checkVsid(v, 'IsolationID'));
  if (new Set(isolationIds).size !== isolationIds.length) throw bad('IsolationID', 'a virtual subnet is listed twice');
  const isolationNames = names ? [...names] : isolationIds.map(String);
  if (isolationNames.length !== isolationIds.length) throw bad('IsolationName', `${isolationNames.length} names for ${isolationIds.length} isolation IDs`);
  return { isolationIds, isolationNames };
}

/** The mapping `by` names (a routing domain ID or name); NOT_FOUND otherwise. */
export function findMapping(list: readonly RoutingDomainMapping[], by: string): RoutingDomainMapping {
  const rdid = /^\{?[0-9a-f]{8}-/i.test(by) ? normalizeRdid(by) : undefined;
  const m = list.find((x) => x.routingDomainId === rdid || x.routingDomainName.toLowerCase() === by.toLowerCase());
  if (!m) throw new VmhostError('NOT_FOUND', `The adapter has no routing domain '${by}'`, { op: 'adapter-isolation' });
  return m;
}

function checkDisjoint(list: readonly RoutingDomainMapping[]): void {
  const seen = new Map<number, string>();
  for (const m of list) {
    for (const v of m.isolationIds) {
      const other = seen.get(v);
      if (other !== undefined) throw bad('IsolationID', `virtual subnet ${v} is already in routing domain ${other} (a subnet belongs to one routing domain)`);
      seen.set(v, m.routingDomainId);
    }
  }
}

/** Add-VmNetworkAdapterRoutingDomainMapping. */
export function addMapping(list: readonly RoutingDomainMapping[], p: MappingParams): RoutingDomainMapping[] {
  const routingDomainId = normalizeRdid(p.RoutingDomainID);
  if (p.RoutingDomainName.trim() === '') throw bad('RoutingDomainName', 'a routing domain needs a name');
  if (list.some((x) => x.routingDomainId === routingDomainId || x.routingDomainName.toLowerCase() === p.RoutingDomainName.toLowerCase())) {
    throw new VmhostError('ALREADY_EXISTS', `The adapter is already in routing domain ${routingDomainId} or one named '${p.RoutingDomainName}'`, { op: 'adapter-isolation' });
  }
  const next = [...list, { routingDomainId, routingDomainName: p.RoutingDomainName, ...subnets(p.IsolationID ?? [], p.IsolationName) }];
  checkDisjoint(next);
  return next;
}

/** Set-VmNetworkAdapterRoutingDomainMapping: a new name, and/or the subnets replaced. */
export function setMapping(list: readonly RoutingDomainMapping[], by: string, p: { NewRoutingDomainName?: string; IsolationID?: readonly number[]; IsolationName?: readonly string[] }): RoutingDomainMapping[] {
  const m = findMapping(list, by);
  if (p.NewRoutingDomainName !== undefined && list.some((x) => x !== m && x.routingDomainName.toLowerCase() === p.NewRoutingDomainName!.toLowerCase())) {
    throw new VmhostError('ALREADY_EXISTS', `The adapter already has a routing domain named '${p.NewRoutingDomainName}'`, { op: 'adapter-isolation' });
  }
  const changed: RoutingDomainMapping = {
    ...m, routingDomainName: p.NewRoutingDomainName ?? m.routingDomainName,
    ...(p.IsolationID !== undefined ? subnets(p.IsolationID, p.IsolationName) : p.IsolationName !== undefined ? subnets(m.isolationIds, p.IsolationName) : {}),
  };
  const next = list.map((x) => (x === m ? changed : x));
  checkDisjoint(next);
  return next;
}

/** Remove-VmNetworkAdapterRoutingDomainMapping. */
export function removeMapping(list: readonly RoutingDomainMapping[], by: string): RoutingDomainMapping[] {
  const m = findMapping(list, by);
  return list.filter((x) => x !== m);
}

/**
 * The virtual subnet the adapter's port is in under `i`: the default isolation ID in the
 * virtual subnet modes (NativeVirtualSubnet: Hyper-V Network Virtualization, here vmhost.hnv;
 * ExternalVirtualSubnet: a forwarding extension's own virtualization — here also vmhost.hnv,
 * the switch's only one), none in None and Vlan.
 */
export function isolationVsid(i: AdapterIsolation): number | undefined {
  return i.isolationMode === 'NativeVirtualSubnet' || i.isolationMode === 'ExternalVirtualSubnet' ? i.defaultIsolationId : undefined;
}

/**
 * Set-VMNetworkAdapter -VirtualSubnetId kept consistent with the isolation settings, as on
 * 2012 R2 where both name the adapter's VSID: a VSID makes the mode NativeVirtualSubnet with
 * that default ID and untagged traffic allowed (a virtual subnet mode keeps its mode); none
 * (0) takes a virtual subnet mode back to None. A Vlan mode stays when no VSID is given.
 */
export function withVsid(current: AdapterIsolation, vsid: number | undefined): AdapterIsolation {
  if (vsid === undefined) return isolationVsid(current) === undefined ? current : defaultIsolation();
  const mode = isolationVsid(current) === undefined ? 'NativeVirtualSubnet' : current.isolationMode;
  return { ...current, isolationMode: mode, defaultIsolationId: checkVsid(vsid, 'VirtualSubnetId'), allowUntaggedTraffic: true };
}

/** An adapter with routing domain mappings is in one of their subnets (or in none). */
export function checkMapped(vsid: number | undefined, mappings: readonly RoutingDomainMapping[], param: string): void {
  if (vsid === undefined || mappings.length === 0 || mappings.some((m) => m.isolationIds.includes(vsid))) return;
  throw bad(param, `virtual subnet ${vsid} is in none of the adapter's routing domains (${mappings.map((m) => `${m.routingDomainName}: ${m.isolationIds.join(', ') || 'no subnets'}`).join('; ')})`);
}
