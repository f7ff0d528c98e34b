// The web console's graphs: the last hour of each VM's and the host's CPU, memory, disk and
// network, in 10 s steps (360 points a series), kept in memory; `snapshot()` and `restore()`
// are what the daemon writes to metering-history.json and reads back, so the graphs survive a
// restart (less the step under way and what came after the last save). Pure. The metering sampler's one-second samples of each VM (the readings Measure-VM counts,
// so graphs and bills agree) fold into the current step through metering-state.ts's arithmetic
// (deltas of cumulative counters, restarted counters counted from zero); when the wall clock
// passes a step boundary the step becomes a point of rates over the time it covered.
import { applySample, newMeteringState, resetMeteringState, type MeteringState, type Sample } from './metering-state.ts';

export const HISTORY_STEP_SECONDS = 10;
export const HISTORY_POINTS = 360;

export const SERIES = [
  'CpuPercent', 'MemoryAssignedBytes', 'MemoryDemandBytes', 'DiskIops', 'DiskReadBytesPerSecond', 'DiskWrittenBytesPerSecond',
  'NetworkInBytesPerSecond', 'NetworkOutBytesPerSecond',
] as const;
export type SeriesName = (typeof SERIES)[number];
export type Point = Record<SeriesName, number | null>;

/** What GET …/history answers: parallel arrays, oldest first; Times in Unix seconds (each step's end). */
export type HistoryView = { StepSeconds: number; Times: number[] } & Record<SeriesName, (number | null)[]>;

/** What a restart keeps: the finished points, the host's and each VM's, in GET …/history's shape. */
export interface HistorySnapshot { version: 1; host: HistoryView; vms: Record<string, HistoryView> }

/** A fixed-size ring of values, oldest overwritten. */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}
  push(v: T): void {
    if (this.items.length < this.capacity) this.items.push(v);
    else { this.items[this.start] = v; this.start = (this.start + 1) % this.capacity; }
  }
  values(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

/** One sample of a VM for the graphs: its metering sample, and its memory demand when the VM reports one. */
export interface HistorySample { sample: Sample; memoryDemandBytes: number | null }

interface Track { step: MeteringState; demandByteSeconds: number | null; points: Ring<{ time: number; point: Point }> }

export class MeteringHistory {
  private readonly vms = new Map<string, Track>();
  private readonly host = new Ring<{ time: number; point: Point }>(HISTORY_POINTS);
  private stepIndex: number | undefined;
  /** Steps closed so far: a snapshot is worth writing only when this moved. */
  closedSteps = 0;

  constructor(private readonly logicalProcessors: number) {}

  /** The sampler's samples at `nowMs`; VMs absent from `samples` are forgotten. */
  record(nowMs: number, samples: ReadonlyMap<string, HistorySample>): void {
    const index = Math.floor(nowMs / 1000 / HISTORY_STEP_SECONDS);
    if (this.stepIndex !== undefined && index !== this.stepIndex) this.close((this.stepIndex + 1) * HISTORY_STEP_SECONDS);
    this.stepIndex = index;
    for (const id of this.vms.keys()) if (!samples.has(id)) this.vms.delete(id);
    for (const [id, s] of samples) {
      let t = this.vms.get(id);
      if (!t) {
        t = { step: newMeteringState(''), demandByteSeconds: null, points: new Ring(HISTORY_POINTS) };
        this.vms.set(id, t);
      }
      t.step = applySample(t.step, s.sample);
      if (s.memoryDemandBytes !== null) t.demandByteSeconds = (t.demandByteSeconds ?? 0) + s.memoryDemandBytes * s.sample.seconds;
    }
  }

  /** The step that ends at `time` becomes a point of each VM and of the host (the VMs' sum). */
  private close(time: number): void {
    const total: Point = Object.fromEntries(SERIES.map((k) => [k, 0])) as Point;
    let demandKnown = false;
    for (const t of this.vms.values()) {
      const p = this.point(t);
      t.points.push({ time, point: p });
      for (const k of SERIES) total[k] = (total[k] ?? 0) + (p[k] ?? 0);
      demandKnown ||= p.MemoryDemandBytes !== null;
      t.step = resetMeteringState(t.step, '');
      t.demandByteSeconds = null;
    }
    if (!demandKnown) total.MemoryDemandBytes = null;
    this.host.push({ time, point: total });
    this.closedSteps++;
  }

  private point(t: Track): Point {
    const s = t.step;
    const per = (x: number | undefined) => (s.durationSeconds > 0 ? (x ?? 0) / s.durationSeconds : 0);
    return {
      CpuPercent: (per(s.counters.cpuSeconds) / this.logicalProcessors) * 100,
      MemoryAssignedBytes: per(s.memoryByteSeconds),
      MemoryDemandBytes: t.demandByteSeconds === null ? null : per(t.demandByteSeconds),
      DiskIops: per(s.counters.latencyCount),
      DiskReadBytesPerSecond: per(s.counters.diskReadBytes),
      DiskWrittenBytesPerSecond: per(s.counters.diskWrittenBytes),
      NetworkInBytesPerSecond: per(s.counters.networkInboundBytes),
      NetworkOutBytesPerSecond: per(s.counters.networkOutboundBytes),
    };
  }

  vm(id: string): HistoryView {
    return view(this.vms.get(id)?.points.values() ?? []);
  }

  hostView(): HistoryView {
    return view(this.host.values());
  }

  snapshot(): HistorySnapshot {
    return { version: 1, host: this.hostView(), vms: Object.fromEntries([...this.vms.keys()].map((id) => [id, this.vm(id)])) };
  }

  /**
   * The points of a snapshot, before the first sample: each VM's and the host's rings hold them
   * (at most the last HISTORY_POINTS each), and a VM no longer on the host is forgotten at the
   * first sample. A snapshot of another shape (a damaged file) restores nothing.
   */
  restore(s: unknown): void {
    if (!isSnapshot(s)) return;
    fill(this.host, s.host);
    for (const [id, v] of Object.entries(s.vms)) {
      const t: Track = { step: newMeteringState(''), demandByteSeconds: null, points: new Ring(HISTORY_POINTS) };
      fill(t.points, v);
      this.vms.set(id, t);
    }
  }
}

function isView(v: unknown): v is HistoryView {
  if (typeof v !== 'object' || v === null) return false;
  const times = (v as HistoryView).Times;
  return Array.isArray(times) && times.every((t) => typeof t === 'number')
    && SERIES.every((k) => { const a = (v as HistoryView)[k]; return Array.isArray(a) && a.length === times.length && a.every((x) => x === null || typeof x === 'number'); });
}

function isSnapshot(s: unknown): s is HistorySnapshot {
  if (typeof s !== 'object' || s === null) return false;
  const { version, host, vms } = s as HistorySnapshot;
  return version === 1 && isView(host) && typeof vms === 'object' && vms !== null && Object.values(vms).every(isView);
}

function fill(ring: Ring<{ time: number; point: Point }>, v: HistoryView): void {
  for (let i = Math.max(0, v.Times.length - HISTORY_POINTS); i < v.Times.length; i++) {
    ring.push({ time: v.Times[i]!, point: Object.fromEntries(SERIES.map((k) => [k, v[k][i]!])) as Point });
  }
}

function view(points: readonly { time: number; point: Point }[]): HistoryView {
  const out = { StepSeconds: HISTORY_STEP_SECONDS, Times: points.map((p) => p.time) } as HistoryView;
  for (const k of SERIES) out[k] = points.map((p) => (p.point[k] === null ? null : Math.round(p.point[k]! * 100) / 100));
  return out;
}
