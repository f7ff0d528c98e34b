// VM networking: the VMs' network adapters on the host's virtual switches (src/switch), and the
// parts that make it up: the switches as stored (switch-registry.ts), the switch cmdlets
// (vm-switches.ts), the port policy cmdlets (adapter-policy.ts), capture (switch-capture.ts),
// the switches' events (switch-events.ts), MACs (adapter-macs.ts), host vNICs (host-nic.ts)
// and NIC teams (lbfo.ts).
// QEMU 7.2 stream netdevs do not reconnect: a running VM's NIC is re-plugged through QMP
// (qemu/hotplug.ts replugNicStream) after a daemon restart and on Connect/Disconnect.
import { randomUUID } from 'node:crypto';
import { emptyPolicy, type HnvPolicy } from '../hnv/index.ts';
import { parseMac } from '../packet/index.ts';
import type { HubNic } from '../qemu/index.ts';
import { defaultPolicy, type PortCounters, type MeterCounters } from '../switch/index.ts';
import { adapterAddresses } from './adapter-addresses.ts';
import { freeMac, normalizeMac, usedMacs } from './adapter-macs.ts';
import { AdapterPolicies, vlanView } from './adapter-policy.ts';
import { applyHnv } from './hnv-datapath.ts';
import { HostNics } from './host-nic.ts';
import { invalid } from './invalid-argument.ts';
import { Lbfo } from './lbfo.ts';
import type { NetAdapters } from './net-adapters.ts';
import { commitConfig, nicDeviceId, pickAdapters, stripMac, withAdapters, type NetHost } from './net-host.ts';
import type { NetTeams } from './net-teams.ts';
import { settingsView } from './port-policy-params.ts';
import { SwitchCaptures } from './switch-capture.ts';
import type { SavedCounters } from './switch-counters.ts';
import { SwitchEventLog } from './switch-events.ts';
import { SwitchRegistry, portPolicy, type SwitchSlot } from './switch-registry.ts';
import type { NetworkAdapter } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';
import { assertLegal } from './vm-state.ts';
import { VmSwitches } from './vm-switches.ts';


const ADAPTER_NAME = 'Network Adapter';

export interface AddAdapterParams { Name?: string; SwitchName?: string; StaticMacAddress?: string; IsLegacy?: boolean }

export class VmNetwork {
  readonly registry: SwitchRegistry;
  /** New-/Get-/Set-/Remove-VMSwitch, extensions, Get-NetAdapter. */
  readonly switches: VmSwitches;
  /** Start-/Stop-VMSwitchCapture. */
  readonly captures: SwitchCaptures;
  /** Set-VMNetworkAdapter, VLANs, ACLs. */
  readonly policies: AdapterPolicies;
  /** The management OS's adapters (Get-/Add-/Remove-VMNetworkAdapter -ManagementOS). */
  readonly hostNics: HostNics;
  /** NIC teams and Disable-/Enable-NetAdapter. */
  readonly lbfo: Lbfo;
  private hnvPolicy: HnvPolicy = emptyPolicy();
  private readonly switchListeners: ((name: string) => void)[] = [];

  /** `qemuGroup`: QEMU's group when it runs as its own user (it re-plugs NICs after dropping root). */
  constructor(private readonly host: NetHost, dataDir: string, declared: NetAdapters, teams: NetTeams, qemuGroup?: number) {
    const adapters = declared.withTeams(() => teams.targets());
    const events = new SwitchEventLog(host);
    const registry = new SwitchRegistry({ event: (level, code, message) => host.event(level, code, message), onSwitchEvent: (ev) => events.handle(ev), qemuGroup }, dataDir, adapters);
    this.registry = registry;
    this.lbfo = new Lbfo(teams, declared, {
      boundTo: (n) => registry.boundTo(n),
      boundSwitch: (n) => { const sw = registry.boundTo(n); return sw === undefined ? undefined : registry.slot(sw).sw; },
      event: (level, code, message) => host.event(level, code, message),
    });
    this.hostNics = new HostNics({
      switches: () => registry.all(),
      switchNamed: (name) => registry.slot(name),
      save: (s) => registry.save(registry.slot(s.sw.settings.name)),
      socketPath: (id) => registry.socketPath({ id }),
      newMac: () => this.dynamicMac(),
      event: (level, code, message) => host.event(level, code, message),
      computerName: host.computerName,
    });
    this.switches = new VmSwitches({ host, registry, hostNics: this.hostNics, lbfo: this.lbfo, declared, adapters, changed: (s, removed) => {
      if (!removed) this.hnvOn(s);
      for (const fn of this.switchListeners) fn(s.sw.settings.name);
    } });
    this.captures = new SwitchCaptures(host, registry);
    this.policies = new AdapterPolicies(host, registry, (vm, name) => this.listAdapters(vm, name));
  }

