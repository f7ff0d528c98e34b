// Resource metering in the daemon (Enable-/Disable-/Reset-VMResourceMetering, Measure-VM):
// every second the sampler reads each metered VM's sources — its virtual processors' CPU time
// (/proc of QEMU's vCPU threads), memory assigned, its disk files' allocation, its block
// exports' counters, its switch ports' byte counters and Meter ACL counters — and folds them
// into the VM's totals (metering-state.ts, pure). A VM is metered while
// <vm dir>/metering.json exists; the file is rewritten atomically every save interval
// (Set-VMHost -ResourceMeteringSaveInterval, 10 s by default: metering-settings.ts), when the
// VM stops and when the daemon stops, so a daemon killed with SIGKILL loses at most one
// interval of counts (and whatever happens while no daemon runs: nothing is metered then).
// The graphs' history (metering-history.ts) is written to DIR/metering-history.json at the same
// interval (when a step has closed since) and at stop, and read back at start: at most 360
// points per VM and for the host, so the file stays bounded.
// `live()` gives the same sources, unsummed, for /metrics.
import { randomBytes } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { DiskCounters } from '../storage/index.ts';
import type { PortCounters } from '../switch/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { checkSaveInterval, loadMeteringSettings, parseTimeSpan, meteringSettingsView, saveMeteringSettings, type MeteringSettings } from './metering-settings.ts';
import { MeteringHistory } from './metering-history.ts';
import { applySample, baselineOf, meteringReport, newMeteringState, resetMeteringState, type MeteringReport, type MeteringState, type Reading, type Sample } from './metering-state.ts';
import type { HardDrive } from './drives.ts';
import type { VmEntry } from './vm-entry.ts';
import { SerialLock } from './vm-lock.ts';
import type { VmNetwork } from './vm-network.ts';
import type { VmRuntime } from './vm-runtime.ts';
import { VmStorage } from './vm-storage.ts';

export const METERING_SAMPLE_MS = 1000;
/** Linux's USER_HZ: /proc stat times are in these ticks. */
const CLOCK_TICKS = 100;

export interface MeteringHost {
  resolve(nameOrId: string): VmEntry;
  entries(): Iterable<VmEntry>;
  storage: VmStorage;
  network: VmNetwork;
  computerName: string;
  dataDir: string;
  /** CPU percentages of the graphs are of the host's processors, as Get-VM's CPUUsage is. */
  logicalProcessors: number;
}

/** One VM's sources as they stand, for /metrics. */
export interface VmLiveCounters {
  vm: VmEntry;
  running: boolean;
  /** CPU time of the current QEMU's virtual processors (0 while off). */
  cpuSeconds: number;
  memoryAssignedBytes: number;
  disks: { drive: HardDrive; counters: DiskCounters }[];
  nics: { name: string; port: PortCounters }[];
}

/** A VM's sources at one sample, by device: what the VM's, its pools' and its graphs' counts are made of. */
export interface VmSources {
  running: boolean;
  /** Memory assigned while it runs (bytes). */
  memoryBytes: number;
  /** Memory the guest asks for, when it reports it (dynamic memory); null otherwise. */
  memoryDemandBytes: number | null;
  cpu: Reading[];
  /** Per hard drive (its id): the block export's counters and the file's allocation on the host. */
  drives: { id: string; readings: Reading[]; allocatedBytes: number }[];
  /** Per network adapter (its id): the switch port's and its Meter ACLs' byte counters. */
  adapters: { id: string; readings: Reading[] }[];
}

export type SampleConsumer = (seconds: number, sources: ReadonlyMap<string, VmSources>) => Promise<void> | void;

/** The whole VM's sample (Measure-VM). */
function vmSample(seconds: number, s: VmSources): Sample {
  return {
    seconds, running: s.running, memoryBytes: s.memoryBytes,
    diskAllocatedBytes: s.drives.reduce((a, d) => a + d.allocatedBytes, 0),
    readings: [...s.cpu, ...s.drives.flatMap((d) => d.readings), ...s.adapters.flatMap((n) => n.readings)],
  };
}

interface Metered { totals: MeteringState; savedAt: number; dirty: boolean; wasRunning: boolean }

export class VmMetering {
  private readonly metered = new Map<string, Metered>();
  /** Enable, Disable and every write of a metering.json, one at a time: a late write never brings back a disabled VM's file. */
  private readonly files = new SerialLock();
  /** Block exports start from zero in each daemon process: their keys carry this, so a restart's new counters are new sources. */
  private readonly epoch = randomBytes(4).toString('hex');
  /** Runtimes whose vCPU time before our first look is already counted (re-attached) or was sampled already. */
  private readonly seenRuntimes = new WeakSet<VmRuntime>();
  private readonly consumers: SampleConsumer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private lastTick = performance.now();
  /** The host processor's clock, which AverageProcessorUsage is expressed in (read at start). */
  hostMhz = 0;
  private settings: MeteringSettings = { saveIntervalSeconds: 10 };

