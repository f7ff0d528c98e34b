// The host's network virtualization policy (src/hnv) as the NetWNV cmdlets change it:
// New-/Get-/Remove-NetVirtualizationProviderAddress, -LookupRecord, -CustomerRoute. Kept in
// <data-dir>/hnv-policy.json, written atomically after each change under one lock, so two
// callers never lose each other's record; a change is on disk before it is true in memory.
// Listeners (the host's switches: hnv-datapath.ts) get the new policy after each change.
// In a cluster the tenant half — lookup records and customer routes, which every host must
// agree on — is the cluster's (share(): kept in etcd by cluster/hnv-shared.ts): a change is
// made there first, by a compare-and-swap, and every node adopts each new version; the file
// then keeps the last version seen, and the provider addresses stay each host's own.
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import {
  addCustomerRoute, addLookupRecord, addProviderAddress, checkVsid, customerRoute, emptyPolicy, lookupRecord, movedTo, normalizeAddress, normalizeMacText,
  normalizePrefix, normalizeRdid, providerAddress, without,
  type CustomerRoute, type CustomerRouteParams, type HnvPolicy, type LookupRecord, type LookupRecordParams, type ProviderAddress, type VirtualSubnetAdapter,
} from '../hnv/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { SerialLock } from './vm-lock.ts';

export interface ProviderAddressParams { ProviderAddress: string; InterfaceIndex: number; PrefixLength: number; VlanID?: number }
export interface ProviderAddressFilter { ProviderAddress?: string; InterfaceIndex?: number }
export interface LookupRecordFilter { CustomerAddress?: string; VirtualSubnetID?: number; ProviderAddress?: string; MACAddress?: string; CustomerID?: string; VMName?: string }
export interface CustomerRouteFilter { RoutingDomainID?: string; VirtualSubnetID?: number; DestinationPrefix?: string }

/** The tenant half of the policy: what every host of a cluster must agree on. */
export type TenantPolicy = Pick<HnvPolicy, 'lookupRecords' | 'customerRoutes'>;

/** Where hosts share the tenant half (a cluster's etcd: cluster/hnv-shared.ts). */
export interface SharedTenantPolicy {
  /**
   * `fn` applied to the shared half (undefined while nothing is stored) atomically — run again
   * when another host changed it meanwhile; what `fn` throws is thrown. Resolves with what is stored.
   */
  update(fn: (cur: TenantPolicy | undefined) => TenantPolicy): Promise<TenantPolicy>;
  /** `fn` gets the shared half whenever any host changed it. */
  follow(fn: (p: TenantPolicy) => void): void;
  close(): void;
}

const tenantOf = (p: HnvPolicy): TenantPolicy => ({ lookupRecords: p.lookupRecords, customerRoutes: p.customerRoutes });

/** Get-NetVirtualizationProviderAddress's object. */
function paView(p: ProviderAddress): Record<string, unknown> {
  return { ProviderAddress: p.providerAddress, InterfaceIndex: p.interfaceIndex, PrefixLength: p.prefixLength, VlanID: p.vlanId, AddressState: 'Preferred', ManagedByCluster: false };
}

function recordView(r: LookupRecord, rdid: string | undefined): Record<string, unknown> {
  return {
    CustomerAddress: r.customerAddress, VirtualSubnetID: r.virtualSubnetId, MACAddress: r.macAddress, ProviderAddress: r.providerAddress,
    CustomerID: r.customerId ?? rdid ?? null, Context: null, Rule: r.rule, VMName: r.vmName ?? null, UseVmMACAddress: r.useVmMacAddress, Type: r.type,
  };
}

function routeView(r: CustomerRoute): Record<string, unknown> {
  return { RoutingDomainID: r.routingDomainId, VirtualSubnetID: r.virtualSubnetId, DestinationPrefix: r.destinationPrefix, NextHop: r.nextHop, Metric: r.metric };
}

/** Every filter field given must match (in its normalized form); none given matches all. */
function paMatch(f: ProviderAddressFilter): (p: ProviderAddress) => boolean {
  const pa = f.ProviderAddress === undefined ? undefined : normalizeAddress(f.ProviderAddress, 'ProviderAddress');
  return (p) => (pa === undefined || p.providerAddress === pa) && (f.InterfaceIndex === undefined || p.interfaceIndex === f.InterfaceIndex);
}

