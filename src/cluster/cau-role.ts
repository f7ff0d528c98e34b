// The self-updating CAU role (Add-/Set-/Get-/Enable-/Disable-/Remove-CauClusterRole): one record
// in etcd, `cau/role` (cau-keys.ts) — the schedule (cau-schedule.ts) and Invoke-CauRun's options.
// Hyper-V runs it as a clustered role whose owner starts the runs; here the cluster's leader
// does: every node's CAU agent asks `startDueRun` each second, and only the node holding the
// leader key acts. The run is started by the same txn as the role's "handled until" mark, on the
// run key's absence, the role record's revision and the leader key's revision: a leader that dies
// before the run time leaves the run time unhandled, and the next leader starts it — once, since
// a second start fails on the role's revision (and on the run key) whoever tries it.
// A run time that finds a run in progress (an Invoke-CauRun) waits for its end, then starts.
import { VmhostError, isVmhostError, type ErrorCode } from '../common/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { LEADER_KEY, type OwnerRecord } from './keys.ts';
import { CAU_DEFAULTS, type CauRunRecord, type PlanInput } from './cau-plan.ts';
import { cauPlugin } from './cau-plugin.ts';
import { dueRun, nextRun, validateSchedule, type CauSchedule } from './cau-schedule.ts';
import { writeRun } from './cau-admin.ts';
import { CAU_ROLE_KEY } from './cau-keys.ts';

export interface CauRoleRecord {
  Schedule: CauSchedule;
  Run: PlanInput;
  Enabled: boolean;
  /** Run times up to here are handled: the last one started, or when the role was added, rescheduled or enabled. */
  HandledUntil: string;
  LastRunTime?: string;
  LastRunId?: string;
  /** Why the last run time started no run (its plan was refused, e.g. -RequireAllNodesOnline with a node Down). */
  LastMessage?: string;
}

/** Get-CauClusterRole: `Status` Online (enabled) or Offline (Disable-CauClusterRole). */
export interface CauRoleView {
  ClusterName: string; Status: 'Online' | 'Offline';
  DaysOfWeek: string[]; WeeksOfMonth?: number[]; IntervalWeeks?: number; StartDate: string; NextRun?: string;
  LastRunTime?: string; LastRunId?: string; LastMessage?: string;
  CauPluginName: string; CauPluginArguments: Record<string, string>; MaxFailedNodes: number; MaxRetriesPerNode: number;
  RebootTimeoutMinutes: number; FailbackMode: string; RequireAllNodesOnline: boolean; NodeOrder?: string[]; PreUpdateScript?: string; PostUpdateScript?: string;
}

/** Add-/Set-CauClusterRole's schedule parameters (the run options are a PlanInput). */
export interface ScheduleInput { DaysOfWeek?: string[]; WeeksOfMonth?: number[]; IntervalWeeks?: number; StartDate?: string }

export class CauRoleAdmin {
  constructor(private readonly node: ClusterNode) {}

