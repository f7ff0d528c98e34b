// VM networking: the host's virtual switches (src/switch) and the VMs' network adapters.
// A switch is persisted as <data-dir>/switches/<name>.json (its toConfig(), and its counters:
// switch-counters.ts) and recreated at daemon start before VMs are re-attached, its port
// sockets at the same short paths. An adapter's port (id = adapter id) exists while the
// adapter is connected, whether the VM runs or not; the adapter's policy in vm.json is the
// source of truth, the switch file follows.
// QEMU 7.2 stream netdevs do not reconnect: a running VM's NIC is re-plugged through QMP
// (qemu/hotplug.ts replugNicStream) after a daemon restart and on Connect/Disconnect.
// An Internal switch also has host vNICs (host-nic.ts), kept in its switch file.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { assertLegal } from './vm-state.ts';
import { SerialLock } from './vm-lock.ts';
import type { HubNic } from '../qemu/index.ts';
import {
  VirtualSwitch, mergePolicy, defaultPolicy, registeredExtensions, DEFAULT_CAPTURE_MAX_BYTES,
  type PortPolicy, type PortPolicyPatch, type SwitchConfig, type SwitchEvent, type PortCounters, type SwitchStats, type MeterCounters,
} from '../switch/index.ts';
import { adapterAddresses } from './adapter-addresses.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { checkCapturePath, type CaptureTargetParams, type StartCaptureParams } from './switch-capture.ts';
import { COUNTER_SAVE_INTERVAL_MS, countersOf, restoreCounters, type SavedCounters } from './switch-counters.ts';
import type { EventLevel } from './events.ts';
import { HostNics, type HostNicConfig } from './host-nic.ts';
import { invalid } from './invalid-argument.ts';
import { allocateMac, colonMac, parseMacText, type MacPool } from './mac-pool.ts';
import type { NetAdapters } from './net-adapters.ts';
import { TEAM_DESCRIPTION, type NetTeams } from './net-teams.ts';
import { Lbfo } from './lbfo.ts';
import { socketDirFor } from './runtime-dir.ts';
import { bindingView, changedBinding, netAdapterView, newBinding, persistedConfig, restoredConfig, type BindingParams } from './switch-binding.ts';
import { checkName, type NetworkAdapter } from './vm-config.ts';
import { vlanFields, vlanFrom, type SetVlanParams } from './vlan-params.ts';
import {
  aclRule, aclViews, extendedAclRule, extendedAclViews, isAcl, isExtendedAcl, settingsPatch, settingsView,
  type AclParams, type ExtendedAclParams, type SetAdapterParams,
} from './port-policy-params.ts';
import type { VmEntry } from './vm-entry.ts';

/** ACL denies and guard drops are counted per frame; the event log gets at most one per port and reason in this time. */
const DROP_EVENT_INTERVAL_MS = 60_000;
const ADAPTER_NAME = 'Network Adapter';

/** What the network actions need of the host. */
export interface NetHost {
  resolve(nameOrId: string): VmEntry;
  entries(): Iterable<VmEntry>;
  persist(e: VmEntry): Promise<void>;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
  kvp(e: VmEntry): Record<string, unknown>;
  /** The host's dynamic MAC pool (Set-VMHost -MacAddressMinimum/-MacAddressMaximum). */
  macPool(): MacPool;
  readonly computerName: string;
}

/** `netAdapterName`: the host adapter an External switch is bound to (by name; see switch-binding.ts). */
interface SwitchFile { id: string; notes: string; netAdapterName?: string | null; config: SwitchConfig; hostNics?: HostNicConfig[]; counters?: SavedCounters }
interface SwitchSlot {
  id: string; notes: string; netAdapterName: string | null; sw: VirtualSwitch; hostNics: HostNicConfig[];
  /** Writes of the switch file, one after another, so a periodic save never lands after Remove-VMSwitch deleted the file. */
  saving?: Promise<void>;
  /** The file's last written text: the periodic save skips unchanged switches. */
  written?: string;
  removed?: boolean;
}

export interface NewSwitchParams extends BindingParams { Name: string; MinimumBandwidthMode?: 'Absolute' | 'Weight'; Notes?: string }
export interface SetSwitchParams extends BindingParams { Notes?: string; DefaultFlowMinimumBandwidthWeight?: number; DefaultFlowMinimumBandwidthAbsolute?: number }
export interface AddAdapterParams { Name?: string; SwitchName?: string; StaticMacAddress?: string; IsLegacy?: boolean }
export class VmNetwork {
  private readonly switches = new Map<string, SwitchSlot>();
  private readonly names = new SerialLock();
  private readonly socketDir: string;
  private readonly switchDir: string;
  private readonly lastDropEvent = new Map<string, number>();
  /** The management OS's adapters (Get-/Add-/Remove-VMNetworkAdapter -ManagementOS). */
  readonly hostNics: HostNics;
  private counterTimer?: NodeJS.Timeout;

  /** NIC teams and Disable-/Enable-NetAdapter. */
  readonly lbfo: Lbfo;
  /** The declared adapters and the NIC teams: what -NetAdapterName may name. */
  private readonly adapters: NetAdapters;