  /** `fn` gets the name of each switch created, re-bound or removed (after the change). */
  onSwitchChange(fn: (name: string) => void): void {
    this.switchListeners.push(fn);
  }

  /** The host's network virtualization policy, now on every External switch (hnv-datapath.ts): at start and after each NetWNV change. */
  applyHnv(policy: HnvPolicy): void {
    this.hnvPolicy = policy;
    for (const s of this.registry.all()) this.hnvOn(s);
  }

  private hnvOn(s: SwitchSlot): void {
    const refused = applyHnv(s.sw, this.hnvPolicy);
    if (refused) this.host.event('Warning', 'HNV_NOT_ON_SWITCH', `Network virtualization is not on ${refused}`);
  }

  /** Daemon start: every persisted switch listens again at its old socket paths, with its host vNICs. */
  async loadSwitches(): Promise<void> {
    await this.registry.load();
    for (const slot of this.registry.all()) await this.hostNics.restore(slot);
  }

  /** After the VMs are loaded: ports follow the adapters (policy from vm.json; stale ports go). */
  async reconcile(entries: VmEntry[]): Promise<void> {
    const wanted = new Map<string, Set<string>>();
    for (const e of entries) {
      for (const n of e.config.networkAdapters) {
        if (!n.switchName) continue;
        const slot = this.registry.find(n.switchName);
        if (!slot) { this.host.event('Warning', 'SWITCH_MISSING', `Adapter ${n.name} is connected to switch '${n.switchName}', which does not exist`, e); continue; }
        (wanted.get(slot.sw.settings.name) ?? wanted.set(slot.sw.settings.name, new Set()).get(slot.sw.settings.name)!).add(n.id);
        try {
          if (this.registry.portOf(n)) slot.sw.replacePortPolicy(n.id, portPolicy(n));
          else await this.registry.addPort(slot.sw, n);
        } catch (err) {
          this.host.event('Error', 'SWITCH_PORT_FAILED', `Port of adapter ${n.name} on '${n.switchName}' could not be recreated: ${(err as Error).message}`, e);
        }
      }
    }
    for (const slot of this.registry.all()) {
      const keep = new Set([...(wanted.get(slot.sw.settings.name) ?? []), ...this.hostNics.portIds(slot)]);
      for (const p of slot.sw.listPorts()) if (p.kind === 'vm' && !keep.has(p.id)) await slot.sw.removePort(p.id);
      await this.registry.save(slot);
    }
  }

  /** A re-attached running VM: its NICs' stream netdevs reconnect to the re-listening ports. */
  async replugRunning(e: VmEntry): Promise<number> {
    const rt = e.runtime;
    if (!rt) return 0;
    let n = 0;
    for (const [i, a] of e.config.networkAdapters.entries()) {
      if (!a.switchName) continue;
      await rt.replugNic(nicDeviceId(a), i + 1, this.registry.socketPath(a));
      n++;
    }
    return n;
  }

  /** Graceful stop: the counters are saved first, so a restart continues them. */
  async close(): Promise<void> {
    await this.hostNics.close();
    await this.registry.close();
  }

  /**
   * The NICs to launch a VM with; ports of connected adapters are made to exist first. On a
   * `cold` start (from Off) a dynamic MAC kept for saved memory (renewMacAtColdStart) is
   * replaced from the pool first: no memory holds the old address any more.
   */
  async nicsForStart(e: VmEntry, cold: boolean): Promise<HubNic[]> {
    const kept = cold ? e.config.networkAdapters.filter((a) => a.renewMacAtColdStart === true) : [];
    if (kept.length > 0) {
      const taken = new Set<string>();
      const next = withAdapters(e, kept, () => {
        const mac = this.dynamicMac(taken);
        taken.add(mac);
        return { mac, renewMacAtColdStart: undefined };
      });
      await commitConfig(this.host, e, next.config);
      await this.registry.refreshPorts(next.changed);
      this.host.event('Information', 'VM_NIC_MAC_RENEWED', `Dynamic MAC address renewed at a cold start: ${next.changed.map((a, i) => `'${a.name}' ${kept[i]!.mac} → ${a.mac}`).join(', ')}`, e);
    }
    const out: HubNic[] = [];
    for (const [i, a] of e.config.networkAdapters.entries()) {
      let socket: string | null = null;
      if (a.switchName) {
        const s = this.registry.slot(a.switchName);
        socket = this.registry.portOf(a) ? this.registry.socketPath(a) : await this.registry.addPort(s.sw, a);
      }
      out.push({ id: nicDeviceId(a), mac: a.mac, model: a.isLegacy ? 'legacy' : 'virtio', hub: i + 1, streamSocketPath: socket });
    }
    return out;
  }

