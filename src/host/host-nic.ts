// The management OS's network adapters (Hyper-V's "vEthernet (X)"): the host's own ports on
// Internal switches. Each is a Linux tap interface relayed to an ordinary socket port of the
// switch by the C helper vmhost-tapd (tapd.ts), so all switch policy applies to it as to a VM.
// Persisted in the switch's file (VmNetwork); the tap is persistent in the kernel, so it keeps
// its name and the addresses the admin gave it across daemon restarts: a restart only starts
// the relays again. Removing the adapter or its switch deletes the interface.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { VmhostError } from '../common/index.ts';
import type { EventLevel } from './events.ts';
import { invalid } from './invalid-argument.ts';
import { linkInfo } from './link-info.ts';
import { RelayKeeper } from './relay-keeper.ts';
import { deleteTap } from './tapd.ts';
import { checkName } from './vm-config.ts';
import { vlanFields, vlanFrom, type SetVlanParams } from './vlan-params.ts';
import {
  aclRule, aclViews, extendedAclRule, extendedAclViews, isAcl, isExtendedAcl, settingsPatch, settingsView,
  type AclParams, type ExtendedAclParams, type SetAdapterParams,
} from './port-policy-params.ts';
import type { PortPolicy, PortPolicyPatch, VirtualSwitch } from '../switch/index.ts';

export interface HostNicConfig {
  readonly id: string;
  readonly name: string;
  /** The Linux interface: `vmh` + 8 hex digits of the id (IFNAMSIZ allows 15 characters). */
  readonly ifname: string;
  readonly mac: string;
}

/** A switch as host NICs need it: VmNetwork's slot. */
export interface NicSwitch {
  readonly id: string;
  readonly sw: VirtualSwitch;
  hostNics: HostNicConfig[];
}

/** What host NICs need of the network manager. */
export interface HostNicEnv {
  switches(): Iterable<NicSwitch>;
  /** The switch of that name, or NOT_FOUND. */
  switchNamed(name: string): NicSwitch;
  save(s: NicSwitch): Promise<void>;
  socketPath(portId: string): string;
  /** A free MAC from the host's dynamic MAC pool (mac-pool.ts). */
  newMac(): string;
  event(level: EventLevel, code: string, message: string): void;
  readonly computerName: string;
}

export class HostNics {
  private readonly keepers = new Map<string, RelayKeeper>();

  constructor(private readonly env: HostNicEnv) {}

  /** Daemon start: the relays of a loaded switch's host NICs attach to their persistent taps again. */
  async restore(s: NicSwitch): Promise<void> {
    for (const nic of s.hostNics) {
      try {
        if (!s.sw.listPorts().some((p) => p.id === nic.id)) await this.addPort(s, nic);
        await this.keeper(s, nic).resume();
      } catch (e) {
        this.env.event('Error', 'HOST_NIC_FAILED', `Host vNIC '${nic.name}' (${nic.ifname}) on switch '${s.sw.settings.name}' could not be restored: ${(e as Error).message}`);
      }
    }
  }

  /** Port ids that belong to host NICs (reconcile keeps them). */
  portIds(s: NicSwitch): string[] { return s.hostNics.map((n) => n.id); }

  macs(): string[] { return [...this.all()].map(({ nic }) => nic.mac.toUpperCase()); }

  /**
   * Creates a host NIC on `s` (not yet saved: the caller saves the switch): port, tap, relay.
   * On failure nothing is left behind and the helper's typed error is thrown.
   */
  async create(s: NicSwitch, name: string): Promise<HostNicConfig> {
    checkName(name);
    if ([...this.all()].some(({ nic }) => nic.name.toLowerCase() === name.toLowerCase())) {
      throw new VmhostError('ALREADY_EXISTS', `A management-OS network adapter named '${name}' already exists`, { adapter: name });
    }
    const nic: HostNicConfig = { ...freshIdentity(new Set([...this.all()].map(({ nic: n }) => n.ifname))), name, mac: this.env.newMac() };
    await this.addPort(s, nic);
    try {
      await this.keeper(s, nic).start();
    } catch (e) {
      await this.keepers.get(nic.id)?.stop();
      this.keepers.delete(nic.id);
      await s.sw.removePort(nic.id);
      await deleteTap(nic.ifname).catch(() => undefined); // the tap may exist if the failure came after TUNSETIFF
      throw e;
    }
    s.hostNics = [...s.hostNics, nic];
    return nic;
  }

  /** Add-VMNetworkAdapter -ManagementOS. */
  async add(switchName: string, name: string): Promise<Record<string, unknown>> {
    const s = this.env.switchNamed(switchName);
    if (s.sw.settings.type === 'Private') {
      throw invalid('SwitchName', `switch '${s.sw.settings.name}' is Private; only Internal and External switches have management-OS network adapters`);
    }
    const nic = await this.create(s, name);
    await this.env.save(s);
    this.env.event('Information', 'HOST_NIC_ADDED', `Host vNIC '${name}' added to switch '${s.sw.settings.name}' as interface ${nic.ifname} (${nic.mac})`);
    return this.view(s, nic);
  }