  /** `qemuGroup`: QEMU's group when it runs as its own user (it re-plugs NICs after dropping root). */
  constructor(private readonly host: NetHost, dataDir: string, private readonly declared: NetAdapters, teams: NetTeams, private readonly qemuGroup?: number) {
    this.adapters = declared.withTeams(() => teams.targets());
    this.lbfo = new Lbfo(teams, declared, {
      boundTo: (n) => this.boundTo(n),
      boundSwitch: (n) => { const sw = this.boundTo(n); return sw === undefined ? undefined : this.slot(sw).sw; },
      event: (level, code, message) => this.host.event(level, code, message),
    });
    this.switchDir = join(dataDir, 'switches');
    this.socketDir = socketDirFor(dataDir, 'sw', qemuGroup);
    this.hostNics = new HostNics({
      switches: () => this.switches.values(),
      switchNamed: (name) => this.slot(name),
      save: (s) => this.saveSwitch(this.slot(s.sw.settings.name)),
      socketPath: (id) => this.socketPath({ id }),
      newMac: () => this.dynamicMac(),
      event: (level, code, message) => this.host.event(level, code, message),
      computerName: host.computerName,
    });
  }

  // ---- switches ------------------------------------------------------------------------

  /** Daemon start: every persisted switch listens again at its old socket paths. */
  async loadSwitches(): Promise<void> {
    await mkdir(this.switchDir, { recursive: true });
    await mkdir(this.socketDir, { recursive: true });
    for (const f of await readdir(this.switchDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const file = await readJson<SwitchFile>(join(this.switchDir, f));
        const sw = await this.restoreSwitch(file);
        restoreCounters(sw, file.counters);
        this.switches.set(sw.settings.name.toLowerCase(), { id: file.id, notes: file.notes, netAdapterName: file.netAdapterName ?? null, sw, hostNics: file.hostNics ?? [] });
      } catch (e) {
        this.host.event('Error', 'SWITCH_CONFIG_UNREADABLE', `Switch file ${f} skipped: ${(e as Error).message}`);
      }
    }
    for (const slot of this.switches.values()) await this.hostNics.restore(slot);
    this.counterTimer = setInterval(() => void this.saveAll(), COUNTER_SAVE_INTERVAL_MS);
    this.counterTimer.unref();
  }

  /** An adapter-bound switch opens its adapter as declared now; a missing adapter or a failed bind leaves it degraded (no uplink), never unloaded. */
  private async restoreSwitch(file: SwitchFile): Promise<VirtualSwitch> {
    const opts = { onEvent: (ev: SwitchEvent) => this.onSwitchEvent(ev), socketGroup: this.qemuGroup };
    if (!file.netAdapterName) return VirtualSwitch.fromConfig(file.config, opts);
    const name = file.config.settings.name;
    const r = restoredConfig(this.adapters, file.config, file.netAdapterName);
    if (r.config) {
      try {
        return await VirtualSwitch.fromConfig(r.config, opts);
      } catch (e) {
        if (!(e instanceof VmhostError) || e.code !== 'SWITCH_UPLINK') throw e;
        this.host.event('Error', 'SWITCH_NET_ADAPTER_FAILED', `External switch '${name}' is degraded: network adapter '${file.netAdapterName}' (${r.adapter?.description}) could not be opened: ${e.message}`);
      }
    } else {
      const known = this.adapters.list().map((a) => a.name).join(', ') || 'none';
      this.host.event('Warning', 'SWITCH_NET_ADAPTER_MISSING',
        `External switch '${name}' is degraded: network adapter '${file.netAdapterName}' is not declared on this host (adapters: ${known}); it forwards only among its own ports until Set-VMSwitch -NetAdapterName binds it`);
    }
    return VirtualSwitch.fromConfig(r.degraded, opts);
  }

  private async saveAll(): Promise<void> {
    for (const s of this.switches.values()) {
      await this.saveSwitch(s).catch((e: unknown) => this.host.event('Error', 'SWITCH_SAVE_FAILED', `Switch '${s.sw.settings.name}' not saved: ${(e as Error).message}`));
    }
  }

  /** After the VMs are loaded: ports follow the adapters (policy from vm.json; stale ports go). */
  async reconcile(entries: VmEntry[]): Promise<void> {
    const wanted = new Map<string, Set<string>>();
    for (const e of entries) {
      for (const n of e.config.networkAdapters) {
        if (!n.switchName) continue;
        const slot = this.switches.get(n.switchName.toLowerCase());
        if (!slot) { this.host.event('Warning', 'SWITCH_MISSING', `Adapter ${n.name} is connected to switch '${n.switchName}', which does not exist`, e); continue; }
        (wanted.get(slot.sw.settings.name) ?? wanted.set(slot.sw.settings.name, new Set()).get(slot.sw.settings.name)!).add(n.id);
        try {
          if (slot.sw.listPorts().some((p) => p.id === n.id)) slot.sw.replacePortPolicy(n.id, this.portPolicy(n));
          else await this.addPort(slot.sw, n);
        } catch (err) {
          this.host.event('Error', 'SWITCH_PORT_FAILED', `Port of adapter ${n.name} on '${n.switchName}' could not be recreated: ${(err as Error).message}`, e);
        }
      }
    }
    for (const slot of this.switches.values()) {
      const keep = new Set([...(wanted.get(slot.sw.settings.name) ?? []), ...this.hostNics.portIds(slot)]);
      for (const p of slot.sw.listPorts()) if (p.kind === 'vm' && !keep.has(p.id)) await slot.sw.removePort(p.id);
      await this.saveSwitch(slot);
    }
  }