  /** Import-VM: the new VM's connected adapters get their switch ports, as a daemon start gives them (reconcile). */
  async attach(e: VmEntry): Promise<void> {
    for (const a of e.config.networkAdapters) {
      const s = this.registry.find(a.switchName);
      if (!s) continue;
      await this.registry.addPort(s.sw, a);
      await this.registry.save(s);
    }
  }

  /** Move-VM's source: what the VM's ports counted (port statistics, Meter ACLs), by adapter id. */
  portCounters(e: VmEntry): SavedCounters {
    const out: SavedCounters = {};
    for (const a of e.config.networkAdapters) {
      const s = this.registry.portOf(a);
      if (s) out[a.id] = { counters: s.sw.portStats(a.id), meters: s.sw.meterCounters(a.id) };
    }
    return out;
  }

  /** Move-VM's destination: the moved VM's ports go on counting from what the source counted. */
  async restorePortCounters(e: VmEntry, saved: SavedCounters): Promise<void> {
    for (const a of e.config.networkAdapters) {
      const s = this.registry.portOf(a);
      const c = saved[a.id];
      if (s && c) { s.sw.restoreCounters(a.id, c); await this.registry.save(s); }
    }
  }

  /** Move-VM: each adapter's MAC announced from its port here (switch.ts `announce`), so this host's switches and those beyond their uplinks send its frames here. */
  announce(e: VmEntry): void {
    for (const a of e.config.networkAdapters) this.registry.portOf(a)?.sw.announce(a.id, parseMac(a.mac));
  }

  /** Remove-VM: the VM's ports go with it. */
  async forgetVm(e: VmEntry): Promise<void> {
    for (const a of e.config.networkAdapters) await this.registry.removePort(a);
  }

  /** A MAC from the host's pool that no VM, host vNIC or address in `also` has (Import-VM -GenerateNewId gives each dynamic adapter one). */
  dynamicMac(also: ReadonlySet<string> = new Set()): string {
    return freeMac(this.host, this.hostNics.macs(), also);
  }

  /** Live counters for metering and /metrics: each adapter's port (null when it has none) and Meter ACL counters. */
  adapterCounters(e: VmEntry): { adapter: NetworkAdapter; port: PortCounters | null; meters: MeterCounters[] }[] {
    return e.config.networkAdapters.map((a) => {
      const s = this.registry.portOf(a);
      return { adapter: a, port: s ? s.sw.portStats(a.id) : null, meters: s ? s.sw.meterCounters(a.id) : [] };
    });
  }

  private adapterView(e: VmEntry, a: NetworkAdapter): Record<string, unknown> {
    const s = this.registry.find(a.switchName);
    const port = s?.sw.listPorts().find((p) => p.id === a.id);
    const running = e.state === 'Running' || e.state === 'Paused';
    const ips = running ? adapterAddresses(this.host.kvp(e), a.mac) : [];
    return {
      Name: a.name, Id: a.id, VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName,
      SwitchName: a.switchName, SwitchId: s?.id ?? null, MacAddress: a.mac.replace(/:/g, '').toUpperCase(), DynamicMacAddressEnabled: a.dynamicMac,
      IsLegacy: a.isLegacy, IPAddresses: ips,
      Status: !running ? [] : port?.connected ? ['Ok'] : ['Degraded'], Connected: port?.connected ?? false,
      ...settingsView(a.policy), VirtualSubnetId: a.virtualSubnetId ?? 0, VlanSetting: vlanView(e, a),
      Statistics: port && s ? s.sw.portStats(a.id) : null,
    };
  }

  listAdapters(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    const list = name === undefined ? e.config.networkAdapters : e.config.networkAdapters.filter((a) => a.name.toLowerCase() === name.toLowerCase());
    return list.map((a) => this.adapterView(e, a));
  }

