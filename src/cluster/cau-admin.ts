// Cluster-Aware Updating's cmdlets, run by whichever node the administrator reaches:
// Invoke-CauRun writes the run (one at a time: a txn on its absent key) and every node's agent
// does the rest (cau-agent.ts); Get-CauRun reads it; Stop-CauRun marks it Stopping (the
// coordinator ends it at its next step); Get-CauReport reads finished runs; Test-CauSetup checks
// that a run could go through: every node Up, every running role movable off its node, quorum
// holding with any one node down.
import { randomUUID } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { nodeState } from './keys.ts';
import { planDrain } from './placement.ts';
import { quorumConfig } from './quorum.ts';
import { currentNode, planRun, type CauNodeRun, type CauRunRecord, type PlanInput } from './cau-plan.ts';
import { cauPlugin } from './cau-plugin.ts';
import { CAU_COORDINATOR_KEY, CAU_REPORT_PREFIX, CAU_RUN_KEY, type CauCoordinatorRecord } from './cau-keys.ts';

export interface CauNodeView extends CauNodeRun { ClusterNodeState?: string }
/** Get-CauRun: `RunState` NotRunning when no run is in progress (then the rest is absent). */
export interface CauRunView {
  ClusterName: string; RunState: string; RunId?: string; RunStartTime?: string; CurrentOrchestrator?: string; CurrentNode?: string;
  Plugin?: string; Message?: string; NodeStatus?: CauNodeView[];
}
export interface CauReportView {
  ClusterName: string; RunId: string; RunStartTime: string; RunDuration: string; ClusterResult: string; Plugin: string;
  NodesSucceeded: number; NodesFailed: number; Message?: string; NodeResults?: CauNodeRun[];
}
export interface CauSetupCheck { Title: string; State: 'Passed' | 'Failed' | 'Warning'; Detail: string }

function duration(from: string, to: string | undefined): string {
  const s = Math.max(0, Math.round(((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000));
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function reportView(r: CauRunRecord, detailed: boolean): CauReportView {
  return {
    ClusterName: r.ClusterName, RunId: r.RunId, RunStartTime: r.StartedAt, RunDuration: duration(r.StartedAt, r.EndedAt), ClusterResult: r.State, Plugin: r.Plugin,
    NodesSucceeded: r.Nodes.filter((n) => n.Status === 'Succeeded').length, NodesFailed: r.Nodes.filter((n) => n.Status === 'Failed').length,
    ...(r.Message !== undefined ? { Message: r.Message } : {}), ...(detailed ? { NodeResults: r.Nodes } : {}),
  };
}

export class CauAdmin {
  constructor(private readonly node: ClusterNode) {}

  private async cluster(): Promise<string> {
    const s = await this.node.read();
    this.node.assertMember(s);
    return s.config!.Name;
  }

  /** Invoke-CauRun: the run is planned and written; the nodes' agents carry it out. */
  async invoke(input: PlanInput): Promise<CauRunView> {
    cauPlugin(input.Plugin).updateCommand(input.Arguments); // its arguments are checked before anything is written
    const s = await this.node.read();
    this.node.assertMember(s);
    const nodes = [...s.nodes.keys()].map((Name) => ({ Name, State: nodeState(s, Name) }));
    const run = planRun(input, nodes, { RunId: randomUUID(), ClusterName: s.config!.Name, By: this.node.name, Now: new Date() });
    const r = await this.node.etcd.txn([{ key: CAU_RUN_KEY, absent: true }], [{ put: CAU_RUN_KEY, value: JSON.stringify(run) }]);
    if (!r.succeeded) throw new VmhostError('CLUSTER_CAU_RUN_IN_PROGRESS', `A Cluster-Aware Updating run is in progress on cluster '${run.ClusterName}' (Get-CauRun; Stop-CauRun ends it)`, {});
    this.node.event('Information', 'CLUSTER_CAU_RUN_STARTED', `CAU run ${run.RunId} started (${run.Plugin}): nodes ${run.Nodes.map((n) => n.Node).join(', ')}, MaxFailedNodes ${run.MaxFailedNodes}, FailbackMode ${run.FailbackMode}`);
    return this.run(false);
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

  /** Get-CauReport [-Last] [-Detailed]: finished runs, oldest first. */
  async reports(last: boolean, detailed: boolean): Promise<CauReportView[]> {
    await this.cluster();
    const { kvs } = await this.node.etcd.range(CAU_REPORT_PREFIX);
    const runs = kvs.map((kv) => JSON.parse(kv.value) as CauRunRecord).sort((a, b) => a.StartedAt.localeCompare(b.StartedAt));
    return (last ? runs.slice(-1) : runs).map((r) => reportView(r, detailed));
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
