// Cluster-Aware Updating's run, pure: the plan Invoke-CauRun makes (which nodes, in which order,
// with which limits) and the state machine each node goes through. The run lives in etcd as one
// record (cau-keys.ts), so whichever node coordinates it — the coordinator's own update hands the
// run to another node — continues from the step recorded there; every step is written before it
// is acted on, and each step's action can be repeated (cau-coordinator.ts).
//
// A node's steps: Waiting → PreUpdate (the -PreUpdateScript, when given) → Suspending
// (Suspend-ClusterNode -Drain: live moves) → Updating (the plugin's updater, run on the node by
// its daemon; it may restart the daemon) → Restarting (the node is Up again) → Resuming
// (Resume-ClusterNode with the run's FailbackMode) → PostUpdate (-PostUpdateScript) → Succeeded.
// A failed update is tried again up to MaxRetriesPerNode times; a node that fails for good is
// left Paused with its roles elsewhere, and more than MaxFailedNodes such nodes fail the run.
import { VmhostError } from '../common/index.ts';

export type CauFailbackMode = 'NoFailback' | 'Immediate' | 'Policy';
export type CauNodeStatus = 'Waiting' | 'PreUpdate' | 'Suspending' | 'Updating' | 'Restarting' | 'Resuming' | 'PostUpdate' | 'Succeeded' | 'Failed';
export type CauRunState = 'Running' | 'Stopping' | 'Succeeded' | 'Failed' | 'Cancelled';
/** What a node is asked to run: the updater or one of the run's scripts. */
export type CauStage = 'PreUpdate' | 'Update' | 'PostUpdate';

export interface CauNodeRun {
  Node: string;
  Status: CauNodeStatus;
  /** Update attempts made on this node (at most the run's MaxRetriesPerNode). */
  Attempts: number;
  /** The request now asked of the node (cau-keys.ts updateKey): a new id per stage and attempt. */
  RequestId?: string;
  /** When this step began (ms since the epoch): its timeout counts from here. */
  StepSince?: number;
  StartedAt?: string;
  EndedAt?: string;
  VersionBefore?: string;
  VersionAfter?: string;
  /** The updater's last output lines, or why the node failed. */
  Message?: string;
}

export interface CauRunOptions {
  Plugin: string;
  Arguments: Record<string, string>;
  MaxFailedNodes: number;
  MaxRetriesPerNode: number;
  FailbackMode: CauFailbackMode;
  RequireAllNodesOnline: boolean;
  /** How long one node's update and its return may take (RebootTimeoutMinutes). */
  TimeoutMs: number;
  PreUpdateScript?: string;
  PostUpdateScript?: string;
  /** Invoke-CauRun -StopAfter: past this long from the run's start no node is started any more, and the run ends Cancelled. */
  StopAfterMs?: number;
}

export interface CauRunRecord extends CauRunOptions {
  RunId: string;
  ClusterName: string;
  /** The node the administrator asked (Invoke-CauRun). */
  By: string;
  StartedAt: string;
  EndedAt?: string;
  State: CauRunState;
  Message?: string;
  Nodes: CauNodeRun[];
  /** The self-updating role's run time that started this run (cau-role.ts). */
  ScheduledFor?: string;
}

export const CAU_DEFAULTS = { MaxFailedNodes: 0, MaxRetriesPerNode: 3, FailbackMode: 'NoFailback', TimeoutMs: 15 * 60_000 } as const;

export interface PlanInput extends Partial<CauRunOptions> { Plugin: string; Arguments: Record<string, string>; NodeOrder?: string[] }
export interface PlanNode { Name: string; State: 'Up' | 'Down' | 'Paused' }

/**
 * Invoke-CauRun's plan: every cluster node once, in -NodeOrder's order (which must name each
 * node once) or by name. -RequireAllNodesOnline refuses a cluster with a node not Up; without it
 * a Down node is left out (it cannot be drained or updated) and the others go ahead.
 */
