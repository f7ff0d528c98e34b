// The port policy cmdlets on a VM's adapters: Set-VMNetworkAdapter's settings, VLANs
// (Get-/Set-VMNetworkAdapterVlan), ACLs (Add-/Get-/Remove-VMNetworkAdapterAcl) and extended ACLs.
// A change is validated, saved in vm.json, then applied to the adapters' live ports.
import { VmhostError } from '../common/index.ts';
import {
  addMapping, checkMapped, checkVsid, defaultIsolation, isolationVsid, removeMapping, setIsolation, setMapping, withVsid,
  type MappingParams, type RoutingDomainMapping, type SetIsolationParams,
} from '../hnv/index.ts';
import { mergePolicy, type PortPolicyPatch } from '../switch/index.ts';
import { commitConfig, pickAdapters, stripMac, withAdapters, type NetHost } from './net-host.ts';
import {
  aclRule, aclViews, extendedAclRule, extendedAclViews, isAcl, isExtendedAcl, settingsPatch,
  type AclParams, type ExtendedAclParams, type SetAdapterParams,
} from './port-policy-params.ts';
import type { SwitchRegistry } from './switch-registry.ts';
import type { NetworkAdapter } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';
import { vlanFields, vlanFrom, type SetVlanParams } from './vlan-params.ts';

/** Get-VMNetworkAdapterVlan's row (also in Get-VMNetworkAdapter's VlanSetting). */
export function vlanView(e: VmEntry, a: NetworkAdapter): Record<string, unknown> {
  return { VMName: e.config.name, ParentAdapter: a.name, ...vlanFields(a.policy.vlan) };
}

/** New routing domain mappings for `a`, which must still hold its virtual subnet. */
function mapped(a: NetworkAdapter, routingDomains: RoutingDomainMapping[]): Partial<NetworkAdapter> {
  checkMapped(a.virtualSubnetId, routingDomains, 'IsolationID');
  return { routingDomains };
}

export class AdapterPolicies {
  /** `adapterViews`: Get-VMNetworkAdapter's rows, which Set-VMNetworkAdapter returns. */
  constructor(private readonly host: NetHost, private readonly registry: SwitchRegistry, private readonly adapterViews: (vm: string, name?: string) => Record<string, unknown>[]) {}

  /** Applies a policy change (and adapter fields in `also`) to the adapters and their live ports; validated before anything changes. */
  private async patch(vm: string, name: string | undefined, what: string, fn: (a: NetworkAdapter) => PortPolicyPatch, also: (a: NetworkAdapter) => Partial<NetworkAdapter> = () => ({})): Promise<VmEntry> {
    const e = this.host.resolve(vm);
    await e.lock.run(async () => {
      const list = pickAdapters(e, name);
      const next = withAdapters(e, list, (a) => ({ ...also(a), policy: stripMac(mergePolicy(a.policy, fn(a))) }));
      // vm.json is the source of truth: saved first, so a failed write changes nothing, live ports included.
      await commitConfig(this.host, e, next.config);
      await this.registry.refreshPorts(next.changed);
      this.host.event('Information', 'VM_NIC_CONFIGURED', `Network adapter ${what} changed`, e);
    });
    return e;
  }

  async setAdapter(vm: string, name: string | undefined, p: SetAdapterParams): Promise<Record<string, unknown>[]> {
    // -VirtualSubnetId 0 is Hyper-V's "none"; the adapter keeps the VSID, its port gets it (switch-registry.ts portPolicy),
    // and its isolation settings say the same (adapter-isolation.ts withVsid).
    const vsid = p.VirtualSubnetId === undefined || p.VirtualSubnetId === 0 ? undefined : checkVsid(p.VirtualSubnetId, 'VirtualSubnetId');
    const also = (a: NetworkAdapter): Partial<NetworkAdapter> => {
      if (p.VirtualSubnetId === undefined) return {};
      checkMapped(vsid, a.routingDomains ?? [], 'VirtualSubnetId');
      return { virtualSubnetId: vsid, isolation: withVsid(a.isolation ?? defaultIsolation(), vsid) };
    };
    const e = await this.patch(vm, name, Object.keys(p).join(', '), () => settingsPatch(p), also);
    return this.adapterViews(e.config.id, name);
  }

  async setVlan(vm: string, name: string | undefined, p: SetVlanParams): Promise<Record<string, unknown>[]> {
    const vlan = vlanFrom(p);
    const e = await this.patch(vm, name, 'VLAN', () => ({ vlan }));
    return this.vlans(e.config.id, name);
  }

  // ---- isolation and routing domains: the port's VSID (or access VLAN) follows the isolation mode; mappings bound the VSID (adapter-isolation.ts) ----

  isolation(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return pickAdapters(e, name).map((a) => {
      const i = a.isolation ?? defaultIsolation();
      return { VMName: e.config.name, ParentAdapter: a.name, IsolationMode: i.isolationMode, DefaultIsolationID: i.defaultIsolationId, AllowUntaggedTraffic: i.allowUntaggedTraffic, MultiTenantStack: i.multiTenantStack };
    });
  }

