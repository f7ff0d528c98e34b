// Resource metering's arithmetic (Enable-/Reset-VMResourceMetering, Measure-VM), pure: the
// sampler (vm-metering.ts) reads cumulative counters from their sources every second and hands
// them over as a Sample; this module keeps the totals since the last reset and turns them into
// Hyper-V's report. Nothing here reads a clock or a file.
//
// A source counter can start over (a new QEMU, a block export served again, a Meter ACL added
// back), so each reading is a delta against the last value seen under its key: a value below
// the last one counts from zero, and a key not seen in the previous sample counts from zero
// ('count') or only sets where the next delta starts ('baseline': a counter whose earlier part
// is already counted, such as the switch's Meter counters restored after a daemon restart).
// Keys absent from a sample are forgotten, so a stopped VM's sources do not pile up.

/** What a reading adds to. Traffic by remote range carries the range after the colon. */
export type MeteredCounter = 'cpuSeconds' | 'diskReadBytes' | 'diskWrittenBytes' | 'normalizedIos' | 'latencyMsSum' | 'latencyCount'
  | 'networkInboundBytes' | 'networkOutboundBytes' | `rangeInboundBytes:${string}` | `rangeOutboundBytes:${string}`;

export interface Reading {
  /** The source counter's identity, e.g. `cpu:<pid>/<tid>` or `disk:<export>@<epoch>:read`. */
  key: string;
  counter: MeteredCounter;
  /** The source's cumulative value. */
  value: number;
  onFirstSight: 'count' | 'baseline';
}

export interface Sample {
  /** Time since the previous sample. */
  seconds: number;
  running: boolean;
  /** Memory assigned to the running VM (bytes). */
  memoryBytes: number;
  /** Allocation of the VM's disk files (bytes). */
  diskAllocatedBytes: number;
  readings: readonly Reading[];
}

/** What metering.json holds. */
export interface MeteringState {
  version: 1;
  /** When counting began (Enable- or Reset-VMResourceMetering), ISO 8601. */
  resetAt: string;
  /** Time metered since then (the daemon's samples; a daemon that is down meters nothing). */
  durationSeconds: number;
  counters: Partial<Record<MeteredCounter, number>>;
  /** ∫ memory assigned dt, over the metered time (an Off VM adds 0). */
  memoryByteSeconds: number;
  /** Memory extremes while the VM ran; null before it ran. */
  minMemoryBytes: number | null;
  maxMemoryBytes: number | null;
  maxDiskAllocatedBytes: number;
  /** Where each source's next delta starts. */
  last: Record<string, number>;
}

export function newMeteringState(resetAt: string): MeteringState {
  return { version: 1, resetAt, durationSeconds: 0, counters: {}, memoryByteSeconds: 0, minMemoryBytes: null, maxMemoryBytes: null, maxDiskAllocatedBytes: 0, last: {} };
}

/** Reset-VMResourceMetering: totals from zero, the sources' positions kept (what was read is not counted again). */
export function resetMeteringState(s: MeteringState, resetAt: string): MeteringState {
  return { ...newMeteringState(resetAt), last: { ...s.last } };
}

/** Enable-VMResourceMetering on a VM that already runs: its sources' current values are where counting starts. */
export function baselineOf(s: MeteringState, readings: readonly Reading[]): MeteringState {
  return { ...s, last: Object.fromEntries(readings.map((r) => [r.key, r.value])) };
}

export function applySample(s: MeteringState, sample: Sample): MeteringState {
  const counters = { ...s.counters };
  const last: Record<string, number> = {};
  for (const r of sample.readings) {
    const before = s.last[r.key];
    const delta = before === undefined ? (r.onFirstSight === 'count' ? r.value : 0) : r.value >= before ? r.value - before : r.value;
    counters[r.counter] = (counters[r.counter] ?? 0) + delta;
    last[r.key] = r.value;
  }
  const mem = sample.running ? sample.memoryBytes : null;
  return {
    version: 1,
    resetAt: s.resetAt,
    durationSeconds: s.durationSeconds + sample.seconds,
    counters,
    memoryByteSeconds: s.memoryByteSeconds + (mem ?? 0) * sample.seconds,
    minMemoryBytes: mem === null ? s.minMemoryBytes : Math.min(s.minMemoryBytes ?? mem, mem),
    maxMemoryBytes: mem === null ? s.maxMemoryBytes : Math.max(s.maxMemoryBytes ?? mem, mem),
    maxDiskAllocatedBytes: Math.max(s.maxDiskAllocatedBytes, sample.diskAllocatedBytes),
    last,
  };
}