  /** A re-attached running VM: its NICs' stream netdevs reconnect to the re-listening ports. */
  async replugRunning(e: VmEntry): Promise<number> {
    const rt = e.runtime;
    if (!rt) return 0;
    let n = 0;
    for (const [i, a] of e.config.networkAdapters.entries()) {
      if (!a.switchName) continue;
      await rt.replugNic(VmNetwork.deviceId(a), i + 1, this.socketPath(a));
      n++;
    }
    return n;
  }

  /** Graceful stop: the counters are saved first, so a restart continues them. */
  async close(): Promise<void> {
    await this.hostNics.close();
    clearInterval(this.counterTimer);
    await this.saveAll();
    for (const s of this.switches.values()) await s.sw.close();
  }

  /** Called on the frame path: cheap unless an event is due. */
  private onSwitchEvent(ev: SwitchEvent): void {
    if (ev.type === 'port-connection') return; // QEMU connects/disconnects with every start and stop: VM_STARTED/VM_STOPPED say it
    if (ev.type === 'capture-stopped') { this.captureStopped(ev); return; }
    const reason = ev.type === 'acl-deny' ? `acl-deny-${ev.direction}` : ev.reason;
    const key = `${ev.switch}/${ev.port}/${reason}`;
    const now = Date.now();
    if (now - (this.lastDropEvent.get(key) ?? 0) < DROP_EVENT_INTERVAL_MS) return;
    this.lastDropEvent.set(key, now);
    const owner = [...this.host.entries()].find((e) => e.config.networkAdapters.some((a) => a.id === ev.port));
    const adapter = owner?.config.networkAdapters.find((a) => a.id === ev.port)?.name ?? ev.port;
    const what = ev.type === 'acl-deny'
      ? `${ev.direction} traffic denied by an ACL (${JSON.stringify(ev.rule)})`
      : `frames dropped by a guard (${ev.reason})`;
    this.host.event('Warning', ev.type === 'acl-deny' ? 'SWITCH_ACL_DENY' : 'SWITCH_GUARD_DROP',
      `Switch '${ev.switch}', adapter ${adapter}: ${what}; further drops for this reason are counted (Get-VMSwitch -Json) and logged at most once a minute`, owner);
  }

  private slot(name: string): SwitchSlot {
    const s = this.switches.get(name.toLowerCase());
    if (!s) throw new VmhostError('NOT_FOUND', `Hyper-V was unable to find a virtual switch with name '${name}'`, { switch: name });
    return s;
  }

  private saveSwitch(s: SwitchSlot): Promise<void> {
    const write = async (): Promise<void> => {
      if (s.removed) return;
      const file: SwitchFile = {
        id: s.id, notes: s.notes, netAdapterName: s.netAdapterName, config: persistedConfig(s.sw.toConfig(), s.netAdapterName), hostNics: s.hostNics, counters: countersOf(s.sw),
      };
      const text = JSON.stringify(file, null, 2) + '\n';
      if (text === s.written) return;
      await writeFileAtomic(join(this.switchDir, `${s.sw.settings.name}.json`), text);
      s.written = text;
    };
    const next = (s.saving ?? Promise.resolve()).catch(() => undefined).then(write);
    s.saving = next;
    return next;
  }

  private switchView(s: SwitchSlot): Record<string, unknown> {
    const st = s.sw.settings;
    const ports = s.sw.listPorts().filter((p) => p.kind === 'vm');
    return {
      Name: st.name, Id: s.id, SwitchType: st.type, Notes: s.notes, ComputerName: this.host.computerName,
      ...bindingView(this.adapters, st.type, s.netAdapterName, st.uplink !== undefined, s.hostNics.length),
      BandwidthReservationMode: st.minimumBandwidthMode, MinimumBandwidthMode: st.minimumBandwidthMode,
      DefaultFlowMinimumBandwidthWeight: st.defaultFlowMinimumBandwidthWeight, DefaultFlowMinimumBandwidthAbsolute: st.defaultFlowMinimumBandwidthAbsolute,
      Ports: ports.length, ConnectedPorts: ports.filter((p) => p.connected).length,
      Extensions: s.sw.extensions().filter((x) => x.enabled).map((x) => x.name),
      Statistics: s.sw.stats(),
    };
  }

  listSwitches(): Record<string, unknown>[] {
    return [...this.switches.values()].sort((a, b) => a.sw.settings.name.localeCompare(b.sw.settings.name)).map((s) => this.switchView(s));
  }

  getSwitch(name: string): Record<string, unknown> {
    return this.switchView(this.slot(name));
  }

  /** New-VMSwitch. Under the names lock: of two requests for one name, the second sees the first's switch. */
  newSwitch(p: NewSwitchParams): Promise<Record<string, unknown>> {
    return this.names.run(() => this.newSwitchNamed(p));
  }