  async setIsolation(vm: string, name: string | undefined, p: SetIsolationParams): Promise<Record<string, unknown>[]> {
    const next = (a: NetworkAdapter) => setIsolation(a.isolation ?? defaultIsolation(), p);
    // Vlan mode is an access port of the default isolation ID; leaving it leaves the port untagged.
    const port = (a: NetworkAdapter): PortPolicyPatch => {
      const i = next(a);
      if (i.isolationMode === 'Vlan') return { vlan: { mode: 'Access', vlanId: i.defaultIsolationId } };
      return a.isolation?.isolationMode === 'Vlan' ? { vlan: { mode: 'Untagged' } } : {};
    };
    const e = await this.patch(vm, name, 'isolation', port, (a) => {
      const isolation = next(a);
      const vsid = isolationVsid(isolation);
      checkMapped(vsid, a.routingDomains ?? [], 'DefaultIsolationID');
      return { isolation, virtualSubnetId: vsid };
    });
    return this.isolation(e.config.id, name);
  }

  routingDomains(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return pickAdapters(e, name).flatMap((a) => (a.routingDomains ?? []).map((m) => ({
      VMName: e.config.name, ParentAdapter: a.name, RoutingDomainID: m.routingDomainId, RoutingDomainName: m.routingDomainName, IsolationID: m.isolationIds, IsolationName: m.isolationNames,
    })));
  }

  async addRoutingDomain(vm: string, name: string | undefined, p: MappingParams): Promise<Record<string, unknown>[]> {
    const e = await this.patch(vm, name, 'routing domains', () => ({}), (a) => mapped(a, addMapping(a.routingDomains ?? [], p)));
    return this.routingDomains(e.config.id, name);
  }

  async setRoutingDomain(vm: string, name: string | undefined, by: string, p: { NewRoutingDomainName?: string; IsolationID?: number[]; IsolationName?: string[] }): Promise<Record<string, unknown>[]> {
    const e = await this.patch(vm, name, 'routing domains', () => ({}), (a) => mapped(a, setMapping(a.routingDomains ?? [], by, p)));
    return this.routingDomains(e.config.id, name);
  }

  async removeRoutingDomain(vm: string, name: string | undefined, by: string): Promise<void> {
    await this.patch(vm, name, 'routing domains', () => ({}), (a) => mapped(a, removeMapping(a.routingDomains ?? [], by)));
  }

  vlans(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return pickAdapters(e, name).map((a) => vlanView(e, a));
  }

  extendedAcls(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return pickAdapters(e, name).flatMap((a) => extendedAclViews(a.policy, { VMName: e.config.name, ParentAdapter: a.name }));
  }

  async addExtendedAcl(vm: string, name: string | undefined, p: ExtendedAclParams): Promise<Record<string, unknown>[]> {
    const rule = extendedAclRule(p);
    const e = await this.patch(vm, name, 'extended ACLs', (a) => ({ extendedAcls: [...a.policy.extendedAcls, rule] }));
    return this.extendedAcls(e.config.id, name);
  }

  async removeExtendedAcl(vm: string, name: string | undefined, direction: 'Inbound' | 'Outbound', weight: number): Promise<void> {
    const e = this.host.resolve(vm);
    const named = isExtendedAcl(direction, weight);
    if (!pickAdapters(e, name).some((a) => a.policy.extendedAcls.some(named))) {
      throw new VmhostError('NOT_FOUND', `No ${direction} extended ACL with weight ${weight} on VM '${e.config.name}'`, { vm: e.config.name });
    }
    await this.patch(vm, name, 'extended ACLs', (a) => ({ extendedAcls: a.policy.extendedAcls.filter((x) => !named(x)) }));
  }

  acls(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return pickAdapters(e, name).flatMap((a) => {
      const meters = this.registry.portOf(a)?.sw.meterCounters(a.id) ?? [];
      return aclViews(a.policy, meters, { VMName: e.config.name, ParentAdapter: a.name });
    });
  }

  async addAcl(vm: string, name: string | undefined, p: AclParams): Promise<Record<string, unknown>[]> {
    const rule = aclRule(p);
    const e = await this.patch(vm, name, 'ACLs', (a) => ({ acls: [...a.policy.acls, rule] }));
    return this.acls(e.config.id, name);
  }

  async removeAcl(vm: string, name: string | undefined, p: AclParams): Promise<void> {
    const same = isAcl(p);
    const e = this.host.resolve(vm);
    if (!pickAdapters(e, name).some((a) => a.policy.acls.some(same))) throw new VmhostError('NOT_FOUND', `No such ACL on VM '${e.config.name}'`, { vm: e.config.name });
    await this.patch(vm, name, 'ACLs', (a) => ({ acls: a.policy.acls.filter((x) => !same(x)) }));
  }
}
