// The switch cmdlets: New-/Get-/Set-/Remove-VMSwitch, Get-/Enable-/Disable-VMSwitchExtension and
// Get-NetAdapter (what -NetAdapterName may name). The switches themselves are kept by
// switch-registry.ts; an Internal switch also has host vNICs (host-nic.ts), kept in its switch file.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { VmhostError } from '../common/index.ts';
import { VirtualSwitch, registeredExtensions } from '../switch/index.ts';
import type { HostNics } from './host-nic.ts';
import { invalid } from './invalid-argument.ts';
import type { Lbfo } from './lbfo.ts';
import type { NetAdapters } from './net-adapters.ts';
import { commitConfig, nicDeviceId, withAdapters, type NetHost } from './net-host.ts';
import { TEAM_DESCRIPTION } from './net-teams.ts';
import { bindingView, changedBinding, netAdapterView, newBinding, type BindingParams } from './switch-binding.ts';
import type { SwitchRegistry, SwitchSlot } from './switch-registry.ts';
import { checkName } from './vm-config.ts';
import { SerialLock } from './vm-lock.ts';

export interface NewSwitchParams extends BindingParams { Name: string; MinimumBandwidthMode?: 'Absolute' | 'Weight'; Notes?: string }
export interface SetSwitchParams extends BindingParams { Notes?: string; DefaultFlowMinimumBandwidthWeight?: number; DefaultFlowMinimumBandwidthAbsolute?: number }

export interface SwitchesEnv {
  host: NetHost;
  registry: SwitchRegistry;
  hostNics: HostNics;
  lbfo: Lbfo;
  /** The declared adapters only (Get-NetAdapter lists them, then the teams). */
  declared: NetAdapters;
  /** The declared adapters and the NIC teams: what -NetAdapterName may name. */
  adapters: NetAdapters;
  /** A switch was created, re-bound or (`removed`) removed: network virtualization follows its type (hnv-datapath.ts), the gateway its ports (hnv-gateways.ts). */
  changed(s: SwitchSlot, removed?: boolean): void;
}

export class VmSwitches {
  private readonly names = new SerialLock();

  constructor(private readonly env: SwitchesEnv) {}

  private get registry(): SwitchRegistry { return this.env.registry; }

  private view(s: SwitchSlot): Record<string, unknown> {
    const st = s.sw.settings;
    const ports = s.sw.listPorts().filter((p) => p.kind === 'vm');
    return {
      Name: st.name, Id: s.id, SwitchType: st.type, Notes: s.notes, ComputerName: this.env.host.computerName,
      ...bindingView(this.env.adapters, st.type, s.netAdapterName, st.uplink !== undefined, s.hostNics.length),
      BandwidthReservationMode: st.minimumBandwidthMode, MinimumBandwidthMode: st.minimumBandwidthMode,
      DefaultFlowMinimumBandwidthWeight: st.defaultFlowMinimumBandwidthWeight, DefaultFlowMinimumBandwidthAbsolute: st.defaultFlowMinimumBandwidthAbsolute,
      Ports: ports.length, ConnectedPorts: ports.filter((p) => p.connected).length,
      Extensions: s.sw.extensions().filter((x) => x.enabled).map((x) => x.name),
      Statistics: s.sw.stats(),
    };
  }

  list(): Record<string, unknown>[] {
    return this.registry.sorted().map((s) => this.view(s));
  }

  get(name: string): Record<string, unknown> {
    return this.view(this.registry.slot(name));
  }

  /** New-VMSwitch. Under the names lock: of two requests for one name, the second sees the first's switch. */
  create(p: NewSwitchParams): Promise<Record<string, unknown>> {
    return this.names.run(() => this.createNamed(p));
  }

  private async createNamed(p: NewSwitchParams): Promise<Record<string, unknown>> {
    checkName(p.Name);
    if (this.registry.has(p.Name)) throw new VmhostError('ALREADY_EXISTS', `A virtual switch named '${p.Name}' already exists`, { switch: p.Name });
    const { type, adapter } = newBinding(this.env.adapters, p, (n) => this.registry.boundTo(n));
    if (adapter) this.env.lbfo.checkBindable(adapter.name);
    const sw = await VirtualSwitch.create(
      { name: p.Name, type, minimumBandwidthMode: p.MinimumBandwidthMode, socketDir: this.registry.socketDir, uplink: adapter?.uplink },
      this.registry.switchOptions,
    );
    const slot: SwitchSlot = { id: randomUUID(), notes: p.Notes ?? '', netAdapterName: adapter?.name ?? null, sw, hostNics: [] };
    // Like Hyper-V, an Internal switch comes with the host's vNIC, named after the switch; an
    // External one has it with -AllowManagementOS $true. (Hyper-V's default there is $true; here
    // it is $false: this host's management network is its real NIC, not the tunnel.)
    if (type === 'Internal' || (type === 'External' && p.AllowManagementOS === true)) {
      await this.env.hostNics.create(slot, p.Name).catch(async (e: unknown) => { await sw.close(); throw e; });
    }
    this.registry.add(slot);
    this.env.changed(slot);
    await this.registry.save(slot);
    this.env.host.event('Information', 'SWITCH_CREATED', `Virtual switch '${p.Name}' created (${type}${adapter ? ` on network adapter '${adapter.name}', ${adapter.description}` : ''})`);
    return this.view(slot);
  }