export function planRun(input: PlanInput, nodes: readonly PlanNode[], meta: { RunId: string; ClusterName: string; By: string; Now: Date }): CauRunRecord {
  const byName = new Map(nodes.map((n) => [n.Name.toLowerCase(), n]));
  let order: PlanNode[];
  if (input.NodeOrder !== undefined) {
    order = input.NodeOrder.map((name) => {
      const n = byName.get(name.toLowerCase());
      if (!n) throw new VmhostError('NOT_FOUND', `Invoke-CauRun -NodeOrder: '${name}' is not a node of cluster '${meta.ClusterName}'`, { node: name });
      return n;
    });
    const names = new Set(order.map((n) => n.Name));
    if (names.size !== order.length) throw new VmhostError('INVALID_ARGUMENT', 'Invoke-CauRun -NodeOrder names a node twice', { param: 'NodeOrder' });
    const missing = nodes.filter((n) => !names.has(n.Name)).map((n) => n.Name);
    if (missing.length > 0) throw new VmhostError('INVALID_ARGUMENT', `Invoke-CauRun -NodeOrder must list every node: ${missing.join(', ')} missing`, { param: 'NodeOrder' });
  } else {
    order = [...nodes].sort((a, b) => a.Name.localeCompare(b.Name));
  }
  if (order.length === 0) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Cluster '${meta.ClusterName}' has no nodes to update`, {});
  const notUp = order.filter((n) => n.State !== 'Up');
  if (input.RequireAllNodesOnline && notUp.length > 0) {
    throw new VmhostError('CLUSTER_INVALID_OPERATION', `Invoke-CauRun -RequireAllNodesOnline: ${notUp.map((n) => `${n.Name} is ${n.State}`).join(', ')}`, { node: notUp[0]!.Name });
  }
  if (order.filter((n) => n.State !== 'Down').length < 2) {
    throw new VmhostError('CLUSTER_INVALID_OPERATION', 'Cluster-Aware Updating needs at least two nodes that are not Down: a node\'s roles must have somewhere to go', {});
  }
  const opt = (k: keyof typeof CAU_DEFAULTS): number | string => input[k] ?? CAU_DEFAULTS[k];
  if (input.FailbackMode === 'Policy') throw new VmhostError('INVALID_ARGUMENT', 'Invoke-CauRun -FailbackMode Policy (the roles\' failback windows) is not supported: use Immediate or NoFailback', { param: 'FailbackMode' });
  if (input.StopAfterMs !== undefined && !(Number.isSafeInteger(input.StopAfterMs) && input.StopAfterMs >= 0)) {
    throw new VmhostError('INVALID_ARGUMENT', `Invoke-CauRun -StopAfter: ${String(input.StopAfterMs)} ms is not a time span of 0 or more`, { param: 'StopAfter' });
  }
  const retries = opt('MaxRetriesPerNode') as number;
  if (!Number.isInteger(retries) || retries < 1) throw new VmhostError('INVALID_ARGUMENT', 'Invoke-CauRun -MaxRetriesPerNode: at least 1', { param: 'MaxRetriesPerNode' });
  return {
    RunId: meta.RunId, ClusterName: meta.ClusterName, By: meta.By, StartedAt: meta.Now.toISOString(), State: 'Running',
    Plugin: input.Plugin, Arguments: input.Arguments,
    MaxFailedNodes: opt('MaxFailedNodes') as number, MaxRetriesPerNode: retries, FailbackMode: opt('FailbackMode') as CauFailbackMode,
    RequireAllNodesOnline: input.RequireAllNodesOnline ?? false, TimeoutMs: opt('TimeoutMs') as number,
    ...(input.PreUpdateScript !== undefined ? { PreUpdateScript: input.PreUpdateScript } : {}),
    ...(input.PostUpdateScript !== undefined ? { PostUpdateScript: input.PostUpdateScript } : {}),
    ...(input.StopAfterMs !== undefined ? { StopAfterMs: input.StopAfterMs } : {}),
    Nodes: order.map((n): CauNodeRun => (n.State === 'Down'
      ? { Node: n.Name, Status: 'Failed', Attempts: 0, Message: 'the node was Down when the run began: not updated' }
      : { Node: n.Name, Status: 'Waiting', Attempts: 0 })),
  };
}

const DONE: readonly CauNodeStatus[] = ['Succeeded', 'Failed'];

/** The node the run works on now (the first not done), or none: the run is over. */
export function currentNode(run: CauRunRecord): CauNodeRun | undefined {
  return run.Nodes.find((n) => !DONE.includes(n.Status));
}

/** Nodes failed while the run worked on them (a node Down at the start counts: it was not updated). */
export function failedNodes(run: CauRunRecord): number {
  return run.Nodes.filter((n) => n.Status === 'Failed').length;
}

/** The step after `status` once it is done: the scripts' steps only when the run has them. */
export function nextStatus(run: CauRunOptions, status: CauNodeStatus): CauNodeStatus {
  switch (status) {
    case 'Waiting': return run.PreUpdateScript !== undefined ? 'PreUpdate' : 'Suspending';
    case 'PreUpdate': return 'Suspending';
    case 'Suspending': return 'Updating';
    case 'Updating': return 'Restarting';
    case 'Restarting': return 'Resuming';
    case 'Resuming': return run.PostUpdateScript !== undefined ? 'PostUpdate' : 'Succeeded';
    case 'PostUpdate': return 'Succeeded';
    case 'Succeeded':
    case 'Failed':
      return status;
  }
}

/** The request a step asks of its node, if it asks one. */
export function stageOf(status: CauNodeStatus): CauStage | undefined {
  if (status === 'PreUpdate') return 'PreUpdate';
  if (status === 'Updating') return 'Update';
  if (status === 'PostUpdate') return 'PostUpdate';
  return undefined;
}

/** `node`'s step done: on to the next one (a new request id when it asks one). */
export function advance(run: CauRunRecord, node: string, now: number, newId: () => string, change: Partial<CauNodeRun> = {}): CauRunRecord {
  return withNode(run, node, (n) => {
    const Status = nextStatus(run, n.Status);
    const done = DONE.includes(Status);
    return {
      ...n, ...change, Status, StepSince: now,
      ...(Status === 'Updating' ? { Attempts: n.Attempts + 1 } : {}),
      ...(stageOf(Status) !== undefined ? { RequestId: newId() } : {}),
      ...(done ? { EndedAt: new Date(now).toISOString() } : {}),
      ...(n.StartedAt === undefined ? { StartedAt: new Date(now).toISOString() } : {}),
    };
  });
}

/**
 * `node`'s step failed with `why`. A failed update is tried again while attempts remain (the node
 * stays suspended); otherwise the node fails — left Paused, its roles where the drain put them —
 * and more failed nodes than MaxFailedNodes end the run Failed with the reason.
 */
export function fail(run: CauRunRecord, node: string, why: string, now: number, newId: () => string): CauRunRecord {
  const n = run.Nodes.find((x) => x.Node === node)!;
  if (n.Status === 'Updating' && n.Attempts < run.MaxRetriesPerNode) {
    return withNode(run, node, (x) => ({ ...x, Attempts: x.Attempts + 1, RequestId: newId(), StepSince: now, Message: `attempt ${x.Attempts} failed: ${why}` }));
  }
  const after = withNode(run, node, (x) => ({ ...x, Status: 'Failed', Message: `${x.Status}: ${why}`, EndedAt: new Date(now).toISOString() }));
  if (failedNodes(after) > run.MaxFailedNodes) {
    return { ...after, State: 'Failed', EndedAt: new Date(now).toISOString(), Message: `node ${node} failed (${why}); ${failedNodes(after)} failed node(s) exceed MaxFailedNodes ${run.MaxFailedNodes}` };
  }
  return after;
}

/**
 * Invoke-CauRun -StopAfter: the run stops once its time is up and its current node has not begun
 * (a node being updated is finished first: a node left half-drained or mid-update helps nobody).
 * Undefined: go on; else the run as Stopping, with the nodes left out named — `finish` ends it Cancelled.
 */
export function stopAfterDue(run: CauRunRecord, now: number): CauRunRecord | undefined {
  if (run.StopAfterMs === undefined || run.State !== 'Running' || currentNode(run)?.Status !== 'Waiting') return undefined;
  if (now < Date.parse(run.StartedAt) + run.StopAfterMs) return undefined;
  const left = run.Nodes.filter((n) => n.Status === 'Waiting').map((n) => n.Node);
  return { ...run, State: 'Stopping', Message: `StopAfter ${Math.round(run.StopAfterMs / 1000)} s elapsed: not started ${left.join(', ')}` };
}

/** The run is over when no node is left to work on (or it was stopped or failed). */
export function finish(run: CauRunRecord, now: number): CauRunRecord {
  if (run.State !== 'Running' && run.State !== 'Stopping') return run;
  const end = new Date(now).toISOString();
  if (run.State === 'Stopping') return { ...run, State: 'Cancelled', EndedAt: end, Message: run.Message ?? 'stopped by Stop-CauRun' };
  if (currentNode(run) !== undefined) return run;
  const failed = failedNodes(run);
  return { ...run, State: failed > run.MaxFailedNodes ? 'Failed' : 'Succeeded', EndedAt: end, ...(failed > 0 ? { Message: `${failed} node(s) not updated (MaxFailedNodes ${run.MaxFailedNodes})` } : {}) };
}

function withNode(run: CauRunRecord, node: string, f: (n: CauNodeRun) => CauNodeRun): CauRunRecord {
  return { ...run, Nodes: run.Nodes.map((n) => (n.Node === node ? f(n) : n)) };
}
