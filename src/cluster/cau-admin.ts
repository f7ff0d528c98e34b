// Cluster-Aware Updating's cmdlets, run by whichever node the administrator reaches:
// Invoke-CauRun writes the run (one at a time: a txn on its absent key) and every node's agent
// does the rest (cau-agent.ts); Get-CauRun reads it; Stop-CauRun marks it Stopping (the
// coordinator ends it at its next step); Get-CauReport reads finished runs; Test-CauSetup checks
// that a run could go through: every node Up, every running role movable off its node, quorum
// holding with any one node down. Invoke-CauScan asks every node's plug-in what it would install
// (cau-agent.ts answers); Get-/Register-/Unregister-CauPlugin keep the registered plug-ins.
import { randomUUID } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { EtcdCompare, EtcdOp } from './etcd-client.ts';
import { readClusterLog } from './cluster-log.ts';
import { nodeState } from './keys.ts';
import { planDrain } from './placement.ts';
import { quorumConfig } from './quorum.ts';
import { currentNode, planRun, type CauNodeRun, type CauRunRecord, type PlanInput } from './cau-plan.ts';
import { selectReports, type CauReportSelection } from './cau-report-query.ts';
import { cauPlugin, cauPlugins, pluginRecord, type CauPluginRecord } from './cau-plugin.ts';
import {
  CAU_COORDINATOR_KEY, CAU_REPORT_PREFIX, CAU_ROLE_KEY, CAU_RUN_KEY, CAU_SCAN_PREFIX, CAU_TRACE_PREFIX, cauPluginKey, endRunOps,
  type CauCoordinatorRecord, type CauScanRequest, type CauScanResult, type CauTraceResult,
} from './cau-keys.ts';

/** How long a node's scan command may take; the asking node waits a little longer for its answer. */
export const CAU_SCAN_TIMEOUT_MS = 120_000;
const SCAN_ANSWER_GRACE_MS = 5_000;
/** How long Save-CauDebugTrace waits for the nodes' plug-in outputs (reading files: quick where the node answers at all). */
const TRACE_WAIT_MS = 15_000;

export interface CauNodeView extends CauNodeRun { ClusterNodeState?: string }
/** Get-CauRun: `RunState` NotRunning when no run is in progress (then the rest is absent). */
export interface CauRunView {
  ClusterName: string; RunState: string; RunId?: string; RunStartTime?: string; CurrentOrchestrator?: string; CurrentNode?: string;
  Plugin?: string; Message?: string; NodeStatus?: CauNodeView[];
}
export interface CauReportView {
  ClusterName: string; RunId: string; RunStartTime: string; RunDuration: string; ClusterResult: string; Plugin: string;
  NodesSucceeded: number; NodesFailed: number; Message?: string; NodeResults?: CauNodeRun[];
  /** The self-updating role's run time that started the run (absent: Invoke-CauRun or -UpdateNow). */
  ScheduledFor?: string;
}
/** Invoke-CauScan's answer for one node: `State` Scanned (its Updates), Failed (the scan command's error) or Unreachable. */
export interface CauScanView { ClusterName: string; NodeName: string; State: 'Scanned' | 'Failed' | 'Unreachable'; UpdateCount: number; Updates: string[]; Message?: string }
export interface CauPluginView { Name: string; BuiltIn: boolean; Description: string; UpdateCommand?: string; ScanCommand?: string }
export interface CauSetupCheck { Title: string; State: 'Passed' | 'Failed' | 'Warning'; Detail: string }