  async set(name: string, p: SetSwitchParams): Promise<Record<string, unknown>> {
    const s = this.registry.slot(name);
    const st = s.sw.settings;
    const change = changedBinding(this.env.adapters, { switchName: st.name, type: st.type, adapterName: s.netAdapterName, linked: st.uplink !== undefined }, p, (n) => this.registry.boundTo(n));
    if (change?.adapter) this.env.lbfo.checkBindable(change.adapter.name);
    // Checked before anything changes: a refused call leaves the switch as it was.
    if (p.AllowManagementOS === true && (change?.type ?? st.type) === 'Private') {
      throw invalid('AllowManagementOS', `a Private switch has no management-OS network adapters ('${st.name}' would be Private)`);
    }
    if (change) {
      await s.sw.setUplink(change.type, change.adapter?.uplink);
      s.netAdapterName = change.adapter?.name ?? null;
      this.env.changed(s);
      this.env.host.event('Information', 'SWITCH_BINDING_CHANGED', `Virtual switch '${st.name}' is now ${change.type}${change.adapter ? ` on network adapter '${change.adapter.name}', ${change.adapter.description}` : ''}`);
    }
    await this.syncManagementOs(s, p.AllowManagementOS);
    if (p.DefaultFlowMinimumBandwidthWeight !== undefined || p.DefaultFlowMinimumBandwidthAbsolute !== undefined) {
      s.sw.setSettings({ defaultFlowMinimumBandwidthWeight: p.DefaultFlowMinimumBandwidthWeight, defaultFlowMinimumBandwidthAbsolute: p.DefaultFlowMinimumBandwidthAbsolute });
    }
    if (p.Notes !== undefined) s.notes = p.Notes;
    await this.registry.save(s);
    return this.view(s);
  }

  /**
   * Set-VMSwitch: -AllowManagementOS $true gives the host a vNIC on the switch when it has none,
   * $false removes the host's vNICs; a switch that became Private loses them either way.
   */
  private async syncManagementOs(s: SwitchSlot, allow: boolean | undefined): Promise<void> {
    const type = s.sw.settings.type;
    if (allow === true && s.hostNics.length === 0) await this.env.hostNics.create(s, s.sw.settings.name);
    if ((allow === false || type === 'Private') && s.hostNics.length > 0) await this.env.hostNics.removeAll(s);
  }

  /** Get-NetAdapter: the declared adapters, then each team's adapter (as Windows lists the team NIC). */
  netAdapters(): Record<string, unknown>[] {
    const { declared, lbfo } = this.env;
    return [
      ...declared.list().map((a) => netAdapterView(a, lbfo.isDisabled(a.name) ? 'Disabled' : 'Up', this.registry.boundTo(a.name))),
      ...lbfo.listTeams().map((t) => ({
        Name: t.Name, InterfaceDescription: TEAM_DESCRIPTION, Status: t.Status === 'Down' ? 'Disconnected' : 'Up',
        LocalEndpoint: null, RemoteEndpoint: null, VMSwitchName: t.VMSwitchName,
      })),
    ];
  }

  async remove(name: string, force: boolean): Promise<void> {
    const { host } = this.env;
    const s = this.registry.slot(name);
    const users = [...host.entries()].flatMap((e) => e.config.networkAdapters.filter((a) => a.switchName?.toLowerCase() === name.toLowerCase()).map((a) => ({ e, a })));
    if (users.length > 0 && !force) {
      throw new VmhostError('INVALID_STATE', `Switch '${s.sw.settings.name}' has ${users.length} connected network adapter(s) (${[...new Set(users.map((u) => u.e.config.name))].join(', ')}); disconnect them or use -Force`, { switch: name });
    }
    for (const { e, a } of users) {
      await e.lock.run(async () => {
        const i = e.config.networkAdapters.indexOf(a);
        await e.runtime?.replugNic(nicDeviceId(a), i + 1, null).catch(() => undefined);
        await commitConfig(host, e, withAdapters(e, [a], () => ({ switchName: null })).config);
      });
    }
    await this.env.hostNics.removeAll(s);
    s.removed = true;
    await s.saving?.catch(() => undefined);
    await s.sw.close();
    this.registry.delete(s);
    await rm(this.registry.fileOf(s), { force: true });
    this.env.changed(s, true);
    host.event('Information', 'SWITCH_REMOVED', `Virtual switch '${s.sw.settings.name}' removed${users.length ? ` (${users.length} adapters disconnected)` : ''}`);
  }

  extensions(name: string): Record<string, unknown>[] {
    const s = this.registry.slot(name);
    const on = new Map(s.sw.extensions().map((x) => [x.name, x]));
    return registeredExtensions().map((r) => ({
      Name: r.name, ExtensionType: r.type, Description: r.description, Enabled: on.get(r.name)?.enabled ?? false,
      Running: on.get(r.name)?.enabled ?? false, SwitchName: s.sw.settings.name, Status: on.get(r.name)?.status ?? {},
    }));
  }

  async setExtension(name: string, extension: string, enabled: boolean): Promise<Record<string, unknown>[]> {
    const s = this.registry.slot(name);
    const reg = registeredExtensions().find((r) => r.name.toLowerCase() === extension.toLowerCase());
    if (!reg) throw new VmhostError('NOT_FOUND', `No switch extension named '${extension}' (installed: ${registeredExtensions().map((r) => r.name).join(', ')})`, { extension });
    const present = s.sw.extensions().some((x) => x.name === reg.name);
    if (enabled) {
      if (present) s.sw.enableExtension(reg.name);
      else s.sw.addExtension(reg.name, { enabled: true });
    } else if (present) s.sw.disableExtension(reg.name);
    await this.registry.save(s);
    return this.extensions(name).filter((x) => x.Name === reg.name);
  }
}