function recordMatch(f: LookupRecordFilter, domainOf: (vsid: number) => string | undefined): (r: LookupRecord) => boolean {
  const ca = f.CustomerAddress === undefined ? undefined : normalizeAddress(f.CustomerAddress, 'CustomerAddress');
  const pa = f.ProviderAddress === undefined ? undefined : normalizeAddress(f.ProviderAddress, 'ProviderAddress');
  const mac = f.MACAddress === undefined ? undefined : normalizeMacText(f.MACAddress);
  const vsid = f.VirtualSubnetID === undefined ? undefined : checkVsid(f.VirtualSubnetID);
  const rdid = f.CustomerID === undefined ? undefined : normalizeRdid(f.CustomerID, 'CustomerID');
  return (r) => (ca === undefined || r.customerAddress === ca) && (pa === undefined || r.providerAddress === pa) && (mac === undefined || r.macAddress === mac)
    && (vsid === undefined || r.virtualSubnetId === vsid) && (rdid === undefined || (r.customerId ?? domainOf(r.virtualSubnetId)) === rdid)
    && (f.VMName === undefined || r.vmName?.toLowerCase() === f.VMName.toLowerCase());
}

function routeMatch(f: CustomerRouteFilter): (r: CustomerRoute) => boolean {
  const rdid = f.RoutingDomainID === undefined ? undefined : normalizeRdid(f.RoutingDomainID);
  const prefix = f.DestinationPrefix === undefined ? undefined : normalizePrefix(f.DestinationPrefix).text;
  const vsid = f.VirtualSubnetID === undefined ? undefined : checkVsid(f.VirtualSubnetID);
  return (r) => (rdid === undefined || r.routingDomainId === rdid) && (vsid === undefined || r.virtualSubnetId === vsid) && (prefix === undefined || r.destinationPrefix === prefix);
}

/** A saved policy is checked as a new one would be: a hand-edited file cannot hold what the cmdlets refuse. */
function revalidated(saved: HnvPolicy): HnvPolicy {
  let p = emptyPolicy();
  for (const x of saved.providerAddresses ?? []) p = addProviderAddress(p, providerAddress({ ProviderAddress: x.providerAddress, InterfaceIndex: x.interfaceIndex, PrefixLength: x.prefixLength, VlanID: x.vlanId }));
  for (const x of saved.customerRoutes ?? []) p = addCustomerRoute(p, customerRoute({ RoutingDomainID: x.routingDomainId, VirtualSubnetID: x.virtualSubnetId, DestinationPrefix: x.destinationPrefix, NextHop: x.nextHop, Metric: x.metric }));
  for (const x of saved.lookupRecords ?? []) {
    p = addLookupRecord(p, lookupRecord({
      CustomerAddress: x.customerAddress, VirtualSubnetID: x.virtualSubnetId, MACAddress: x.macAddress, ProviderAddress: x.providerAddress, Rule: x.rule,
      Type: x.type, CustomerID: x.customerId, VMName: x.vmName, UseVmMACAddress: x.useVmMacAddress,
    }));
  }
  return p;
}

export class HnvStore {
  private policy: HnvPolicy = emptyPolicy();
  private shared: SharedTenantPolicy | undefined;
  private readonly lock = new SerialLock();
  private readonly path: string;
  private readonly listeners: ((p: HnvPolicy) => void)[] = [];

  constructor(dataDir: string) {
    this.path = join(dataDir, 'hnv-policy.json');
  }