  /** Remove-VMNetworkAdapter -ManagementOS -Name. */
  async remove(name: string, switchName?: string): Promise<void> {
    for (const { s, nic } of this.pick(name, switchName)) {
      await this.destroy(s, nic);
      s.hostNics = s.hostNics.filter((n) => n !== nic);
      await this.env.save(s);
      this.env.event('Information', 'HOST_NIC_REMOVED', `Host vNIC '${nic.name}' (${nic.ifname}) removed from switch '${s.sw.settings.name}'`);
    }
  }

  /** Remove-VMSwitch: the switch's host NICs and their interfaces go with it. */
  async removeAll(s: NicSwitch): Promise<void> {
    for (const nic of s.hostNics) await this.destroy(s, nic);
    s.hostNics = [];
  }

  /** Get-VMNetworkAdapter -ManagementOS [-Name] [-SwitchName]. */
  async list(name?: string, switchName?: string): Promise<Record<string, unknown>[]> {
    return Promise.all(this.pick(name, switchName).sort((a, b) => a.nic.name.localeCompare(b.nic.name)).map(({ s, nic }) => this.view(s, nic)));
  }

  /** Get-VMNetworkAdapterVlan -ManagementOS [-VMNetworkAdapterName]: the VLAN mode of the host's ports. */
  vlans(name?: string): Record<string, unknown>[] {
    return this.pick(name).map(({ s, nic }) => ({ VMName: null, ParentAdapter: nic.name, IsManagementOs: true, ...vlanFields(s.sw.port(nic.id).policy.vlan) }));
  }

  /** Set-VMNetworkAdapterVlan -ManagementOS: the host's port policy, like a VM's; kept with the switch. */
  async setVlan(name: string | undefined, p: SetVlanParams): Promise<Record<string, unknown>[]> {
    const vlan = vlanFrom(p);
    await this.patch(name, `VLAN ${vlan.mode}${vlan.mode === 'Access' ? ` ${vlan.vlanId}` : ''}`, () => ({ vlan }));
    return this.vlans(name);
  }

  /** Set-VMNetworkAdapter -ManagementOS: guards, mirroring and bandwidth of the host's ports. */
  async setAdapter(name: string | undefined, p: SetAdapterParams): Promise<Record<string, unknown>[]> {
    if (p.VirtualSubnetId !== undefined) throw invalid('VirtualSubnetId', 'a virtual subnet is a VM adapter setting; the management OS\'s adapters have none');
    await this.patch(name, Object.keys(p).join(', '), () => settingsPatch(p));
    return this.list(name);
  }

  /** Get-VMNetworkAdapterExtendedAcl -ManagementOS. */
  extendedAcls(name?: string): Record<string, unknown>[] {
    return this.pick(name).flatMap(({ s, nic }) => extendedAclViews(this.policy(s, nic), owner(nic)));
  }

  async addExtendedAcl(name: string | undefined, p: ExtendedAclParams): Promise<Record<string, unknown>[]> {
    const rule = extendedAclRule(p);
    await this.patch(name, 'extended ACLs', (policy) => ({ extendedAcls: [...policy.extendedAcls, rule] }));
    return this.extendedAcls(name);
  }

  async removeExtendedAcl(name: string | undefined, direction: 'Inbound' | 'Outbound', weight: number): Promise<void> {
    const named = isExtendedAcl(direction, weight);
    if (!this.pick(name).some(({ s, nic }) => this.policy(s, nic).extendedAcls.some(named))) {
      throw new VmhostError('NOT_FOUND', `No ${direction} extended ACL with weight ${weight} on a management-OS network adapter${name ? ` named '${name}'` : ''}`, { adapter: name });
    }
    await this.patch(name, 'extended ACLs', (policy) => ({ extendedAcls: policy.extendedAcls.filter((x) => !named(x)) }));
  }

  /** Get-VMNetworkAdapterAcl -ManagementOS: Meter rules with the switch's counters. */
  acls(name?: string): Record<string, unknown>[] {
    return this.pick(name).flatMap(({ s, nic }) => aclViews(this.policy(s, nic), s.sw.meterCounters(nic.id), owner(nic)));
  }

  async addAcl(name: string | undefined, p: AclParams): Promise<Record<string, unknown>[]> {
    const rule = aclRule(p);
    await this.patch(name, 'ACLs', (policy) => ({ acls: [...policy.acls, rule] }));
    return this.acls(name);
  }

  async removeAcl(name: string | undefined, p: AclParams): Promise<void> {
    const same = isAcl(p);
    if (!this.pick(name).some(({ s, nic }) => this.policy(s, nic).acls.some(same))) {
      throw new VmhostError('NOT_FOUND', `No such ACL on a management-OS network adapter${name ? ` named '${name}'` : ''}`, { adapter: name });
    }
    await this.patch(name, 'ACLs', (policy) => ({ acls: policy.acls.filter((x) => !same(x)) }));
  }

