// The host's virtual switches as stored and looked up: one slot per switch, persisted as
// <data-dir>/switches/<name>.json (its toConfig(), and its counters: switch-counters.ts) and
// recreated at daemon start before VMs are re-attached, its port sockets at the same short
// paths. An adapter's port (id = adapter id) exists while the adapter is connected, whether the
// VM runs or not; the adapter's policy in vm.json is the source of truth, the switch file follows.
// `portOf` is the one way to find an adapter's live port.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { VirtualSwitch, type PortPolicy, type SwitchConfig, type SwitchEvent, type SwitchStats } from '../switch/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { COUNTER_SAVE_INTERVAL_MS, countersOf, restoreCounters, type SavedCounters } from './switch-counters.ts';
import type { EventLevel } from './events.ts';
import type { HostNicConfig } from './host-nic.ts';
import type { NetAdapters } from './net-adapters.ts';
import { socketDirFor } from './runtime-dir.ts';
import { persistedConfig, restoredConfig } from './switch-binding.ts';
import type { NetworkAdapter } from './vm-config.ts';

/** `netAdapterName`: the host adapter an External switch is bound to (by name; see switch-binding.ts). */
interface SwitchFile { id: string; notes: string; netAdapterName?: string | null; config: SwitchConfig; hostNics?: HostNicConfig[]; counters?: SavedCounters }
export interface SwitchSlot {
  id: string; notes: string; netAdapterName: string | null; sw: VirtualSwitch; hostNics: HostNicConfig[];
  /** Writes of the switch file, one after another, so a periodic save never lands after Remove-VMSwitch deleted the file. */
  saving?: Promise<void>;
  /** The file's last written text: the periodic save skips unchanged switches. */
  written?: string;
  removed?: boolean;
}

export interface RegistryEnv {
  event(level: EventLevel, code: string, message: string): void;
  onSwitchEvent(ev: SwitchEvent): void;
  /** QEMU's group when it runs as its own user (it re-plugs NICs after dropping root). */
  readonly qemuGroup?: number;
}

export class SwitchRegistry {
  private readonly slots = new Map<string, SwitchSlot>();
  readonly socketDir: string;
  readonly switchDir: string;
  private counterTimer?: NodeJS.Timeout;

  constructor(private readonly env: RegistryEnv, dataDir: string, private readonly adapters: NetAdapters) {
    this.switchDir = join(dataDir, 'switches');
    this.socketDir = socketDirFor(dataDir, 'sw', env.qemuGroup);
  }

  get switchOptions(): { onEvent: (ev: SwitchEvent) => void; socketGroup: number | undefined } {
    return { onEvent: (ev) => this.env.onSwitchEvent(ev), socketGroup: this.env.qemuGroup };
  }

  /** Daemon start: every persisted switch listens again at its old socket paths. */
  async load(): Promise<void> {
    await mkdir(this.switchDir, { recursive: true });
    await mkdir(this.socketDir, { recursive: true });
    for (const f of await readdir(this.switchDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const file = await readJson<SwitchFile>(join(this.switchDir, f));
        const sw = await this.restoreSwitch(file);
        restoreCounters(sw, file.counters);
        this.add({ id: file.id, notes: file.notes, netAdapterName: file.netAdapterName ?? null, sw, hostNics: file.hostNics ?? [] });
      } catch (e) {
        this.env.event('Error', 'SWITCH_CONFIG_UNREADABLE', `Switch file ${f} skipped: ${(e as Error).message}`);
      }
    }
    this.counterTimer = setInterval(() => void this.saveAll(), COUNTER_SAVE_INTERVAL_MS);
    this.counterTimer.unref();
  }

  /** An adapter-bound switch opens its adapter as declared now; a missing adapter or a failed bind leaves it degraded (no uplink), never unloaded. */
  private async restoreSwitch(file: SwitchFile): Promise<VirtualSwitch> {
    const opts = this.switchOptions;
    if (!file.netAdapterName) return VirtualSwitch.fromConfig(file.config, opts);
    const name = file.config.settings.name;
    const r = restoredConfig(this.adapters, file.config, file.netAdapterName);
    if (r.config) {
      try {
        return await VirtualSwitch.fromConfig(r.config, opts);
      } catch (e) {
        if (!(e instanceof VmhostError) || e.code !== 'SWITCH_UPLINK') throw e;
        this.env.event('Error', 'SWITCH_NET_ADAPTER_FAILED', `External switch '${name}' is degraded: network adapter '${file.netAdapterName}' (${r.adapter?.description}) could not be opened: ${e.message}`);
      }
    } else {
      const known = this.adapters.list().map((a) => a.name).join(', ') || 'none';
      this.env.event('Warning', 'SWITCH_NET_ADAPTER_MISSING',
        `External switch '${name}' is degraded: network adapter '${file.netAdapterName}' is not declared on this host (adapters: ${known}); it forwards only among its own ports until Set-VMSwitch -NetAdapterName binds it`);
    }
    return VirtualSwitch.fromConfig(r.degraded, opts);
  }

