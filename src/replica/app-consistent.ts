// Application-consistent recovery points, pure: Enable-VMReplication -VSSSnapshotFrequencyHour N
// makes one cycle every N hours take its point inside the guest's freeze (Host.atConsistentPoint:
// the agent's fsfreeze, Linux's VSS); the cycles between are crash-consistent. The first cycle
// after the initial replication is app-consistent (there is no earlier one to count from), then
// the next one due N hours (× the test timer scale) after the last that froze. A cycle that asked
// for a freeze and did not get one (no agent, VSS service off) is crash-consistent with the
// reason, and the next cycle asks again: an hour without an app-consistent point is not lost to
// one bad moment. Hyper-V allows 1..12 hours and only with RecoveryHistory ≥ 1 (an app-consistent
// point must be kept to be of use); 0 turns it off.
import { VmhostError } from '../common/index.ts';
import type { ConsistencyLevel } from '../host/index.ts';

export const MAX_VSS_HOURS = 12;

/** -VSSSnapshotFrequencyHour: 0 (off) or 1..12, and then RecoveryHistory must keep points. */
export function checkVssFrequency(hours: number, recoveryHistory: number): void {
  const bad = (m: string) => new VmhostError('INVALID_ARGUMENT', `VSSSnapshotFrequencyHour: ${m}`, { param: 'VSSSnapshotFrequencyHour' });
  if (!Number.isInteger(hours) || hours < 0 || hours > MAX_VSS_HOURS) throw bad(`${hours} is not an integer from 0 (off) to ${MAX_VSS_HOURS}`);
  if (hours > 0 && recoveryHistory < 1) throw bad('application-consistent points need RecoveryHistory of 1 or more (with 0 only the latest point is kept)');
}

/** Whether this cycle's point should freeze the guest: never when off, the first cycle, then every `hours` × `scale`. */
export function appConsistentDue(hours: number, lastFrozen: string | null, now: Date, scale = 1): boolean {
  if (hours <= 0) return false;
  if (lastFrozen === null) return true;
  return now.getTime() - Date.parse(lastFrozen) >= hours * 3600_000 * scale;
}

/** A recovery point's type on the replica and why it is only crash-consistent. */
export interface PointConsistency {
  consistency: ConsistencyLevel;
  reason?: string;
}

/** What a cycle's point is: the freeze's verdict when it asked for one, else crash-consistent by schedule. */
export function pointConsistency(asked: boolean, level: ConsistencyLevel, reason: string | undefined, hours: number): PointConsistency {
  if (asked) return level === 'ApplicationConsistent' ? { consistency: level } : { consistency: 'CrashConsistent', reason: reason ?? 'the guest did not freeze' };
  return { consistency: 'CrashConsistent', reason: hours > 0 ? `not an application-consistent cycle (one every ${hours} h)` : 'application-consistent points are off (VSSSnapshotFrequencyHour 0)' };
}
