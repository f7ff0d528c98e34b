// Application-consistent points (issue 13): the guest's file systems frozen through the agent
// (FIFREEZE, Linux's counterpart of VSS) around the instant a point is taken. The freeze lasts
// only for `take` — the pause in which a point-in-time copy starts or a tracker's changes are
// taken — and the thaw follows at once; the copy itself runs with the guest thawed. Used by
// Start-VMBackup and meant for the replica's app-consistent recovery points.
//
// Anything short of a freeze the agent confirms and a thaw that finds it still in place gives
// a crash-consistent point (the disks as after a power cut at that instant), with the reason:
// the VSS integration service off, no agent, an agent without the op, a failed freeze, or a
// take so slow that the agent's own timeout thawed the guest before it.
import { isVmhostError } from '../common/index.ts';
import type { AgentClient } from '../guest/index.ts';

export type ConsistencyLevel = 'ApplicationConsistent' | 'CrashConsistent';

export interface FreezeResult<T> {
  value: T;
  level: ConsistencyLevel;
  /** The guest mount points that were frozen (application-consistent points). */
  frozen: string[];
  /** Why the point is only crash-consistent. */
  reason?: string;
}

/** How long the guest stays frozen at most if this host never thaws it (the agent thaws by itself). */
export const AUTO_THAW_MS = 10_000;
/** A freeze flushes the guest's dirty data first: allow it that long to answer. */
const FREEZE_REPLY_MS = 60_000;

type Freezer = Pick<AgentClient, 'freeze' | 'thaw'>;

function why(e: unknown): string {
  if (isVmhostError(e) && e.context.agentCode === 'UNKNOWN_OP') return 'the guest agent is too old to freeze file systems';
  return `the guest could not freeze its file systems: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Run `take` with the guest's file systems frozen when `agent` can (and `enabled`: the VM's
 * VSS integration service), else run it as it is (`noAgent`: why there is no agent to ask); say
 * which consistency the result has.
 */
export async function atConsistentPoint<T>(agent: Freezer | undefined, enabled: boolean, take: () => Promise<T>, noAgent = 'the guest agent is not responding'): Promise<FreezeResult<T>> {
  if (!enabled) return { value: await take(), level: 'CrashConsistent', frozen: [], reason: 'the VSS integration service is disabled' };
  if (!agent) return { value: await take(), level: 'CrashConsistent', frozen: [], reason: noAgent };
  let frozen: string[];
  try {
    frozen = (await agent.freeze(AUTO_THAW_MS, FREEZE_REPLY_MS)).frozen;
  } catch (e) {
    // A freeze that timed out here may still land in the guest: ask for the thaw either way.
    await agent.thaw().catch(() => undefined);
    return { value: await take(), level: 'CrashConsistent', frozen: [], reason: why(e) };
  }
  let value: T;
  let thawed: number | undefined;
  try {
    value = await take();
  } finally {
    thawed = await agent.thaw().then((t) => t.thawed, () => undefined);
  }
  if (thawed === undefined) return { value, level: 'CrashConsistent', frozen: [], reason: 'the guest did not confirm the thaw, so the freeze may have ended before the point' };
  if (frozen.length > 0 && thawed === 0) {
    return { value, level: 'CrashConsistent', frozen: [], reason: `the guest thawed itself before the point was taken (over ${AUTO_THAW_MS / 1000} s)` };
  }
  return { value, level: 'ApplicationConsistent', frozen };
}