  /** The graphs' last hour, fed by every sample. */
  readonly history: MeteringHistory;
  /** history.closedSteps at its last save. */
  private historySaved = 0;
  private historySavedAt = 0;

  constructor(private readonly host: MeteringHost) {
    this.history = new MeteringHistory(host.logicalProcessors);
    this.onSample(async (seconds, sources) => {
      this.history.record(Date.now(), new Map([...sources].map(([id, s]) => [id, { sample: vmSample(seconds, s), memoryDemandBytes: s.memoryDemandBytes }])));
      if (Date.now() - this.historySavedAt >= this.saveIntervalMs()) await this.saveHistory().catch(() => undefined); // tried again at the next sample
    });
  }

  private get historyFile(): string {
    return join(this.host.dataDir, 'metering-history.json');
  }

  private async saveHistory(): Promise<void> {
    const closed = this.history.closedSteps;
    if (closed === this.historySaved) return;
    await writeFileAtomic(this.historyFile, JSON.stringify(this.history.snapshot()) + '\n');
    this.historySaved = closed;
    this.historySavedAt = Date.now();
  }

  private static file(e: VmEntry): string {
    return join(e.paths.dir, 'metering.json');
  }

  /** After the VMs are loaded (and running ones re-attached): read each metered VM's file and start sampling. */
  async start(): Promise<void> {
    this.hostMhz = await processorMhz();
    this.settings = await loadMeteringSettings(this.host.dataDir);
    this.history.restore(await readJson<unknown>(this.historyFile).catch(() => undefined));
    this.historySavedAt = Date.now();
    for (const e of this.host.entries()) {
      if (e.runtime) this.seenRuntimes.add(e.runtime);
      await this.load(e);
    }
    this.lastTick = performance.now();
    // A tick still running (a slow QMP answer) makes the next one wait: its time goes to the next sample.
    this.timer = setInterval(() => {
      this.sampling ??= this.tick().catch(() => undefined).finally(() => { this.sampling = undefined; });
    }, METERING_SAMPLE_MS);
    this.timer.unref();
  }

  /**
   * A VM's metering.json, if it has one, counted on from. The sources' positions are dropped:
   * what ran while no daemon metered (and since the last save) is not counted, as the duration
   * does not count that time either; a moved-in VM's QEMU, exports and ports are new sources here.
   */
  private async load(e: VmEntry): Promise<void> {
    const state = await readJson<MeteringState>(VmMetering.file(e)).catch(() => undefined);
    if (state?.version === 1) this.metered.set(e.config.id, { totals: { ...state, last: {} }, savedAt: Date.now(), dirty: false, wasRunning: e.runtime !== undefined });
  }

  /** What Move-VM carries to the destination: the totals as of the last sample (the positions are this host's sources). */
  carried(e: VmEntry): MeteringState | undefined {
    const m = this.metered.get(e.config.id);
    return m ? { ...m.totals, last: {} } : undefined;
  }

  /** The destination of a move, before its commit point: the carried totals go into the staged VM's folder, so a crash after the commit keeps them. */
  static writeCarried(dir: string, state: MeteringState): Promise<void> {
    return writeFileAtomic(join(dir, 'metering.json'), JSON.stringify({ ...state, last: {} }) + '\n');
  }

  /** After a move's commit point: the VM's carried metering.json is counted on from here. */
  adoptMovedIn(e: VmEntry): Promise<void> {
    return this.files.run(() => this.load(e));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sampling;
    for (const [id, m] of this.metered) if (m.dirty) await this.save(id, m);
    await this.saveHistory().catch(() => undefined);
  }

  /** Get-VMHost's ResourceMeteringSaveInterval. */
  hostSettings(): ReturnType<typeof meteringSettingsView> {
    return meteringSettingsView(this.settings);
  }

  /** Set-VMHost -ResourceMeteringSaveInterval (a TimeSpan's text): saved first, then the next save of each VM's counts follows it. */
  async setSaveInterval(text: string): Promise<void> {
    const next = { saveIntervalSeconds: checkSaveInterval(parseTimeSpan(text, 'ResourceMeteringSaveInterval')) };
    await saveMeteringSettings(this.host.dataDir, next);
    this.settings = next;
  }