function duration(from: string, to: string | undefined): string {
  const s = Math.max(0, Math.round(((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000));
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function reportView(r: CauRunRecord, detailed: boolean): CauReportView {
  return {
    ClusterName: r.ClusterName, RunId: r.RunId, RunStartTime: r.StartedAt, RunDuration: duration(r.StartedAt, r.EndedAt), ClusterResult: r.State, Plugin: r.Plugin,
    ...(r.ScheduledFor !== undefined ? { ScheduledFor: r.ScheduledFor } : {}),
    NodesSucceeded: r.Nodes.filter((n) => n.Status === 'Succeeded').length, NodesFailed: r.Nodes.filter((n) => n.Status === 'Failed').length,
    ...(r.Message !== undefined ? { Message: r.Message } : {}), ...(detailed ? { NodeResults: r.Nodes } : {}),
  };
}

/**
 * Plan a run and write it: one at a time (a txn on the run key's absence) and only while the
 * caller's own `compares` hold, with the caller's `ops(run)` in the same txn. Undefined: the txn
 * failed (a run in progress, or one of the caller's conditions).
 */
export async function writeRun(node: ClusterNode, input: PlanInput, meta: { ScheduledFor?: string; compares?: EtcdCompare[]; ops?: (run: CauRunRecord) => EtcdOp[] } = {}): Promise<CauRunRecord | undefined> {
  (await cauPlugin(node.etcd, input.Plugin)).updateCommand(input.Arguments); // its arguments are checked before anything is written
  const s = await node.read();
  node.assertMember(s);
  const nodes = [...s.nodes.keys()].map((Name) => ({ Name, State: nodeState(s, Name) }));
  const planned = planRun(input, nodes, { RunId: randomUUID(), ClusterName: s.config!.Name, By: node.name, Now: new Date() });
  const run: CauRunRecord = meta.ScheduledFor !== undefined ? { ...planned, ScheduledFor: meta.ScheduledFor } : planned;
  const r = await node.etcd.txn([{ key: CAU_RUN_KEY, absent: true }, ...(meta.compares ?? [])], [{ put: CAU_RUN_KEY, value: JSON.stringify(run) }, ...(meta.ops?.(run) ?? [])]);
  if (!r.succeeded) return undefined;
  node.event('Information', 'CLUSTER_CAU_RUN_STARTED', `CAU run ${run.RunId} started (${run.Plugin}${meta.ScheduledFor ? `, the self-updating role's run of ${meta.ScheduledFor}` : ''}): nodes ${run.Nodes.map((n) => n.Node).join(', ')}, MaxFailedNodes ${run.MaxFailedNodes}, FailbackMode ${run.FailbackMode}`);
  return run;
}

function view(p: { name: string; builtIn: boolean; description: string }, kv: { value: string } | undefined): CauPluginView {
  const rec = kv && (JSON.parse(kv.value) as CauPluginRecord);
  return { Name: p.name, BuiltIn: p.builtIn, Description: p.description, ...(rec ? { UpdateCommand: rec.UpdateCommand, ...(rec.ScanCommand !== undefined ? { ScanCommand: rec.ScanCommand } : {}) } : {}) };
}

export class CauAdmin {
  constructor(private readonly node: ClusterNode) {}

  private async cluster(): Promise<string> {
    const s = await this.node.read();
    this.node.assertMember(s);
    return s.config!.Name;
  }

  /** Invoke-CauRun: the run is planned and written; the nodes' agents carry it out. -ForceRecovery first ends a run left in progress. */
  async invoke(input: PlanInput, forceRecovery = false): Promise<CauRunView> {
    let run = await writeRun(this.node, input);
    if (!run && forceRecovery && (await this.recover())) run = await writeRun(this.node, input);
    if (!run) throw new VmhostError('CLUSTER_CAU_RUN_IN_PROGRESS', `A Cluster-Aware Updating run is in progress on cluster '${await this.cluster()}' (Get-CauRun; Stop-CauRun ends it at its next step; Invoke-CauRun -ForceRecovery ends it now)`, {});
    return this.run(false);
  }

  /**
   * Invoke-CauRun -ForceRecovery. A coordinator that dies loses its lease and another node takes
   * the run over by itself; what that takeover cannot clear is a run whose coordinator key is
   * held by a live node that no longer drives it (its agent wedged: the key lives as long as the
   * node's lease), or one that waits on a node's answer for as long as its timeout allows. Recovery
   * ends such a run now — in one txn on the run record's revision: its record kept as a Cancelled
   * report saying where it was, the coordinator key and the nodes' requests and results deleted —
   * so a coordinator still busy with it writes nothing more (its writes are conditioned on the
   * record). A node the old run had paused stays Paused until the new run (or Resume-ClusterNode)
   * resumes it; an updater it started may still finish on its node and report to nobody.
   * False: no run to recover (the caller's own write then decides).
   */
  private async recover(): Promise<boolean> {
    for (;;) {
      const kv = await this.node.etcd.get(CAU_RUN_KEY);
      if (!kv) return false;
      const old = JSON.parse(kv.value) as CauRunRecord;
      const coord = await this.node.etcd.get(CAU_COORDINATOR_KEY);
      const where = currentNode(old);
      const why = `recovered by Invoke-CauRun -ForceRecovery on ${this.node.name}${where ? ` at node ${where.Node} (${where.Status})` : ''}${coord ? `, coordinated by ${(JSON.parse(coord.value) as CauCoordinatorRecord).Node}` : ''}`;
      const ended: CauRunRecord = { ...old, State: 'Cancelled', EndedAt: new Date().toISOString(), Message: old.Message ? `${old.Message}; ${why}` : why };
      const r = await this.node.etcd.txn([{ key: CAU_RUN_KEY, modRevision: kv.modRevision }], endRunOps(ended));
      if (r.succeeded) {
        this.node.event('Warning', 'CLUSTER_CAU_RUN_RECOVERED', `CAU run ${old.RunId} ended: ${why}`);
        return true;
      }
    }
  }

  /** Get-CauRun [-ShowClusterNodeState]. */
  async run(showNodeState: boolean): Promise<CauRunView> {
    const ClusterName = await this.cluster();
    const kv = await this.node.etcd.get(CAU_RUN_KEY);
    if (!kv) return { ClusterName, RunState: 'NotRunning' };
    const run = JSON.parse(kv.value) as CauRunRecord;
    const coord = await this.node.etcd.get(CAU_COORDINATOR_KEY);
    const s = showNodeState ? await this.node.read() : undefined;
    return {
      ClusterName, RunState: run.State, RunId: run.RunId, RunStartTime: run.StartedAt, Plugin: run.Plugin,
      CurrentOrchestrator: coord ? (JSON.parse(coord.value) as CauCoordinatorRecord).Node : '', CurrentNode: currentNode(run)?.Node ?? '',
      ...(run.Message !== undefined ? { Message: run.Message } : {}),
      NodeStatus: run.Nodes.map((n) => (s ? { ...n, ClusterNodeState: nodeState(s, n.Node) } : n)),
    };
  }

  /** Stop-CauRun: the coordinator ends the run at its next step (Cancelled); a node it had paused stays Paused. */
  async stop(): Promise<CauRunView> {
    for (;;) {
      const kv = await this.node.etcd.get(CAU_RUN_KEY);
      if (!kv) throw new VmhostError('NOT_FOUND', 'No Cluster-Aware Updating run is in progress', {});
      const run = JSON.parse(kv.value) as CauRunRecord;
      if (run.State !== 'Running') return this.run(false);
      const stopped: CauRunRecord = { ...run, State: 'Stopping', Message: `stopped by Stop-CauRun on ${this.node.name}` };
      if ((await this.node.etcd.txn([{ key: CAU_RUN_KEY, modRevision: kv.modRevision }], [{ put: CAU_RUN_KEY, value: JSON.stringify(stopped) }])).succeeded) return this.run(false);
    }
  }

  /** Get-CauReport [-Last] [-Detailed] [-StartDate] [-EndDate]: finished runs, oldest first (cau-report-query.ts). */
  async reports(q: CauReportSelection, detailed: boolean): Promise<CauReportView[]> {
    await this.cluster();
    const { kvs } = await this.node.etcd.range(CAU_REPORT_PREFIX);
    return selectReports(kvs.map((kv) => JSON.parse(kv.value) as CauRunRecord), q).map((r) => reportView(r, detailed));
  }

  /**
   * Invoke-CauScan: every node runs the plug-in's scan command (installing nothing) and answers
   * with the updates it lists; a Down node, or one that does not answer in time, is Unreachable.
   */
  async scan(plugin: string, args: Record<string, string>): Promise<CauScanView[]> {
    const command = (await cauPlugin(this.node.etcd, plugin)).scanCommand(args);
    const s = await this.node.read();
    this.node.assertMember(s);
    const ClusterName = s.config!.Name;
    const names = [...s.nodes.keys()].sort();
    const ScanId = randomUUID();
    const wait = CAU_SCAN_TIMEOUT_MS + SCAN_ANSWER_GRACE_MS;
    const answers = await this.askNodes<CauScanResult>(CAU_SCAN_PREFIX, ScanId, { ScanId, Command: command, TimeoutMs: CAU_SCAN_TIMEOUT_MS } satisfies CauScanRequest, names.filter((n) => nodeState(s, n) !== 'Down'), wait);
    return names.map((NodeName): CauScanView => {
      const a = answers.get(NodeName);
      if (!a) {
        const why = nodeState(s, NodeName) === 'Down' ? 'the node is Down (no live etcd lease)' : `no answer within ${wait / 1000} s`;
        return { ClusterName, NodeName, State: 'Unreachable', UpdateCount: 0, Updates: [], Message: why };
      }
      if (a.Error !== undefined) return { ClusterName, NodeName, State: 'Failed', UpdateCount: 0, Updates: [], Message: a.Error };
      return { ClusterName, NodeName, State: 'Scanned', UpdateCount: a.Updates!.length, Updates: a.Updates! };
    });
  }

  /**
   * Ask every node in `nodes` through `<prefix><id>/request` (cau-agent.ts answers) and collect
   * their answers `<prefix><id>/<node>` until all came or `waitMs` passed; the keys go after.
   */
  private async askNodes<A extends { Node: string }>(prefix: string, id: string, request: unknown, nodes: readonly string[], waitMs: number): Promise<Map<string, A>> {
    const answers = new Map<string, A>();
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), waitMs);
    try {
      const rev = await this.node.etcd.put(`${prefix}${id}/request`, JSON.stringify(request));
      // From the request's revision on: answers written before the watch began are replayed.
      await this.node.etcd.watch(`${prefix}${id}/`, rev + 1, (e) => {
        if (e.type !== 'PUT' || e.kv.key.endsWith('/request')) return;
        const a = JSON.parse(e.kv.value) as A;
        answers.set(a.Node, a);
        if (nodes.every((n) => answers.has(n))) stop.abort();
      }, stop.signal);
    } finally {
      clearTimeout(timer);
      const { kvs } = await this.node.etcd.range(`${prefix}${id}/`).catch(() => ({ kvs: [] }));
      for (const kv of kvs) await this.node.etcd.delete(kv.key).catch(() => undefined);
    }
    return answers;
  }

  /**
   * Save-CauDebugTrace: what explains the cluster's updating runs, as the entries of an archive —
   * the run in progress and its coordinator, every finished run's record, each node's CAU events
   * from the cluster log (Get-ClusterLog's, CLUSTER_CAU_*), and each node's plug-in outputs (the
   * updater's and scripts' output files it keeps, cau-runner.ts). A node that is Down, or silent
   * for TRACE_WAIT_MS, is named in `missing.txt`.
   */
  async debugTrace(): Promise<{ Name: string; Data: Buffer }[]> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const names = [...s.nodes.keys()].sort();
    const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, 2) + '\n');
    const entries: { Name: string; Data: Buffer }[] = [];
    const [run, coord, reports, log] = await Promise.all([
      this.node.etcd.get(CAU_RUN_KEY), this.node.etcd.get(CAU_COORDINATOR_KEY), this.node.etcd.range(CAU_REPORT_PREFIX), readClusterLog(this.node.etcd, {}),
    ]);
    if (run) entries.push({ Name: 'run.json', Data: json({ Run: JSON.parse(run.value) as unknown, Coordinator: coord ? JSON.parse(coord.value) as unknown : null }) });
    for (const kv of reports.kvs) entries.push({ Name: `reports/${(JSON.parse(kv.value) as CauRunRecord).RunId}.json`, Data: Buffer.from(kv.value) });
    const answers = await this.askNodes<CauTraceResult>(CAU_TRACE_PREFIX, randomUUID(), {}, names.filter((n) => nodeState(s, n) !== 'Down'), TRACE_WAIT_MS);
    const missing: string[] = [];
    for (const n of names) {
      const lines = log.filter((l) => l.Node === n && l.Code.startsWith('CLUSTER_CAU_')).map((l) => `${l.Time} ${l.Level} ${l.Code} ${l.Message}`);
      entries.push({ Name: `nodes/${n}/cau.log`, Data: Buffer.from(lines.length > 0 ? lines.join('\n') + '\n' : '') });
      const a = answers.get(n);
      if (!a) missing.push(`${n}: ${nodeState(s, n) === 'Down' ? 'Down' : `no answer within ${TRACE_WAIT_MS / 1000} s`}: its plug-in outputs are not here`);
      for (const f of a?.Files ?? []) entries.push({ Name: `nodes/${n}/output/${f.Name}`, Data: Buffer.from(f.Base64, 'base64') });
    }
    if (missing.length > 0) entries.push({ Name: 'missing.txt', Data: Buffer.from(missing.join('\n') + '\n') });
    this.node.event('Information', 'CLUSTER_CAU_DEBUG_TRACE', `CAU debug trace collected on ${this.node.name}: ${entries.length} entries${missing.length > 0 ? `; ${missing.length} node(s) missing` : ''}`);
    return entries;
  }

  /** Get-CauPlugin [-Name]: the built-in plug-ins, then the registered ones. */
  async plugins(name?: string): Promise<CauPluginView[]> {
    await this.cluster();
    if (name !== undefined) return [view(await cauPlugin(this.node.etcd, name), await this.node.etcd.get(cauPluginKey(name)))];
    const all = await cauPlugins(this.node.etcd);
    const { kvs } = await this.node.etcd.range(cauPluginKey(''));
    return all.map((p) => view(p, kvs.find((kv) => kv.key === cauPluginKey(p.name))));
  }

  /** Register-CauPlugin: a named command template (a name already registered is refused). */
  async registerPlugin(input: CauPluginRecord): Promise<CauPluginView> {
    await this.cluster();
    const rec = pluginRecord(input);
    const r = await this.node.etcd.txn([{ key: cauPluginKey(rec.Name), absent: true }], [{ put: cauPluginKey(rec.Name), value: JSON.stringify(rec) }]);
    if (!r.succeeded) throw new VmhostError('ALREADY_EXISTS', `A CAU plugin '${rec.Name}' is registered already (Unregister-CauPlugin first)`, { plugin: rec.Name });
    return (await this.plugins(rec.Name))[0]!;
  }

  /** Unregister-CauPlugin: refused for a built-in, and for the plug-in of the run in progress or of the self-updating role. */
  async unregisterPlugin(name: string): Promise<void> {
    const p = await cauPlugin(this.node.etcd, name);
    if (p.builtIn) throw new VmhostError('INVALID_ARGUMENT', `'${p.name}' is a built-in CAU plugin: it cannot be unregistered`, { plugin: p.name });
    const [run, role] = await Promise.all([this.node.etcd.get(CAU_RUN_KEY), this.node.etcd.get(CAU_ROLE_KEY)]);
    // The run's record names its plug-in as Plugin; the role's as Run.Plugin.
    const uses = (v: string | undefined, what: string): void => {
      const rec = v === undefined ? undefined : JSON.parse(v) as { Plugin?: string; Run?: { Plugin: string } };
      if ((rec?.Plugin ?? rec?.Run?.Plugin)?.toLowerCase() === p.name.toLowerCase()) throw new VmhostError('INVALID_STATE', `CAU plugin '${p.name}' is used by ${what}`, { plugin: p.name });
    };
    uses(run?.value, 'the updating run in progress');
    uses(role?.value, 'the self-updating role (Set-CauClusterRole -CauPluginName changes it)');
    await this.node.etcd.delete(cauPluginKey(p.name));
  }

  /** Test-CauSetup: what a run needs of the cluster now. */
  async testSetup(): Promise<CauSetupCheck[]> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const out: CauSetupCheck[] = [];
    const names = [...s.nodes.keys()].sort();
    const notUp = names.filter((n) => nodeState(s, n) !== 'Up');
    out.push({ Title: 'All cluster nodes are Up', State: notUp.length === 0 ? 'Passed' : 'Failed', Detail: notUp.length === 0 ? names.join(', ') : notUp.map((n) => `${n} is ${nodeState(s, n)}`).join(', ') });
    const stuck: string[] = [];
    for (const n of names) {
      const running = [...s.owners.entries()].filter(([id, o]) => o.Node === n && s.states.get(id)?.State === 'Online').map(([id]) => id);
      const movable = new Set(planDrain(s, n).map((p) => p.vmId));
      stuck.push(...running.filter((id) => !movable.has(id)).map((id) => `${s.groups.get(id)?.Name ?? id} on ${n}`));
    }
    out.push({ Title: 'Every running role can move off its node', State: stuck.length === 0 ? 'Passed' : 'Failed', Detail: stuck.length === 0 ? 'each has another Up possible owner' : `no other Up possible owner: ${stuck.join(', ')}` });
    const members = await this.node.etcd.members();
    const voters = members.filter((m) => !m.isLearner).length;
    const majority = Math.floor(voters / 2) + 1;
    const holds = voters - 1 >= majority;
    out.push({
      Title: 'Quorum holds with one node down', State: holds ? 'Passed' : 'Failed',
      Detail: `${voters} etcd vote(s)${quorumConfig(s.config!).Witness ? ' (with the file share witness)' : ''}, majority ${majority}: ${holds ? `${voters - 1} left while a node restarts` : 'a node restarting would stop the cluster'}`,
    });
    const running = await this.node.etcd.get(CAU_RUN_KEY);
    out.push({ Title: 'No updating run in progress', State: running ? 'Warning' : 'Passed', Detail: running ? `run ${(JSON.parse(running.value) as CauRunRecord).RunId} is in progress` : 'none' });
    return out;
  }
}