  async saveAll(): Promise<void> {
    for (const s of this.slots.values()) {
      await this.save(s).catch((e: unknown) => this.env.event('Error', 'SWITCH_SAVE_FAILED', `Switch '${s.sw.settings.name}' not saved: ${(e as Error).message}`));
    }
  }

  /** Graceful stop: the counters are saved first, so a restart continues them. */
  async close(): Promise<void> {
    clearInterval(this.counterTimer);
    await this.saveAll();
    for (const s of this.slots.values()) await s.sw.close();
  }

  all(): IterableIterator<SwitchSlot> {
    return this.slots.values();
  }

  /** By name, sorted: Get-VMSwitch's order. */
  sorted(): SwitchSlot[] {
    return [...this.slots.values()].sort((a, b) => a.sw.settings.name.localeCompare(b.sw.settings.name));
  }

  has(name: string): boolean {
    return this.slots.has(name.toLowerCase());
  }

  find(name: string | null): SwitchSlot | undefined {
    return name === null ? undefined : this.slots.get(name.toLowerCase());
  }

  slot(name: string): SwitchSlot {
    const s = this.find(name);
    if (!s) throw new VmhostError('NOT_FOUND', `Hyper-V was unable to find a virtual switch with name '${name}'`, { switch: name });
    return s;
  }

  add(s: SwitchSlot): void {
    this.slots.set(s.sw.settings.name.toLowerCase(), s);
  }

  delete(s: SwitchSlot): void {
    this.slots.delete(s.sw.settings.name.toLowerCase());
  }

  /** The switch holding the adapter's live port, if it is connected and its port exists. */
  portOf(a: NetworkAdapter): SwitchSlot | undefined {
    const s = this.find(a.switchName);
    return s && s.sw.listPorts().some((p) => p.id === a.id) ? s : undefined;
  }

  /** The switch bound to a host network adapter (a degraded one too: the binding is by name). */
  boundTo(adapterName: string): string | undefined {
    return [...this.slots.values()].find((s) => s.netAdapterName?.toLowerCase() === adapterName.toLowerCase())?.sw.settings.name;
  }

  save(s: SwitchSlot): Promise<void> {
    const write = async (): Promise<void> => {
      if (s.removed) return;
      const file: SwitchFile = {
        id: s.id, notes: s.notes, netAdapterName: s.netAdapterName, config: persistedConfig(s.sw.toConfig(), s.netAdapterName), hostNics: s.hostNics, counters: countersOf(s.sw),
      };
      const text = JSON.stringify(file, null, 2) + '\n';
      if (text === s.written) return;
      await writeFileAtomic(this.fileOf(s), text);
      s.written = text;
    };
    const next = (s.saving ?? Promise.resolve()).catch(() => undefined).then(write);
    s.saving = next;
    return next;
  }

  fileOf(s: SwitchSlot): string {
    return join(this.switchDir, `${s.sw.settings.name}.json`);
  }

  socketPath(a: { readonly id: string }): string {
    return join(this.socketDir, `${a.id.slice(0, 13)}.sock`);
  }

  async addPort(sw: VirtualSwitch, a: NetworkAdapter): Promise<string> {
    const { socketPath } = await sw.addPort({ id: a.id, socketPath: this.socketPath(a), policy: portPolicy(a) });
    return socketPath;
  }

  /** The adapter's port goes (Disconnect, Remove-VMNetworkAdapter, Remove-VM). */
  async removePort(a: NetworkAdapter): Promise<void> {
    const s = this.portOf(a);
    if (s) { await s.sw.removePort(a.id); await this.save(s); }
  }

  /** The live ports of changed adapters take their policy (and MAC) and are saved with their switch. */
  async refreshPorts(changed: readonly NetworkAdapter[]): Promise<void> {
    for (const a of changed) {
      const s = this.portOf(a);
      if (s) { s.sw.replacePortPolicy(a.id, portPolicy(a)); await this.save(s); }
    }
  }

  /** Every switch's counters, for /metrics. */
  counters(): { name: string; stats: SwitchStats }[] {
    return [...this.slots.values()].map((s) => ({ name: s.sw.settings.name, stats: s.sw.stats() }));
  }
}

/** The port's policy: the adapter's, with its MAC and virtual subnet (kept apart in vm.json: the adapter owns them). */
export function portPolicy(a: NetworkAdapter): PortPolicy {
  return { ...a.policy, mac: a.mac.toLowerCase(), ...(a.virtualSubnetId !== undefined ? { virtualSubnetId: a.virtualSubnetId } : {}) };
}