  isEnabled(nameOrId: string): boolean {
    return this.metered.has(this.host.resolve(nameOrId).config.id);
  }

  /** Enable-VMResourceMetering: counting starts now (already enabled: nothing changes, as in Hyper-V). */
  async enable(nameOrId: string): Promise<void> {
    const e = this.host.resolve(nameOrId);
    await this.files.run(async () => {
      if (this.metered.has(e.config.id)) return;
      const state = baselineOf(newMeteringState(new Date().toISOString()), vmSample(0, await this.sources(e)).readings);
      const m: Metered = { totals: state, savedAt: 0, dirty: true, wasRunning: e.runtime !== undefined };
      this.metered.set(e.config.id, m);
      await this.write(e, m).catch((err: unknown) => { this.metered.delete(e.config.id); throw err; });
    });
  }

  /** Disable-VMResourceMetering: counting stops and what was counted is dropped. */
  async disable(nameOrId: string): Promise<void> {
    const e = this.host.resolve(nameOrId);
    await this.files.run(async () => {
      this.metered.delete(e.config.id);
      await rm(VmMetering.file(e), { force: true });
    });
  }

  async reset(nameOrId: string): Promise<void> {
    const e = this.host.resolve(nameOrId);
    const m = this.mustBeMetered(e);
    m.totals = resetMeteringState(m.totals, new Date().toISOString());
    await this.save(e.config.id, m);
  }

  measure(nameOrId: string): MeteringReport & { VMName: string; VMId: string; ComputerName: string; MeteringStartTime: string } {
    const e = this.host.resolve(nameOrId);
    const m = this.mustBeMetered(e);
    return { VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName, MeteringStartTime: m.totals.resetAt, ...meteringReport(m.totals, this.hostMhz) };
  }

  private mustBeMetered(e: VmEntry): Metered {
    const m = this.metered.get(e.config.id);
    if (!m) {
      throw new VmhostError('METERING_NOT_ENABLED', `Unable to retrieve resource metering data for virtual machine '${e.config.name}': resource metering is not enabled (Enable-VMResourceMetering)`, { vm: e.config.name });
    }
    return m;
  }

  private async tick(): Promise<void> {
    const now = performance.now();
    const seconds = (now - this.lastTick) / 1000;
    this.lastTick = now;
    // Every VM's sources, read once: the VMs' and the pools' metering and the graphs take what they need from the same reading.
    const sources = new Map<string, VmSources>();
    for (const e of this.host.entries()) sources.set(e.config.id, await this.sources(e));
    for (const [id, m] of this.metered) {
      const src = sources.get(id);
      if (!src) { this.metered.delete(id); continue; } // Remove-VM took its folder
      // Disabled (or disabled and enabled again) while this sample was read: it belongs to nobody.
      if (this.metered.get(id) !== m) continue;
      m.totals = applySample(m.totals, vmSample(seconds, src));
      m.dirty = true;
      const stopped = m.wasRunning && !src.running;
      m.wasRunning = src.running;
      if (stopped || Date.now() - m.savedAt >= this.saveIntervalMs()) {
        await this.save(id, m).catch(() => undefined); // tried again at the next tick
      }
    }
    for (const consumer of this.consumers) await consumer(seconds, sources);
  }

  /** The save interval in ms (Set-VMHost -ResourceMeteringSaveInterval): the pools' counts follow it too. */
  saveIntervalMs(): number {
    return this.settings.saveIntervalSeconds * 1000;
  }

  /** Called after every sample with each VM's sources (the resource pools, the graphs' history). */
  onSample(consumer: SampleConsumer): void {
    this.consumers.push(consumer);
  }

  private save(id: string, m: Metered): Promise<void> {
    return this.files.run(async () => {
      const e = [...this.host.entries()].find((x) => x.config.id === id);
      if (e && this.metered.get(id) === m) await this.write(e, m);
    });
  }

  private async write(e: VmEntry, m: Metered): Promise<void> {
    await writeFileAtomic(VmMetering.file(e), JSON.stringify(m.totals) + '\n');
    m.savedAt = Date.now();
    m.dirty = false;
  }