  /**
   * A policy change on the selected host ports. The switch's file is where a host vNIC's policy
   * lives (there is no vm.json), so the port changes first (the switch validates the result
   * and refuses a bad one unchanged) and its file follows at once.
   */
  private async patch(name: string | undefined, what: string, fn: (p: PortPolicy) => PortPolicyPatch): Promise<void> {
    const picked = this.pick(name).map((x) => ({ ...x, patch: fn(this.policy(x.s, x.nic)) }));
    for (const { s, nic, patch } of picked) {
      s.sw.setPortPolicy(nic.id, patch);
      await this.env.save(s);
      this.env.event('Information', 'HOST_NIC_POLICY', `Host vNIC '${nic.name}' on switch '${s.sw.settings.name}': ${what}`);
    }
  }

  private policy(s: NicSwitch, nic: HostNicConfig): PortPolicy { return s.sw.port(nic.id).policy; }

  /** The host NICs a name (and switch) selects, every one when absent; a name that matches none is NOT_FOUND. */
  private pick(name: string | undefined, switchName?: string): { s: NicSwitch; nic: HostNicConfig }[] {
    const hits = [...this.all()].filter(({ s, nic }) => (name === undefined || nic.name.toLowerCase() === name.toLowerCase())
      && (switchName === undefined || s.sw.settings.name.toLowerCase() === switchName.toLowerCase()));
    if (name !== undefined && hits.length === 0) {
      throw new VmhostError('NOT_FOUND', `No management-OS network adapter named '${name}'${switchName ? ` on switch '${switchName}'` : ''}`, { adapter: name });
    }
    return hits;
  }

  /** Daemon stop: relays end, the taps stay (persistent) for the next daemon. */
  async close(): Promise<void> {
    await Promise.all([...this.keepers.values()].map((k) => k.stop()));
    this.keepers.clear();
  }

  private *all(): Generator<{ s: NicSwitch; nic: HostNicConfig }> {
    for (const s of this.env.switches()) for (const nic of s.hostNics) yield { s, nic };
  }

  private async addPort(s: NicSwitch, nic: HostNicConfig): Promise<void> {
    await s.sw.addPort({ id: nic.id, socketPath: this.env.socketPath(nic.id), policy: { mac: nic.mac.toLowerCase() } });
  }

  private keeper(s: NicSwitch, nic: HostNicConfig): RelayKeeper {
    const k = new RelayKeeper({ ifname: nic.ifname, mac: nic.mac, socketPath: this.env.socketPath(nic.id) },
      (msg) => this.env.event('Warning', 'HOST_NIC_RELAY', `Host vNIC '${nic.name}' (${nic.ifname}) on switch '${s.sw.settings.name}': ${msg}`));
    this.keepers.set(nic.id, k);
    return k;
  }

  /** Relay stopped, interface deleted, port removed. An interface that cannot be deleted is reported, not fatal. */
  private async destroy(s: NicSwitch, nic: HostNicConfig): Promise<void> {
    await this.keepers.get(nic.id)?.stop();
    this.keepers.delete(nic.id);
    if (s.sw.listPorts().some((p) => p.id === nic.id)) await s.sw.removePort(nic.id);
    await deleteTap(nic.ifname).catch((e: unknown) => {
      this.env.event('Warning', 'HOST_NIC_LEFT_BEHIND', `Interface ${nic.ifname} of host vNIC '${nic.name}' could not be deleted (remove it with: ip link del ${nic.ifname}): ${(e as Error).message}`);
    });
  }

  private async view(s: NicSwitch, nic: HostNicConfig): Promise<Record<string, unknown>> {
    const link = await linkInfo(nic.ifname);
    const connected = s.sw.listPorts().find((p) => p.id === nic.id)?.connected ?? false;
    return {
      Name: nic.name, Id: nic.id, IsManagementOs: true, VMName: null, ComputerName: this.env.computerName,
      SwitchName: s.sw.settings.name, SwitchId: s.id, MacAddress: nic.mac.replace(/:/g, '').toUpperCase(),
      InterfaceName: nic.ifname, NetAdapterName: `vEthernet (${nic.name})`,
      Status: !link ? ['LostCommunication'] : connected && link.carrier ? ['Ok'] : ['Degraded'], Connected: connected,
      IPAddresses: link?.addresses ?? [], ...settingsView(this.policy(s, nic)),
      Statistics: s.sw.listPorts().some((p) => p.id === nic.id) ? s.sw.portStats(nic.id) : null,
    };
  }
}

/** VMName and ParentAdapter of a host port's ACL objects, as Hyper-V shows them. */
function owner(nic: HostNicConfig): Record<string, unknown> {
  return { VMName: null, ParentAdapter: nic.name, IsManagementOs: true };
}

/**
 * A new adapter id and its interface name. The name is derived from the id (stable: it is
 * persisted with it) and must be free on this host: not ours, not an existing interface
 * (another vmhost data dir's, or anything else's).
 */
function freshIdentity(ours: Set<string>): { id: string; ifname: string } {
  for (;;) {
    const id = randomUUID();
    const ifname = `vmh${id.slice(0, 8)}`;
    if (!ours.has(ifname) && !existsSync(`/sys/class/net/${ifname}`)) return { id, ifname };
  }
}
