// Resource metering of pools (Enable-/Disable-/Reset-VMResourceMetering -ResourcePoolName,
// Measure-VMResourcePool), pure. A metered pool keeps one MeteringState (metering-state.ts) per
// member it has counted, fed with that member's part of its VM's sources: a Processor pool its
// VMs' vCPU time, a Memory pool their memory, a VHD pool its drives' I/O and allocation, an
// Ethernet pool its adapters' traffic. A member's state starts at the sample it is first seen
// in (its counters' positions then are the baseline, so what it did before joining is not the
// pool's), and stays after the member leaves: a tenant's bill keeps what its VMs used while they
// were in the pool, and a member that left adds nothing more. Reset drops all of it.
//
// The report is Measure-VM's arithmetic over the sum of the members (one MeteringState holding
// their summed counters), with the pool's own duration: AverageProcessorUsage and
// AverageMemoryUsage are the sums of the members' averages, as Hyper-V's pool report has them;
// MinimumMemoryUsage and MaximumMemoryUsage are the smallest and largest of any member VM;
// TotalDiskAllocation is the sum of the member drives' largest allocation (what the pool's disks
// take on the host; Hyper-V's help says "of any virtual machine", which bills a tenant for one
// disk only).
import { applySample, baselineOf, meteringReport, newMeteringState, type MeteredCounter, type MeteringReport, type MeteringState, type Sample } from './metering-state.ts';

export interface PoolMeteringState {
  version: 1;
  resetAt: string;
  durationSeconds: number;
  /** Per member: `<vm id>/<device id or "vm">`. */
  members: Record<string, MeteringState>;
}

/** One member's part of a sample. */
export interface MemberSample { key: string; sample: Sample }

export function newPoolMetering(resetAt: string): PoolMeteringState {
  return { version: 1, resetAt, durationSeconds: 0, members: {} };
}

export function applyPoolSample(s: PoolMeteringState, seconds: number, parts: readonly MemberSample[]): PoolMeteringState {
  const members = { ...s.members };
  for (const { key, sample } of parts) {
    const m = members[key];
    // First sight: the member's counters now are where it starts; its memory counts from the next sample.
    members[key] = m ? applySample(m, sample) : baselineOf(newMeteringState(s.resetAt), sample.readings);
  }
  return { ...s, durationSeconds: s.durationSeconds + seconds, members };
}

/** What a daemon restart keeps: the counts, not the sources' positions (nothing ran metered while it was down). */
export function restartedPool(s: PoolMeteringState): PoolMeteringState {
  return { ...s, members: Object.fromEntries(Object.entries(s.members).map(([k, m]) => [k, { ...m, last: {} }])) };
}

/** The members' sum as one state, over `durationSeconds`. */
export function summed(states: readonly MeteringState[], resetAt: string, durationSeconds: number): MeteringState {
  const out = newMeteringState(resetAt);
  out.durationSeconds = durationSeconds;
  for (const m of states) {
    for (const [k, v] of Object.entries(m.counters)) out.counters[k as MeteredCounter] = (out.counters[k as MeteredCounter] ?? 0) + (v ?? 0);
    out.memoryByteSeconds += m.memoryByteSeconds;
    if (m.minMemoryBytes !== null) out.minMemoryBytes = Math.min(out.minMemoryBytes ?? m.minMemoryBytes, m.minMemoryBytes);
    if (m.maxMemoryBytes !== null) out.maxMemoryBytes = Math.max(out.maxMemoryBytes ?? m.maxMemoryBytes, m.maxMemoryBytes);
    out.maxDiskAllocatedBytes += m.maxDiskAllocatedBytes;
  }
  return out;
}

/** Measure-VMResourcePool over one or more pools of one name (several types: one report, as Hyper-V aggregates them). */
export function poolReport(pools: readonly PoolMeteringState[], hostMhz: number): MeteringReport & { MeteringStartTime: string } {
  const resetAt = pools.map((p) => p.resetAt).sort()[0] ?? new Date(0).toISOString();
  const duration = Math.max(0, ...pools.map((p) => p.durationSeconds));
  const state = summed(pools.flatMap((p) => Object.values(p.members)), resetAt, duration);
  return { MeteringStartTime: resetAt, ...meteringReport(state, hostMhz) };
}