  /** The cumulative counters metering takes deltas of, by the device they belong to. */
  private async sources(e: VmEntry): Promise<VmSources> {
    const rt = e.runtime;
    const cpu: Reading[] = [];
    if (rt) {
      const first = this.seenRuntimes.has(rt) ? 'baseline' : 'count';
      this.seenRuntimes.add(rt);
      for (const t of await vcpuTimes(rt)) cpu.push({ key: `cpu:${rt.pid}/${t.tid}`, counter: 'cpuSeconds', value: t.seconds, onFirstSight: first });
    }
    const drives: VmSources['drives'] = [];
    for (const d of e.config.hardDrives) {
      const allocatedBytes = await stat(d.path).then((st) => st.blocks * 512, () => 0);
      const c = this.host.storage.counters(d);
      const k = `disk:${VmStorage.exportName(d)}@${this.epoch}`;
      drives.push({
        id: d.id, allocatedBytes, readings: c ? [
          { key: `${k}:read`, counter: 'diskReadBytes', value: c.bytesRead, onFirstSight: 'count' },
          { key: `${k}:written`, counter: 'diskWrittenBytes', value: c.bytesWritten, onFirstSight: 'count' },
          { key: `${k}:nios`, counter: 'normalizedIos', value: c.normalizedIos, onFirstSight: 'count' },
          { key: `${k}:latency`, counter: 'latencyMsSum', value: c.latencyMsSum, onFirstSight: 'count' },
          { key: `${k}:ops`, counter: 'latencyCount', value: c.latencyCount, onFirstSight: 'count' },
        ] : [],
      });
    }
    // The switch restores port and Meter counters after a restart: a first sight is a baseline.
    const adapters = this.host.network.adapterCounters(e).map((n) => {
      const k = `net:${n.adapter.id}`;
      const readings: Reading[] = [];
      if (n.port) {
        readings.push(
          { key: `${k}:in`, counter: 'networkInboundBytes', value: n.port.txBytes, onFirstSight: 'baseline' },
          { key: `${k}:out`, counter: 'networkOutboundBytes', value: n.port.rxBytes, onFirstSight: 'baseline' },
        );
      }
      for (const m of n.meters) {
        readings.push(
          { key: `${k}:${m.remoteAddress}:in`, counter: `rangeInboundBytes:${m.remoteAddress}`, value: m.inboundBytes, onFirstSight: 'baseline' },
          { key: `${k}:${m.remoteAddress}:out`, counter: `rangeOutboundBytes:${m.remoteAddress}`, value: m.outboundBytes, onFirstSight: 'baseline' },
        );
      }
      return { id: n.adapter.id, readings };
    });
    // Memory demand (Get-VM's MemoryDemand) comes from dynamic memory's pressure reports; static memory has none to draw.
    return { running: rt !== undefined, memoryBytes: memoryAssigned(e), memoryDemandBytes: rt && e.config.dynamicMemory.enabled ? e.memoryState?.memory.demandBytes ?? null : null, cpu, drives, adapters };
  }

  /** Every VM's sources now, metered or not (/metrics). */
  async live(): Promise<VmLiveCounters[]> {
    const out: VmLiveCounters[] = [];
    for (const e of this.host.entries()) {
      const rt = e.runtime;
      const cpuSeconds = rt ? (await vcpuTimes(rt)).reduce((a, t) => a + t.seconds, 0) : 0;
      const disks = e.config.hardDrives.flatMap((drive) => {
        const counters = this.host.storage.counters(drive);
        return counters ? [{ drive, counters }] : [];
      });
      const nics = this.host.network.adapterCounters(e).flatMap((n) => (n.port ? [{ name: n.adapter.name, port: n.port }] : []));
      out.push({ vm: e, running: rt !== undefined, cpuSeconds, memoryAssignedBytes: rt ? memoryAssigned(e) : 0, disks, nics });
    }
    return out;
  }
}

/** Memory a running VM holds, as Get-VM's MemoryAssigned: the dynamic memory driver's last reading, else its startup memory. */
function memoryAssigned(e: VmEntry): number {
  return e.memoryState?.memory.assignedBytes ?? e.config.memoryStartupBytes;
}

/**
 * The processor's MHz: /proc/cpuinfo's "cpu MHz" (Node's cpus() says 0 on virtual machines
 * without cpufreq, such as this one), else Node's, else 1000 so the average stays a number.
 */
async function processorMhz(): Promise<number> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1] ?? cpus()[0]?.speed ?? 0);
  return Math.round(mhz) || 1000;
}

/** CPU time (user + system) of each virtual processor thread; a thread that is gone is left out. */
async function vcpuTimes(rt: VmRuntime): Promise<{ tid: number; seconds: number }[]> {
  const tids = await rt.vcpuThreadIds().catch(() => []);
  const out: { tid: number; seconds: number }[] = [];
  for (const tid of tids) {
    const text = await readFile(`/proc/${rt.pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (!text) continue;
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    out.push({ tid, seconds: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS });
  }
  return out;
}