export interface MeteredTraffic {
  /** Hyper-V's item has it; a vmhost Meter ACL names only the remote side. */
  LocalAddress: null;
  RemoteAddress: string;
  Direction: 'Inbound' | 'Outbound';
  /** MB, as Hyper-V reports it. */
  TotalTraffic: number;
  TotalTrafficBytes: number;
}

/** Measure-VM's numbers (Hyper-V's VMMeteringReportForVirtualMachine), sizes in MB as Hyper-V gives them, exact bytes beside. */
export interface MeteringReport {
  MeteringDuration: { TotalSeconds: number; Text: string };
  /** MHz: the VM's share of CPU time over the duration × the host processor's MHz. */
  AverageProcessorUsage: number;
  AverageMemoryUsage: number;
  MinimumMemoryUsage: number;
  MaximumMemoryUsage: number;
  TotalDiskAllocation: number;
  /** All traffic of the VM's adapters (their switch ports' counters), whatever the Meter ACLs. */
  NetworkInboundBytes: number;
  NetworkOutboundBytes: number;
  NetworkMeteredTrafficReport: MeteredTraffic[];
  AggregatedAverageNormalizedIOPS: number;
  /** ms, over the read/write operations. */
  AggregatedAverageLatency: number;
  AggregatedDiskDataRead: number;
  AggregatedDiskDataWritten: number;
  AggregatedDiskDataReadBytes: number;
  AggregatedDiskDataWrittenBytes: number;
  AggregatedNormalizedIOCount: number;
  CpuSeconds: number;
}

const MB = 1024 * 1024;

/** hh:mm:ss, the way a TimeSpan prints (days in front when there are any). */
export function timeSpanText(seconds: number): string {
  const t = Math.floor(seconds);
  const d = Math.floor(t / 86400);
  const pad = (n: number) => String(n).padStart(2, '0');
  const hms = `${pad(Math.floor((t % 86400) / 3600))}:${pad(Math.floor((t % 3600) / 60))}:${pad(t % 60)}`;
  return d > 0 ? `${d}.${hms}` : hms;
}

export function meteringReport(s: MeteringState, hostMhz: number): MeteringReport {
  const c = (k: MeteredCounter) => s.counters[k] ?? 0;
  const per = (x: number) => (s.durationSeconds > 0 ? x / s.durationSeconds : 0);
  const traffic: MeteredTraffic[] = [];
  for (const [k, v] of Object.entries(s.counters)) {
    const m = /^range(Inbound|Outbound)Bytes:(.*)$/.exec(k);
    if (m) traffic.push({ LocalAddress: null, RemoteAddress: m[2]!, Direction: m[1] as 'Inbound' | 'Outbound', TotalTraffic: Math.round((v ?? 0) / MB), TotalTrafficBytes: v ?? 0 });
  }
  traffic.sort((a, b) => a.RemoteAddress.localeCompare(b.RemoteAddress) || a.Direction.localeCompare(b.Direction));
  return {
    MeteringDuration: { TotalSeconds: Math.round(s.durationSeconds * 1000) / 1000, Text: timeSpanText(s.durationSeconds) },
    AverageProcessorUsage: Math.round(per(c('cpuSeconds')) * hostMhz),
    AverageMemoryUsage: Math.round(per(s.memoryByteSeconds) / MB),
    MinimumMemoryUsage: Math.round((s.minMemoryBytes ?? 0) / MB),
    MaximumMemoryUsage: Math.round((s.maxMemoryBytes ?? 0) / MB),
    TotalDiskAllocation: Math.round(s.maxDiskAllocatedBytes / MB),
    NetworkInboundBytes: c('networkInboundBytes'),
    NetworkOutboundBytes: c('networkOutboundBytes'),
    NetworkMeteredTrafficReport: traffic,
    AggregatedAverageNormalizedIOPS: Math.round(per(c('normalizedIos'))),
    AggregatedAverageLatency: c('latencyCount') > 0 ? Math.round((c('latencyMsSum') / c('latencyCount')) * 1000) / 1000 : 0,
    AggregatedDiskDataRead: Math.round(c('diskReadBytes') / MB),
    AggregatedDiskDataWritten: Math.round(c('diskWrittenBytes') / MB),
    AggregatedDiskDataReadBytes: c('diskReadBytes'),
    AggregatedDiskDataWrittenBytes: c('diskWrittenBytes'),
    AggregatedNormalizedIOCount: c('normalizedIos'),
    CpuSeconds: Math.round(c('cpuSeconds') * 1000) / 1000,
  };
}
