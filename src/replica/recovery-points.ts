// Recovery points on the Replica server, pure: each replication cycle's changes land in a new
// differencing disk (one per drive) on top of the replica's chain — that file is the recovery
// point. Enable-VMReplication -RecoveryHistory N keeps at most N of them; beyond that the
// oldest are merged into the base (offline merge), which then holds the state at the oldest
// point still named. RecoveryHistory 0 keeps only the latest state: the cycle's point is merged
// into the base as soon as it is durable (received into its own file first, so a broken
// connection never leaves a half-applied base).
export const MAX_RECOVERY_HISTORY = 24;

export interface RecoveryPoint {
  /** 1, 2, …: the cycle that made it. */
  seq: number;
  /** The moment of the primary's consistent point (ISO). */
  time: string;
}


/**
 * After a point was added: the oldest points to merge into the base, oldest first (each in
 * turn: merged into the base, the next one re-pointed to the base), and the points kept.
 */
export function prunePlan<T extends RecoveryPoint>(points: readonly T[], history: number): { merge: T[]; keep: T[] } {
  const sorted = [...points].sort((a, b) => a.seq - b.seq);
  const over = Math.max(0, sorted.length - history);
  return { merge: sorted.slice(0, over), keep: sorted.slice(over) };
}

/** Enable-/Set-VMReplication -RecoveryHistory: 0..24, an integer. */
export function checkRecoveryHistory(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_RECOVERY_HISTORY;
}

/** -ReplicationFrequencySec: Hyper-V 2012 R2 accepts 30, 300 and 900 only. */
export const FREQUENCIES = [30, 300, 900] as const;
export type FrequencySec = (typeof FREQUENCIES)[number];