  private async read(): Promise<{ rec: CauRoleRecord; modRevision: number; ClusterName: string }> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const kv = await this.node.etcd.get(CAU_ROLE_KEY);
    if (!kv) throw new VmhostError('NOT_FOUND', `The CAU clustered role is not added to cluster '${s.config!.Name}' (Add-CauClusterRole)`, {});
    return { rec: JSON.parse(kv.value) as CauRoleRecord, modRevision: kv.modRevision, ClusterName: s.config!.Name };
  }

  private view(rec: CauRoleRecord, ClusterName: string): CauRoleView {
    const r = rec.Run;
    return {
      ClusterName, Status: rec.Enabled ? 'Online' : 'Offline', ...rec.Schedule,
      ...(rec.Enabled ? { NextRun: nextRun(rec.Schedule, new Date(rec.HandledUntil)).toISOString() } : {}),
      ...(rec.LastRunTime !== undefined ? { LastRunTime: rec.LastRunTime } : {}), ...(rec.LastRunId !== undefined ? { LastRunId: rec.LastRunId } : {}),
      ...(rec.LastMessage !== undefined ? { LastMessage: rec.LastMessage } : {}),
      CauPluginName: r.Plugin, CauPluginArguments: r.Arguments, MaxFailedNodes: r.MaxFailedNodes ?? CAU_DEFAULTS.MaxFailedNodes,
      MaxRetriesPerNode: r.MaxRetriesPerNode ?? CAU_DEFAULTS.MaxRetriesPerNode, RebootTimeoutMinutes: Math.round((r.TimeoutMs ?? CAU_DEFAULTS.TimeoutMs) / 60_000),
      FailbackMode: r.FailbackMode ?? CAU_DEFAULTS.FailbackMode, RequireAllNodesOnline: r.RequireAllNodesOnline ?? false,
      ...(r.NodeOrder !== undefined ? { NodeOrder: r.NodeOrder } : {}),
      ...(r.PreUpdateScript !== undefined ? { PreUpdateScript: r.PreUpdateScript } : {}), ...(r.PostUpdateScript !== undefined ? { PostUpdateScript: r.PostUpdateScript } : {}),
    };
  }

  /** The run options checked as Invoke-CauRun checks them: the plug-in known, its arguments usable. */
  private async checkRun(run: PlanInput): Promise<PlanInput> {
    (await cauPlugin(this.node.etcd, run.Plugin)).updateCommand(run.Arguments);
    return run;
  }

  /** Add-CauClusterRole: the role with its schedule and run options, Online unless `disabled`. */
  async add(schedule: ScheduleInput, run: PlanInput, disabled: boolean): Promise<CauRoleView> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const now = new Date();
    const rec: CauRoleRecord = { Schedule: validateSchedule(schedule, now), Run: await this.checkRun(run), Enabled: !disabled, HandledUntil: now.toISOString() };
    const r = await this.node.etcd.txn([{ key: CAU_ROLE_KEY, absent: true }], [{ put: CAU_ROLE_KEY, value: JSON.stringify(rec) }]);
    if (!r.succeeded) throw new VmhostError('ALREADY_EXISTS', `The CAU clustered role is already added to cluster '${s.config!.Name}' (Set-CauClusterRole changes it)`, {});
    this.node.event('Information', 'CLUSTER_CAU_ROLE_ADDED', `The CAU clustered role was added: ${describe(rec.Schedule)}`);
    return this.view(rec, s.config!.Name);
  }

  async get(): Promise<CauRoleView> {
    const { rec, ClusterName } = await this.read();
    return this.view(rec, ClusterName);
  }

  /**
   * Change the record in one txn on its revision. A changed schedule, or enabling, marks the run
   * times until now handled: a change never starts a run for a past run time.
   */
  private async change(f: (rec: CauRoleRecord, now: Date) => Promise<CauRoleRecord> | CauRoleRecord): Promise<CauRoleView> {
    for (;;) {
      const { rec, modRevision, ClusterName } = await this.read();
      const now = new Date();
      const next = await f(rec, now);
      const r = await this.node.etcd.txn([{ key: CAU_ROLE_KEY, modRevision }], [{ put: CAU_ROLE_KEY, value: JSON.stringify(next) }]);
      if (r.succeeded) return this.view(next, ClusterName);
    }
  }

  /** Set-CauClusterRole: schedule fields given replace theirs (-WeeksOfMonth and -IntervalWeeks replace each other), run options given replace theirs. */
  async set(schedule: ScheduleInput, run: Partial<PlanInput>): Promise<CauRoleView> {
    return this.change(async (rec, now) => {
      const rescheduled = Object.values(schedule).some((v) => v !== undefined);
      const narrowing = schedule.WeeksOfMonth !== undefined || schedule.IntervalWeeks !== undefined
        ? { WeeksOfMonth: schedule.WeeksOfMonth, IntervalWeeks: schedule.IntervalWeeks }
        : { WeeksOfMonth: rec.Schedule.WeeksOfMonth, IntervalWeeks: rec.Schedule.IntervalWeeks };
      const Schedule = rescheduled
        ? validateSchedule({ DaysOfWeek: schedule.DaysOfWeek ?? rec.Schedule.DaysOfWeek, StartDate: schedule.StartDate ?? rec.Schedule.StartDate, ...narrowing }, now)
        : rec.Schedule;
      const Run = await this.checkRun({ ...rec.Run, ...Object.fromEntries(Object.entries(run).filter(([, v]) => v !== undefined)) });
      return { ...rec, Schedule, Run, ...(rescheduled ? { HandledUntil: now.toISOString() } : {}) };
    });
  }

  /** Enable-/Disable-CauClusterRole: enabling counts run times from now on. */
  async setEnabled(enabled: boolean): Promise<CauRoleView> {
    return this.change((rec, now) => (rec.Enabled === enabled ? rec : { ...rec, Enabled: enabled, ...(enabled ? { HandledUntil: now.toISOString() } : {}) }));
  }

  /** Remove-CauClusterRole: a run it started goes on (Stop-CauRun ends it). */
  async remove(): Promise<void> {
    await this.read();
    await this.node.etcd.delete(CAU_ROLE_KEY);
    this.node.event('Information', 'CLUSTER_CAU_ROLE_REMOVED', 'The CAU clustered role was removed');
  }

  /** Set-CauClusterRole -UpdateNow: a run with the role's options, now. */
  async updateNow(): Promise<CauRunRecord> {
    const { rec, ClusterName } = await this.read();
    const run = await writeRun(this.node, rec.Run);
    if (!run) throw new VmhostError('CLUSTER_CAU_RUN_IN_PROGRESS', `A Cluster-Aware Updating run is in progress on cluster '${ClusterName}' (Get-CauRun; Stop-CauRun ends it)`, {});
    return run;
  }
}