  private async newSwitchNamed(p: NewSwitchParams): Promise<Record<string, unknown>> {
    checkName(p.Name);
    if (this.switches.has(p.Name.toLowerCase())) throw new VmhostError('ALREADY_EXISTS', `A virtual switch named '${p.Name}' already exists`, { switch: p.Name });
    const { type, adapter } = newBinding(this.adapters, p, (n) => this.boundTo(n));
    if (adapter) this.lbfo.checkBindable(adapter.name);
    const sw = await VirtualSwitch.create(
      { name: p.Name, type, minimumBandwidthMode: p.MinimumBandwidthMode, socketDir: this.socketDir, uplink: adapter?.uplink },
      { onEvent: (ev) => this.onSwitchEvent(ev), socketGroup: this.qemuGroup },
    );
    const slot: SwitchSlot = { id: randomUUID(), notes: p.Notes ?? '', netAdapterName: adapter?.name ?? null, sw, hostNics: [] };
    // Like Hyper-V, an Internal switch comes with the host's vNIC, named after the switch; an
    // External one has it with -AllowManagementOS $true. (Hyper-V's default there is $true; here
    // it is $false: this host's management network is its real NIC, not the tunnel.)
    if (type === 'Internal' || (type === 'External' && p.AllowManagementOS === true)) {
      await this.hostNics.create(slot, p.Name).catch(async (e: unknown) => { await sw.close(); throw e; });
    }
    this.switches.set(p.Name.toLowerCase(), slot);
    await this.saveSwitch(slot);
    this.host.event('Information', 'SWITCH_CREATED', `Virtual switch '${p.Name}' created (${type}${adapter ? ` on network adapter '${adapter.name}', ${adapter.description}` : ''})`);
    return this.switchView(slot);
  }

  async setSwitch(name: string, p: SetSwitchParams): Promise<Record<string, unknown>> {
    const s = this.slot(name);
    const st = s.sw.settings;
    const change = changedBinding(this.adapters, { switchName: st.name, type: st.type, adapterName: s.netAdapterName, linked: st.uplink !== undefined }, p, (n) => this.boundTo(n));
    if (change?.adapter) this.lbfo.checkBindable(change.adapter.name);
    // Checked before anything changes: a refused call leaves the switch as it was.
    if (p.AllowManagementOS === true && (change?.type ?? st.type) === 'Private') {
      throw invalid('AllowManagementOS', `a Private switch has no management-OS network adapters ('${st.name}' would be Private)`);
    }
    if (change) {
      await s.sw.setUplink(change.type, change.adapter?.uplink);
      s.netAdapterName = change.adapter?.name ?? null;
      this.host.event('Information', 'SWITCH_BINDING_CHANGED', `Virtual switch '${st.name}' is now ${change.type}${change.adapter ? ` on network adapter '${change.adapter.name}', ${change.adapter.description}` : ''}`);
    }
    await this.syncManagementOs(s, p.AllowManagementOS);
    if (p.DefaultFlowMinimumBandwidthWeight !== undefined || p.DefaultFlowMinimumBandwidthAbsolute !== undefined) {
      s.sw.setSettings({ defaultFlowMinimumBandwidthWeight: p.DefaultFlowMinimumBandwidthWeight, defaultFlowMinimumBandwidthAbsolute: p.DefaultFlowMinimumBandwidthAbsolute });
    }
    if (p.Notes !== undefined) s.notes = p.Notes;
    await this.saveSwitch(s);
    return this.switchView(s);
  }

  /**
   * Set-VMSwitch: -AllowManagementOS $true gives the host a vNIC on the switch when it has none,
   * $false removes the host's vNICs; a switch that became Private loses them either way.
   */
  private async syncManagementOs(s: SwitchSlot, allow: boolean | undefined): Promise<void> {
    const type = s.sw.settings.type;
    if (allow === true && s.hostNics.length === 0) await this.hostNics.create(s, s.sw.settings.name);
    if ((allow === false || type === 'Private') && s.hostNics.length > 0) await this.hostNics.removeAll(s);
  }

  /** The switch bound to a host network adapter (a degraded one too: the binding is by name). */
  private boundTo(adapterName: string): string | undefined {
    return [...this.switches.values()].find((s) => s.netAdapterName?.toLowerCase() === adapterName.toLowerCase())?.sw.settings.name;
  }

  /** Get-NetAdapter: the declared adapters, then each team's adapter (as Windows lists the team NIC). */
  netAdapters(): Record<string, unknown>[] {
    return [
      ...this.declared.list().map((a) => netAdapterView(a, this.lbfo.isDisabled(a.name) ? 'Disabled' : 'Up', this.boundTo(a.name))),
      ...this.lbfo.listTeams().map((t) => ({
        Name: t.Name, InterfaceDescription: TEAM_DESCRIPTION, Status: t.Status === 'Down' ? 'Disconnected' : 'Up',
        LocalEndpoint: null, RemoteEndpoint: null, VMSwitchName: t.VMSwitchName,
      })),
    ];
  }

  async removeSwitch(name: string, force: boolean): Promise<void> {
    const s = this.slot(name);
    const users = [...this.host.entries()].flatMap((e) => e.config.networkAdapters.filter((a) => a.switchName?.toLowerCase() === name.toLowerCase()).map((a) => ({ e, a })));
    if (users.length > 0 && !force) {
      throw new VmhostError('INVALID_STATE', `Switch '${s.sw.settings.name}' has ${users.length} connected network adapter(s) (${[...new Set(users.map((u) => u.e.config.name))].join(', ')}); disconnect them or use -Force`, { switch: name });
    }
    for (const { e, a } of users) {
      await e.lock.run(async () => {
        const i = e.config.networkAdapters.indexOf(a);
        await e.runtime?.replugNic(VmNetwork.deviceId(a), i + 1, null).catch(() => undefined);
        await this.commit(e, this.withAdapters(e, [a], () => ({ switchName: null })).config);
      });
    }
    await this.hostNics.removeAll(s);
    s.removed = true;
    await s.saving?.catch(() => undefined);
    await s.sw.close();
    this.switches.delete(name.toLowerCase());
    await rm(join(this.switchDir, `${s.sw.settings.name}.json`), { force: true });
    this.host.event('Information', 'SWITCH_REMOVED', `Virtual switch '${s.sw.settings.name}' removed${users.length ? ` (${users.length} adapters disconnected)` : ''}`);
  }

