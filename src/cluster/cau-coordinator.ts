// Drives a Cluster-Aware Updating run (cau-plan.ts) from the node that holds the coordinator key
// (cau-agent.ts). The run's record in etcd is the only state: each pass reads it, acts on the
// current node's step and writes the step's outcome in a txn conditioned on the record's revision
// and on this node still holding the coordinator key — so a coordinator that lost the key (its
// lease expired) writes nothing more, and the node that takes over continues from the recorded
// step. Each step's action may be repeated: the drain moves only what still runs there, the
// request to a node keeps its id (the node runs one id once), the resume is idempotent.
// A node never coordinates its own update: when the run reaches it, it lets go of the key and
// another node takes the run over.
import { randomUUID } from 'node:crypto';
import { isVmhostError, type ErrorCode } from '../common/index.ts';
import type { ClusterAdmin } from './cluster-admin.ts';
import type { ClusterNode } from './cluster-node.ts';
import { nodeState } from './keys.ts';
import { advance, currentNode, fail, finish, stageOf, stopAfterDue, type CauNodeRun, type CauRunRecord } from './cau-plan.ts';
import { cauPlugin } from './cau-plugin.ts';
import {
  CAU_COORDINATOR_KEY, CAU_RUN_KEY, cauRequestKey, cauResultKey, endRunOps,
  type CauCoordinatorRecord, type CauRequest, type CauResult,
} from './cau-keys.ts';

const POLL_MS = 500;
/** A node's answer may come this long after its command's own timeout (it reports from its next poll, perhaps after a restart). */
const ANSWER_GRACE_MS = 60_000;

const ETCD_TRANSIENT: readonly ErrorCode[] = ['CLUSTER_ETCD_UNREACHABLE', 'CLUSTER_ETCD_FAILED'];

type Outcome = { ok: Partial<CauNodeRun> } | { failed: string } | 'wait';

export class CauCoordinator {
  private readonly me: string;

  constructor(private readonly node: ClusterNode, private readonly admin: ClusterAdmin, private readonly signal: AbortSignal) {
    this.me = JSON.stringify({ Node: node.name } satisfies CauCoordinatorRecord);
  }

  /** Drive the run until it ends, this node must let go (its own update), or the key is lost. */
  async drive(): Promise<void> {
    while (!this.signal.aborted) {
      const kv = await this.node.etcd.get(CAU_RUN_KEY);
      if (!kv) return this.letGo();
      const run = JSON.parse(kv.value) as CauRunRecord;
      const cur = currentNode(run);
      if (run.State !== 'Running' || !cur) return this.end(finish(run, Date.now()), kv.modRevision);
      const stopped = stopAfterDue(run, Date.now());
      if (stopped) return this.end(finish(stopped, Date.now()), kv.modRevision);
      if (cur.Node === this.node.name) {
        this.node.event('Information', 'CLUSTER_CAU_HANDOVER', `CAU run ${run.RunId} reaches node ${this.node.name}: another node coordinates its update`);
        return this.letGo();
      }
      // etcd out of reach or without a leader for a moment is no verdict on the node: the step is tried again.
      const outcome = await this.step(run, cur).catch((e: unknown): Outcome => (isVmhostError(e) && ETCD_TRANSIENT.includes(e.code) ? 'wait' : { failed: (e as Error).message }));
      if (outcome === 'wait') { await new Promise((r) => setTimeout(r, POLL_MS)); continue; }
      const now = Date.now();
      const next = 'ok' in outcome ? advance(run, cur.Node, now, randomUUID, outcome.ok) : fail(run, cur.Node, outcome.failed, now, randomUUID);
      if ('failed' in outcome) this.node.event('Warning', 'CLUSTER_CAU_NODE_FAILED', `CAU run ${run.RunId}, node ${cur.Node}: ${cur.Status} failed: ${outcome.failed}`);
      else this.node.event('Information', 'CLUSTER_CAU_NODE_STEP', `CAU run ${run.RunId}, node ${cur.Node}: ${cur.Status} done, now ${next.Nodes.find((n) => n.Node === cur.Node)!.Status}`);
      if (!(await this.write(next, kv.modRevision))) return;
    }
  }