  async addAdapter(vm: string, p: AddAdapterParams): Promise<Record<string, unknown>> {
    const e = this.host.resolve(vm);
    return e.lock.run(async () => {
      assertLegal('AddNetworkAdapter', e.state, e.config.name);
      if (p.IsLegacy && e.config.generation !== 1) throw invalid('IsLegacy', 'generation 2 VMs have no legacy network adapter', e.config.name);
      if (e.config.networkAdapters.length >= 8) throw invalid('VMName', 'a VM has at most 8 network adapters', e.config.name);
      const slot = p.SwitchName !== undefined ? this.registry.slot(p.SwitchName) : undefined;
      let mac: string;
      if (p.StaticMacAddress !== undefined) {
        mac = normalizeMac(p.StaticMacAddress);
        if (usedMacs(this.host, this.hostNics.macs()).has(mac)) throw invalid('StaticMacAddress', `${mac} is already used by a network adapter on this host`, e.config.name);
      } else mac = this.dynamicMac();
      const a: NetworkAdapter = {
        id: randomUUID(), name: p.Name ?? ADAPTER_NAME, mac, dynamicMac: p.StaticMacAddress === undefined,
        switchName: slot ? slot.sw.settings.name : null, isLegacy: p.IsLegacy ?? false, policy: stripMac(defaultPolicy()),
      };
      if (slot) { await this.registry.addPort(slot.sw, a); await this.registry.save(slot); }
      await commitConfig(this.host, e, { ...e.config, networkAdapters: [...e.config.networkAdapters, a] });
      this.host.event('Information', 'VM_NIC_ADDED', `Network adapter '${a.name}' added (${mac}${slot ? `, switch '${slot.sw.settings.name}'` : ''})`, e);
      return this.adapterView(e, a);
    });
  }

  async removeAdapter(vm: string, name: string | undefined): Promise<void> {
    const e = this.host.resolve(vm);
    await e.lock.run(async () => {
      assertLegal('RemoveNetworkAdapter', e.state, e.config.name);
      const gone = pickAdapters(e, name);
      for (const a of gone) await this.registry.removePort(a);
      await commitConfig(this.host, e, { ...e.config, networkAdapters: e.config.networkAdapters.filter((a) => !gone.includes(a)) });
      this.host.event('Information', 'VM_NIC_REMOVED', `Network adapter(s) removed: ${gone.map((a) => a.name).join(', ')}`, e);
    });
  }

  /** Connect-VMNetworkAdapter (also live: the port is added and the NIC's stream netdev re-plugged). */
  async connect(vm: string, name: string | undefined, switchName: string): Promise<Record<string, unknown>[]> {
    const e = this.host.resolve(vm);
    const slot = this.registry.slot(switchName);
    return e.lock.run(async () => {
      assertLegal('ConnectNetworkAdapter', e.state, e.config.name);
      const list = pickAdapters(e, name);
      const next = withAdapters(e, list, () => ({ switchName: slot.sw.settings.name }));
      for (const [i, a] of list.entries()) {
        if (this.registry.portOf(a) === slot) continue;
        await this.registry.removePort(a);
        const socket = await this.registry.addPort(slot.sw, next.changed[i]!);
        await this.registry.save(slot);
        await e.runtime?.replugNic(nicDeviceId(a), e.config.networkAdapters.indexOf(a) + 1, socket);
      }
      await commitConfig(this.host, e, next.config);
      this.host.event('Information', 'VM_NIC_CONNECTED', `Network adapter(s) ${list.map((a) => a.name).join(', ')} connected to '${slot.sw.settings.name}'`, e);
      return next.changed.map((a) => this.adapterView(e, a));
    });
  }

  async disconnect(vm: string, name: string | undefined): Promise<Record<string, unknown>[]> {
    const e = this.host.resolve(vm);
    return e.lock.run(async () => {
      assertLegal('ConnectNetworkAdapter', e.state, e.config.name);
      const list = pickAdapters(e, name);
      const next = withAdapters(e, list, () => ({ switchName: null }));
      for (const a of list) {
        if (!a.switchName) continue;
        await e.runtime?.replugNic(nicDeviceId(a), e.config.networkAdapters.indexOf(a) + 1, null);
        await this.registry.removePort(a);
      }
      await commitConfig(this.host, e, next.config);
      this.host.event('Information', 'VM_NIC_DISCONNECTED', `Network adapter(s) ${list.map((a) => a.name).join(', ')} disconnected`, e);
      return next.changed.map((a) => this.adapterView(e, a));
    });
  }
}