function describe(s: CauSchedule): string {
  const narrowing = s.WeeksOfMonth ? ` of week(s) ${s.WeeksOfMonth.join(', ')} of the month` : s.IntervalWeeks ? ` every ${s.IntervalWeeks} week(s)` : '';
  return `${s.DaysOfWeek.join(', ')}${narrowing}, at ${s.StartDate.slice(11, 19)} UTC, from ${s.StartDate}`;
}

/** What a refused plan or plug-in throws (cau-plan.ts, cau-plugin.ts): the run time is over, not retried. */
const PLAN_REFUSED: readonly ErrorCode[] = ['INVALID_ARGUMENT', 'NOT_FOUND', 'CLUSTER_INVALID_OPERATION'];

/**
 * The leader's part, asked by every node's CAU agent each second: start the role's due run, once.
 * Returns the run started, if this call started one.
 */
export async function startDueRun(node: ClusterNode, now: Date): Promise<CauRunRecord | undefined> {
  const kv = await node.etcd.get(CAU_ROLE_KEY);
  if (!kv) return undefined;
  const rec = JSON.parse(kv.value) as CauRoleRecord;
  const due = rec.Enabled ? dueRun(rec.Schedule, new Date(rec.HandledUntil), now) : undefined;
  if (!due) return undefined;
  const leader = await node.etcd.get(LEADER_KEY);
  if (!leader || (JSON.parse(leader.value) as OwnerRecord).Node !== node.name) return undefined;
  const ScheduledFor = due.toISOString();
  const compares = [{ key: CAU_ROLE_KEY, modRevision: kv.modRevision }, { key: LEADER_KEY, modRevision: leader.modRevision }];
  const handled = { ...rec, HandledUntil: ScheduledFor, LastRunTime: ScheduledFor };
  delete handled.LastMessage;
  try {
    return await writeRun(node, rec.Run, { ScheduledFor, compares, ops: (run) => [{ put: CAU_ROLE_KEY, value: JSON.stringify({ ...handled, LastRunId: run.RunId } satisfies CauRoleRecord) }] });
  } catch (e) {
    if (!isVmhostError(e) || !PLAN_REFUSED.includes(e.code)) throw e; // etcd unreachable and the like: the next tick tries again
    // The plan was refused (a node Down under -RequireAllNodesOnline, a plug-in since unregistered): this run time is over, said why.
    const LastMessage = `the run of ${ScheduledFor} did not start: ${e.message}`;
    const r = await node.etcd.txn(compares, [{ put: CAU_ROLE_KEY, value: JSON.stringify({ ...handled, LastMessage } satisfies CauRoleRecord) }]);
    if (r.succeeded) node.event('Warning', 'CLUSTER_CAU_SCHEDULED_RUN_REFUSED', `CAU clustered role: ${LastMessage}`);
    return undefined;
  }
}
