// The web console's graphs: the last hour of each VM's and the host's CPU, memory, disk and
// network, in 10 s steps (360 points a series), kept in memory (a restart starts them over).
// Pure. The metering sampler's one-second samples of each VM (the readings Measure-VM counts,
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
}

function view(points: readonly { time: number; point: Point }[]): HistoryView {
  const out = { StepSeconds: HISTORY_STEP_SECONDS, Times: points.map((p) => p.time) } as HistoryView;
  for (const k of SERIES) out[k] = points.map((p) => (p.point[k] === null ? null : Math.round(p.point[k]! * 100) / 100));
  return out;
}