  /** One look at the current node's step: done, failed, or not yet. */
  private async step(run: CauRunRecord, cur: CauNodeRun): Promise<Outcome> {
    const s = await this.node.read();
    const state = nodeState(s, cur.Node);
    const since = cur.StepSince ?? Date.now();
    switch (cur.Status) {
      case 'Waiting':
        if (state === 'Down') return { failed: 'the node is Down' };
        return { ok: { VersionBefore: s.alive.get(cur.Node)?.Version ?? '' } };
      case 'Suspending': {
        if (state === 'Down') return { failed: 'the node is Down' };
        const v = await this.admin.suspendNode(cur.Node, true);
        return v.DrainStatus === 'Completed' ? { ok: {} } : { failed: `its drain ended ${v.DrainStatus}: some roles are still on it` };
      }
      case 'PreUpdate':
      case 'Updating':
      case 'PostUpdate':
        return this.request(run, cur, since);
      case 'Restarting': {
        // The updater ended (its result came from the node's daemon, perhaps a new one): the node must be a member again.
        if (state !== 'Down') return { ok: { VersionAfter: s.alive.get(cur.Node)?.Version ?? '' } };
        return Date.now() > since + run.TimeoutMs ? { failed: `the node did not come back Up within ${Math.round(run.TimeoutMs / 1000)} s` } : 'wait';
      }
      case 'Resuming':
        if (state === 'Down') return Date.now() > since + run.TimeoutMs ? { failed: 'the node is Down' } : 'wait';
        await this.admin.resumeNode(cur.Node, run.FailbackMode === 'Immediate' ? 'Immediate' : 'NoFailback');
        return { ok: {} };
      case 'Succeeded':
      case 'Failed':
        return { ok: {} };
    }
  }

  /** Ask the node to run the step's command (once per request id) and wait for its answer. */
  private async request(run: CauRunRecord, cur: CauNodeRun, since: number): Promise<Outcome> {
    const stage = stageOf(cur.Status)!;
    const command = stage === 'Update' ? (await cauPlugin(this.node.etcd, run.Plugin)).updateCommand(run.Arguments) : stage === 'PreUpdate' ? run.PreUpdateScript! : run.PostUpdateScript!;
    const req: CauRequest = { RunId: run.RunId, RequestId: cur.RequestId!, Stage: stage, Command: command, TimeoutMs: run.TimeoutMs };
    const asked = await this.node.etcd.get(cauRequestKey(cur.Node));
    if (!asked || (JSON.parse(asked.value) as CauRequest).RequestId !== req.RequestId) await this.node.etcd.put(cauRequestKey(cur.Node), JSON.stringify(req));
    const res = await this.node.etcd.get(cauResultKey(cur.Node));
    const r = res && (JSON.parse(res.value) as CauResult);
    if (!r || r.RequestId !== req.RequestId) {
      return Date.now() > since + run.TimeoutMs + ANSWER_GRACE_MS ? { failed: `node ${cur.Node} did not answer within ${Math.round((run.TimeoutMs + ANSWER_GRACE_MS) / 1000)} s` } : 'wait';
    }
    const tail = r.Output.trim().split('\n').slice(-5).join('\n');
    if (r.ExitCode === 0) return { ok: tail ? { Message: tail } : {} };
    return { failed: `${stage === 'Update' ? `the updater (${run.Plugin})` : `the ${stage} script`} ${r.ExitCode === null ? r.Message ?? 'did not end' : `exited ${r.ExitCode}`}${tail ? `: ${tail}` : ''}` };
  }

  /** Write the run's next state, if the record is unchanged and this node still coordinates. */
  private async write(run: CauRunRecord, modRevision: number): Promise<boolean> {
    const r = await this.node.etcd.txn(
      [{ key: CAU_RUN_KEY, modRevision }, { key: CAU_COORDINATOR_KEY, value: this.me }],
      [{ put: CAU_RUN_KEY, value: JSON.stringify(run) }],
    );
    return r.succeeded;
  }

  /** The run is over: its report is kept, the run's keys go (a new run may start). */
  private async end(run: CauRunRecord, modRevision: number): Promise<void> {
    const r = await this.node.etcd.txn(
      [{ key: CAU_RUN_KEY, modRevision }, { key: CAU_COORDINATOR_KEY, value: this.me }],
      endRunOps(run),
    );
    if (!r.succeeded) return;
    const failed = run.Nodes.filter((n) => n.Status === 'Failed').map((n) => n.Node);
    this.node.event(run.State === 'Succeeded' ? 'Information' : 'Warning', 'CLUSTER_CAU_RUN_ENDED',
      `CAU run ${run.RunId} ${run.State}${run.Message ? `: ${run.Message}` : ''}${failed.length > 0 ? ` (not updated: ${failed.join(', ')})` : ''}`);
  }

  private async letGo(): Promise<void> {
    await this.node.etcd.txn([{ key: CAU_COORDINATOR_KEY, value: this.me }], [{ delete: CAU_COORDINATOR_KEY }]);
  }
}