  extensions(name: string): Record<string, unknown>[] {
    const s = this.slot(name);
    const on = new Map(s.sw.extensions().map((x) => [x.name, x]));
    return registeredExtensions().map((r) => ({
      Name: r.name, ExtensionType: r.type, Description: r.description, Enabled: on.get(r.name)?.enabled ?? false,
      Running: on.get(r.name)?.enabled ?? false, SwitchName: s.sw.settings.name, Status: on.get(r.name)?.status ?? {},
    }));
  }

  async setExtension(name: string, extension: string, enabled: boolean): Promise<Record<string, unknown>[]> {
    const s = this.slot(name);
    const reg = registeredExtensions().find((r) => r.name.toLowerCase() === extension.toLowerCase());
    if (!reg) throw new VmhostError('NOT_FOUND', `No switch extension named '${extension}' (installed: ${registeredExtensions().map((r) => r.name).join(', ')})`, { extension });
    const present = s.sw.extensions().some((x) => x.name === reg.name);
    if (enabled) {
      if (present) s.sw.enableExtension(reg.name);
      else s.sw.addExtension(reg.name, { enabled: true });
    } else if (present) s.sw.disableExtension(reg.name);
    await this.saveSwitch(s);
    return this.extensions(name).filter((x) => x.Name === reg.name);
  }

  // ---- capture (vmhost extension) ------------------------------------------------------

  /** The switch (no VMName) or the one port of the VM's adapter on this switch. */
  private captureTarget(switchName: string, p: CaptureTargetParams): { sw: VirtualSwitch; port: string | null; what: string } {
    const s = this.slot(switchName);
    const swName = s.sw.settings.name;
    if (p.VMName === undefined) {
      if (p.VMNetworkAdapterName !== undefined) throw invalid('VMNetworkAdapterName', '-VMNetworkAdapterName needs -VMName');
      return { sw: s.sw, port: null, what: `switch '${swName}'` };
    }
    const e = this.host.resolve(p.VMName);
    const on = this.pick(e, p.VMNetworkAdapterName).filter((a) => a.switchName?.toLowerCase() === swName.toLowerCase() && s.sw.listPorts().some((x) => x.id === a.id));
    if (on.length === 0) throw invalid('VMName', `VM '${e.config.name}' has no network adapter${p.VMNetworkAdapterName ? ` named '${p.VMNetworkAdapterName}'` : ''} connected to switch '${swName}'`);
    if (on.length > 1) throw invalid('VMNetworkAdapterName', `VM '${e.config.name}' has ${on.length} adapters on switch '${swName}'; name one`);
    return { sw: s.sw, port: on[0]!.id, what: `adapter '${on[0]!.name}' of VM '${e.config.name}' on switch '${swName}'` };
  }