  /** Daemon start. A missing file is an empty policy; an invalid one stops the start with the record at fault. */
  async load(): Promise<void> {
    const saved = await readJson<HnvPolicy>(this.path).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return emptyPolicy(); throw e; });
    try {
      this.policy = revalidated(saved);
    } catch (e) {
      throw new VmhostError('HNV_BAD_POLICY', `${this.path}: ${(e as Error).message}`, { path: this.path }, { cause: e });
    }
  }

  /** The current policy. */
  current(): HnvPolicy {
    return this.policy;
  }

  /** `fn` gets the policy after every change (once it is on disk). */
  onChange(fn: (p: HnvPolicy) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Join a cluster's shared tenant half: the cluster's version wins (this host's file only seeds
   * a cluster that has none yet), then every change any node makes is adopted here.
   * `onError` hears of a shared version this host cannot take (it keeps its own meanwhile).
   */
  async share(shared: SharedTenantPolicy, onError: (e: Error) => void): Promise<void> {
    await this.lock.run(async () => {
      await this.adopt(await shared.update((cur) => cur ?? tenantOf(this.policy)));
      this.shared = shared;
    });
    shared.follow((t) => void this.lock.run(() => this.adopt(t)).catch(onError));
  }

  /** Stop following the cluster: the last version seen stays, in the file too. */
  unshare(): void {
    this.shared?.close();
    this.shared = undefined;
  }

  /** A shared version in place of this host's tenant half, checked as a saved file is. */
  private async adopt(t: TenantPolicy): Promise<void> {
    if (JSON.stringify(tenantOf(this.policy)) === JSON.stringify(tenantOf({ ...emptyPolicy(), ...t }))) return;
    let next: HnvPolicy;
    try {
      next = revalidated({ ...this.policy, lookupRecords: t.lookupRecords, customerRoutes: t.customerRoutes });
    } catch (e) {
      throw new VmhostError('HNV_BAD_POLICY', `the cluster's network virtualization policy: ${(e as Error).message}`, { op: 'hnv-policy' }, { cause: e });
    }
    await this.commit(next);
  }

  private async commit(next: HnvPolicy): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify(next, null, 2) + '\n');
    this.policy = next;
    for (const fn of this.listeners) fn(next);
  }

  private change(fn: (p: HnvPolicy) => HnvPolicy): Promise<void> {
    return this.lock.run(async () => {
      if (!this.shared) {
        const next = fn(this.policy);
        if (next !== this.policy) await this.commit(next);
        return;
      }
      // Shared: `fn` runs on the cluster's current tenant half (again, if another node changed it meanwhile).
      let next = this.policy;
      const tenant = await this.shared.update((cur) => {
        next = fn(cur ? { ...this.policy, ...cur } : this.policy);
        return tenantOf(next);
      });
      const merged = { ...next, ...tenant };
      if (JSON.stringify(merged) !== JSON.stringify(this.policy)) await this.commit(merged);
    });
  }

  private domainOf = (vsid: number): string | undefined => this.policy.customerRoutes.find((r) => r.virtualSubnetId === vsid)?.routingDomainId;

  providerAddresses(f: ProviderAddressFilter = {}): Record<string, unknown>[] {
    return this.policy.providerAddresses.filter(paMatch(f)).map(paView);
  }

  async newProviderAddress(p: ProviderAddressParams): Promise<Record<string, unknown>> {
    const pa = providerAddress(p);
    await this.change((x) => addProviderAddress(x, pa));
    return paView(pa);
  }

  async removeProviderAddresses(f: ProviderAddressFilter): Promise<number> {
    return this.remove('providerAddresses', paMatch(f), 'provider address');
  }

  lookupRecords(f: LookupRecordFilter = {}): Record<string, unknown>[] {
    return this.policy.lookupRecords.filter(recordMatch(f, this.domainOf)).map((r) => recordView(r, this.domainOf(r.virtualSubnetId)));
  }

  async newLookupRecord(p: LookupRecordParams): Promise<Record<string, unknown>> {
    const r = lookupRecord(p);
    await this.change((x) => addLookupRecord(x, r));
    return recordView(r, this.domainOf(r.virtualSubnetId));
  }

  async removeLookupRecords(f: LookupRecordFilter): Promise<number> {
    return this.remove('lookupRecords', recordMatch(f, this.domainOf), 'lookup record');
  }

  customerRoutes(f: CustomerRouteFilter = {}): Record<string, unknown>[] {
    return this.policy.customerRoutes.filter(routeMatch(f)).map(routeView);
  }

  async newCustomerRoute(p: CustomerRouteParams): Promise<Record<string, unknown>> {
    const r = customerRoute(p);
    await this.change((x) => addCustomerRoute(x, r));
    return routeView(r);
  }

  async removeCustomerRoutes(f: CustomerRouteFilter): Promise<number> {
    return this.remove('customerRoutes', routeMatch(f), 'customer route');
  }

  /**
   * The PA this host's data path sends from (datapath.ts: the first IPv4 one): what a VM moving
   * here has its lookup records re-pointed to. Undefined: no provider address, no NVGRE here.
   */
  sourceProviderAddress(): string | undefined {
    return this.policy.providerAddresses.find((p) => !p.providerAddress.includes(':'))?.providerAddress;
  }

  /**
   * A VM in virtual subnets moved to the host with provider address `pa` (this one, or the
   * destination of a move out): its lookup records here follow it (policy.ts movedTo). Nothing
   * is written when no record changes. The number of records re-pointed.
   */
  async followMove(adapters: readonly VirtualSubnetAdapter[], pa: string): Promise<number> {
    if (adapters.length === 0 || movedTo(this.policy, adapters, pa).moved === 0) return 0;
    let n = 0;
    await this.change((p) => { const r = movedTo(p, adapters, pa); n = r.moved; return r.policy; });
    return n;
  }

  /** Remove-*: everything the filter matches goes; NOT_FOUND when nothing did. */
  private async remove<K extends keyof HnvPolicy>(key: K, match: (x: HnvPolicy[K][number]) => boolean, what: string): Promise<number> {
    let n = 0;
    await this.change((p) => {
      const r = without(p, key, match);
      n = r.removed.length;
      if (n === 0) throw new VmhostError('NOT_FOUND', `No ${what} matches the given parameters`, { op: 'hnv-policy' });
      return r.policy;
    });
    return n;
  }
}