  async startCapture(switchName: string, p: StartCaptureParams): Promise<Record<string, unknown>> {
    const t = this.captureTarget(switchName, p);
    await checkCapturePath(p.Path, p.Force ?? false);
    const maxBytes = p.MaxBytes ?? DEFAULT_CAPTURE_MAX_BYTES;
    try {
      t.sw.startCapture(t.port, p.Path, { maxBytes, overwrite: p.Force ?? false });
    } catch (e) {
      if (e instanceof VmhostError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new VmhostError('ALREADY_EXISTS', `The file '${p.Path}' already exists; use -Force to overwrite it`, { path: p.Path });
      const why = code === 'ELOOP' ? 'it is a symbolic link' : (e as Error).message;
      throw new VmhostError('IO_ERROR', `Cannot write the capture file '${p.Path}': ${why}`, { path: p.Path }, { cause: e });
    }
    this.host.event('Information', 'SWITCH_CAPTURE_STARTED', `Packet capture of ${t.what} started into ${p.Path} (at most ${maxBytes} bytes)`);
    return { SwitchName: t.sw.settings.name, VMName: p.VMName ?? null, Target: t.what, Path: p.Path, MaxBytes: maxBytes, Running: true };
  }

  /** A capture that stopped by itself (cap reached, write error): an event, and the next Start-VMSwitchCapture may begin. */
  private captureStopped(ev: Extract<SwitchEvent, { type: 'capture-stopped' }>): void {
    const owner = ev.port === null ? undefined : [...this.host.entries()].find((e) => e.config.networkAdapters.some((a) => a.id === ev.port));
    const adapter = owner?.config.networkAdapters.find((a) => a.id === ev.port)?.name;
    const what = ev.port === null ? `switch '${ev.switch}'` : `adapter ${adapter ?? ev.port} on switch '${ev.switch}'`;
    const { stop } = ev;
    if (stop.reason === 'max-bytes') {
      this.host.event('Warning', 'SWITCH_CAPTURE_LIMIT',
        `Packet capture of ${what} stopped at its size limit: ${stop.frames} frames, ${stop.bytes} bytes in ${stop.path}`, owner);
    } else {
      this.host.event('Error', 'SWITCH_CAPTURE_FAILED',
        `Packet capture of ${what} stopped: writing ${stop.path} failed (${stop.error ?? 'unknown error'}); ${stop.frames} frames, ${stop.bytes} bytes were written`, owner);
    }
  }

  stopCapture(switchName: string, p: CaptureTargetParams): Record<string, unknown> {
    const t = this.captureTarget(switchName, p);
    const done = t.sw.stopCapture(t.port);
    if (!done) throw new VmhostError('NOT_FOUND', `No packet capture is running on ${t.what}`, { switch: t.sw.settings.name });
    this.host.event('Information', 'SWITCH_CAPTURE_STOPPED', `Packet capture of ${t.what} stopped: ${done.frames} frames in ${done.path}`);
    return { SwitchName: t.sw.settings.name, VMName: p.VMName ?? null, Target: t.what, Path: done.path, Frames: done.frames, Running: false };
  }

  // ---- adapters ------------------------------------------------------------------------

  static deviceId(a: NetworkAdapter): string {
    return `nic-${a.id.slice(0, 8)}`;
  }

  private socketPath(a: { readonly id: string }): string {
    return join(this.socketDir, `${a.id.slice(0, 13)}.sock`);
  }

  private portPolicy(a: NetworkAdapter): PortPolicy {
    return { ...a.policy, mac: a.mac.toLowerCase() };
  }

  private async addPort(sw: VirtualSwitch, a: NetworkAdapter): Promise<string> {
    const { socketPath } = await sw.addPort({ id: a.id, socketPath: this.socketPath(a), policy: this.portPolicy(a) });
    return socketPath;
  }

  /** The live ports of changed adapters take their policy (and MAC) and are saved with their switch. */
  private async refreshPorts(changed: readonly NetworkAdapter[]): Promise<void> {
    for (const a of changed) {
      const s = a.switchName ? this.switches.get(a.switchName.toLowerCase()) : undefined;
      if (s && s.sw.listPorts().some((p) => p.id === a.id)) {
        s.sw.replacePortPolicy(a.id, { ...a.policy, mac: a.mac.toLowerCase() });
        await this.saveSwitch(s);
      }
    }
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
      const next = this.withAdapters(e, kept, () => {
        const mac = this.dynamicMac(taken);
        taken.add(mac);
        return { mac, renewMacAtColdStart: undefined };
      });
      await this.commit(e, next.config);
      await this.refreshPorts(next.changed);
      this.host.event('Information', 'VM_NIC_MAC_RENEWED', `Dynamic MAC address renewed at a cold start: ${next.changed.map((a, i) => `'${a.name}' ${kept[i]!.mac} → ${a.mac}`).join(', ')}`, e);
    }
    const out: HubNic[] = [];
    for (const [i, a] of e.config.networkAdapters.entries()) {
      let socket: string | null = null;
      if (a.switchName) {
        const s = this.slot(a.switchName);
        socket = s.sw.listPorts().some((p) => p.id === a.id) ? this.socketPath(a) : await this.addPort(s.sw, a);
      }
      out.push({ id: VmNetwork.deviceId(a), mac: a.mac, model: a.isLegacy ? 'legacy' : 'virtio', hub: i + 1, streamSocketPath: socket });
    }
    return out;
  }

  /** Import-VM: the new VM's connected adapters get their switch ports, as a daemon start gives them (reconcile). */
  async attach(e: VmEntry): Promise<void> {
    for (const a of e.config.networkAdapters) {
      const s = a.switchName === null ? undefined : this.switches.get(a.switchName.toLowerCase());
      if (!s) continue;
      await this.addPort(s.sw, a);
      await this.saveSwitch(s);
    }
  }

  /** Remove-VM: the VM's ports go with it. */
  async forgetVm(e: VmEntry): Promise<void> {
    for (const a of e.config.networkAdapters) {
      if (!a.switchName) continue;
      const s = this.switches.get(a.switchName.toLowerCase());
      if (s && s.sw.listPorts().some((p) => p.id === a.id)) { await s.sw.removePort(a.id); await this.saveSwitch(s); }
    }
  }

  /** A new config in which the adapters of `list` are replaced by changed copies (nothing is mutated in place). */
  private withAdapters(e: VmEntry, list: NetworkAdapter[], change: (a: NetworkAdapter) => Partial<NetworkAdapter>): { config: VmEntry['config']; changed: NetworkAdapter[] } {
    const changed = list.map((a) => ({ ...a, ...change(a) }));
    const config = { ...e.config, networkAdapters: e.config.networkAdapters.map((a) => changed[list.indexOf(a)] ?? a) };
    return { config, changed };
  }

  /**
   * Save first, then update memory: `next` becomes the VM's config only once it is on disk.
   * (NetHost.persist writes e.config, so it is swapped in for the write, under the VM lock, and
   * put back when the write fails.)
   */
  private async commit(e: VmEntry, next: VmEntry['config']): Promise<void> {
    const prev = e.config;
    e.config = next;
    try {
      await this.host.persist(e);
    } catch (err) {
      e.config = prev;
      throw err;
    }
  }

  private pick(e: VmEntry, name: string | undefined): NetworkAdapter[] {
    const list = name === undefined ? e.config.networkAdapters : e.config.networkAdapters.filter((a) => a.name.toLowerCase() === name.toLowerCase());
    if (list.length === 0) {
      throw new VmhostError('NOT_FOUND', name === undefined ? `VM '${e.config.name}' has no network adapter` : `VM '${e.config.name}' has no network adapter named '${name}'`, { vm: e.config.name });
    }
    return list;
  }

  private usedMacs(): Set<string> {
    return new Set([...[...this.host.entries()].flatMap((e) => e.config.networkAdapters.map((a) => a.mac.toUpperCase())), ...this.hostNics.macs()]);
  }

  /** A MAC from the host's pool that no VM, host vNIC or address in `also` has (Import-VM -GenerateNewId gives each dynamic adapter one). */
  dynamicMac(also: ReadonlySet<string> = new Set()): string {
    return allocateMac(this.host.macPool(), new Set([...this.usedMacs(), ...also]));
  }

  private adapterView(e: VmEntry, a: NetworkAdapter): Record<string, unknown> {
    const s = a.switchName ? this.switches.get(a.switchName.toLowerCase()) : undefined;
    const port = s?.sw.listPorts().find((p) => p.id === a.id);
    const running = e.state === 'Running' || e.state === 'Paused';
    const ips = running ? adapterAddresses(this.host.kvp(e), a.mac) : [];
    return {
      Name: a.name, Id: a.id, VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName,
      SwitchName: a.switchName, SwitchId: s?.id ?? null, MacAddress: a.mac.replace(/:/g, '').toUpperCase(), DynamicMacAddressEnabled: a.dynamicMac,
      IsLegacy: a.isLegacy, IPAddresses: ips,
      Status: !running ? [] : port?.connected ? ['Ok'] : ['Degraded'], Connected: port?.connected ?? false,
      ...settingsView(a.policy), VlanSetting: this.vlanView(e, a),
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
      const slot = p.SwitchName !== undefined ? this.slot(p.SwitchName) : undefined;
      let mac: string;
      if (p.StaticMacAddress !== undefined) {
        mac = normalizeMac(p.StaticMacAddress);
        if (this.usedMacs().has(mac)) throw invalid('StaticMacAddress', `${mac} is already used by a network adapter on this host`, e.config.name);
      } else mac = this.dynamicMac();
      const a: NetworkAdapter = {
        id: randomUUID(), name: p.Name ?? ADAPTER_NAME, mac, dynamicMac: p.StaticMacAddress === undefined,
        switchName: slot ? slot.sw.settings.name : null, isLegacy: p.IsLegacy ?? false, policy: stripMac(defaultPolicy()),
      };
      if (slot) { await this.addPort(slot.sw, a); await this.saveSwitch(slot); }
      await this.commit(e, { ...e.config, networkAdapters: [...e.config.networkAdapters, a] });
      this.host.event('Information', 'VM_NIC_ADDED', `Network adapter '${a.name}' added (${mac}${slot ? `, switch '${slot.sw.settings.name}'` : ''})`, e);
      return this.adapterView(e, a);
    });
  }

  async removeAdapter(vm: string, name: string | undefined): Promise<void> {
    const e = this.host.resolve(vm);
    await e.lock.run(async () => {
      assertLegal('RemoveNetworkAdapter', e.state, e.config.name);
      const gone = this.pick(e, name);
      for (const a of gone) await this.unport(a);
      await this.commit(e, { ...e.config, networkAdapters: e.config.networkAdapters.filter((a) => !gone.includes(a)) });
      this.host.event('Information', 'VM_NIC_REMOVED', `Network adapter(s) removed: ${gone.map((a) => a.name).join(', ')}`, e);
    });
  }

  private async unport(a: NetworkAdapter): Promise<void> {
    if (!a.switchName) return;
    const s = this.switches.get(a.switchName.toLowerCase());
    if (s && s.sw.listPorts().some((p) => p.id === a.id)) { await s.sw.removePort(a.id); await this.saveSwitch(s); }
  }

  /** Connect-VMNetworkAdapter (also live: the port is added and the NIC's stream netdev re-plugged). */
  async connect(vm: string, name: string | undefined, switchName: string): Promise<Record<string, unknown>[]> {
    const e = this.host.resolve(vm);
    const slot = this.slot(switchName);
    return e.lock.run(async () => {
      assertLegal('ConnectNetworkAdapter', e.state, e.config.name);
      const list = this.pick(e, name);
      const next = this.withAdapters(e, list, () => ({ switchName: slot.sw.settings.name }));
      for (const [i, a] of list.entries()) {
        if (a.switchName?.toLowerCase() === slot.sw.settings.name.toLowerCase() && slot.sw.listPorts().some((p) => p.id === a.id)) continue;
        await this.unport(a);
        const socket = await this.addPort(slot.sw, next.changed[i]!);
        await this.saveSwitch(slot);
        await e.runtime?.replugNic(VmNetwork.deviceId(a), e.config.networkAdapters.indexOf(a) + 1, socket);
      }
      await this.commit(e, next.config);
      this.host.event('Information', 'VM_NIC_CONNECTED', `Network adapter(s) ${list.map((a) => a.name).join(', ')} connected to '${slot.sw.settings.name}'`, e);
      return next.changed.map((a) => this.adapterView(e, a));
    });
  }

  async disconnect(vm: string, name: string | undefined): Promise<Record<string, unknown>[]> {
    const e = this.host.resolve(vm);
    return e.lock.run(async () => {
      assertLegal('ConnectNetworkAdapter', e.state, e.config.name);
      const list = this.pick(e, name);
      const next = this.withAdapters(e, list, () => ({ switchName: null }));
      for (const a of list) {
        if (!a.switchName) continue;
        await e.runtime?.replugNic(VmNetwork.deviceId(a), e.config.networkAdapters.indexOf(a) + 1, null);
        await this.unport(a);
      }
      await this.commit(e, next.config);
      this.host.event('Information', 'VM_NIC_DISCONNECTED', `Network adapter(s) ${list.map((a) => a.name).join(', ')} disconnected`, e);
      return next.changed.map((a) => this.adapterView(e, a));
    });
  }

  /** Applies a policy change to the adapters (and their live ports); validated before anything changes. */
  private async patch(vm: string, name: string | undefined, what: string, fn: (a: NetworkAdapter) => PortPolicyPatch): Promise<VmEntry> {
    const e = this.host.resolve(vm);
    await e.lock.run(async () => {
      const list = this.pick(e, name);
      const next = this.withAdapters(e, list, (a) => ({ policy: stripMac(mergePolicy(a.policy, fn(a))) }));
      // vm.json is the source of truth: saved first, so a failed write changes nothing, live ports included.
      await this.commit(e, next.config);
      await this.refreshPorts(next.changed);
      this.host.event('Information', 'VM_NIC_CONFIGURED', `Network adapter ${what} changed`, e);
    });
    return e;
  }

  async setAdapter(vm: string, name: string | undefined, p: SetAdapterParams): Promise<Record<string, unknown>[]> {
    const e = await this.patch(vm, name, Object.keys(p).join(', '), () => settingsPatch(p));
    return this.listAdapters(e.config.id, name);
  }

  async setVlan(vm: string, name: string | undefined, p: SetVlanParams): Promise<Record<string, unknown>[]> {
    const vlan = vlanFrom(p);
    const e = await this.patch(vm, name, 'VLAN', () => ({ vlan }));
    return this.vlans(e.config.id, name);
  }

  private vlanView(e: VmEntry, a: NetworkAdapter): Record<string, unknown> {
    return { VMName: e.config.name, ParentAdapter: a.name, ...vlanFields(a.policy.vlan) };
  }

  vlans(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return this.pick(e, name).map((a) => this.vlanView(e, a));
  }

  // ---- ACLs ----------------------------------------------------------------------------

  extendedAcls(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return this.pick(e, name).flatMap((a) => extendedAclViews(a.policy, { VMName: e.config.name, ParentAdapter: a.name }));
  }

  async addExtendedAcl(vm: string, name: string | undefined, p: ExtendedAclParams): Promise<Record<string, unknown>[]> {
    const rule = extendedAclRule(p);
    const e = await this.patch(vm, name, 'extended ACLs', (a) => ({ extendedAcls: [...a.policy.extendedAcls, rule] }));
    return this.extendedAcls(e.config.id, name);
  }

  async removeExtendedAcl(vm: string, name: string | undefined, direction: 'Inbound' | 'Outbound', weight: number): Promise<void> {
    const e = this.host.resolve(vm);
    const named = isExtendedAcl(direction, weight);
    if (!this.pick(e, name).some((a) => a.policy.extendedAcls.some(named))) {
      throw new VmhostError('NOT_FOUND', `No ${direction} extended ACL with weight ${weight} on VM '${e.config.name}'`, { vm: e.config.name });
    }
    await this.patch(vm, name, 'extended ACLs', (a) => ({ extendedAcls: a.policy.extendedAcls.filter((x) => !named(x)) }));
  }

  /** Live counters for metering and /metrics: each adapter's port (null when it has none) and Meter ACL counters. */
  adapterCounters(e: VmEntry): { adapter: NetworkAdapter; port: PortCounters | null; meters: MeterCounters[] }[] {
    return e.config.networkAdapters.map((a) => {
      const s = a.switchName ? this.switches.get(a.switchName.toLowerCase()) : undefined;
      const has = s !== undefined && s.sw.listPorts().some((p) => p.id === a.id);
      return { adapter: a, port: has ? s.sw.portStats(a.id) : null, meters: has ? s.sw.meterCounters(a.id) : [] };
    });
  }

  /** Every switch's counters, for /metrics. */
  switchCounters(): { name: string; stats: SwitchStats }[] {
    return [...this.switches.values()].map((s) => ({ name: s.sw.settings.name, stats: s.sw.stats() }));
  }

  acls(vm: string, name?: string): Record<string, unknown>[] {
    const e = this.host.resolve(vm);
    return this.pick(e, name).flatMap((a) => {
      const s = a.switchName ? this.switches.get(a.switchName.toLowerCase()) : undefined;
      const meters = s && s.sw.listPorts().some((p) => p.id === a.id) ? s.sw.meterCounters(a.id) : [];
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
    if (!this.pick(e, name).some((a) => a.policy.acls.some(same))) throw new VmhostError('NOT_FOUND', `No such ACL on VM '${e.config.name}'`, { vm: e.config.name });
    await this.patch(vm, name, 'ACLs', (a) => ({ acls: a.policy.acls.filter((x) => !same(x)) }));
  }
}

function stripMac(p: PortPolicy): PortPolicy {
  const { mac: _mac, ...rest } = p;
  return rest;
}

/** `00-15-5D-01-02-03`, `00155D010203` or colon form → `00:15:5D:01:02:03`; unicast only. */
export function normalizeMac(text: string): string {
  const hex = parseMacText(text, 'StaticMacAddress');
  if ((parseInt(hex.slice(0, 2), 16) & 1) !== 0) throw invalid('StaticMacAddress', `${text} is a multicast address`);
  if (hex === '000000000000') throw invalid('StaticMacAddress', 'the all-zero address is not allowed');
  return colonMac(hex);
}
