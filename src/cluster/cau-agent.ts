// Every node's Cluster-Aware Updating agent, beside its loop: once a second it (1) runs what the
// current run asks of this node (cau-runner.ts) and reports how it ended, and (2) takes the
// coordination of a run nobody coordinates — a new run, or one whose coordinator died or let go
// because the run reached its own node — by a txn on the absent coordinator key, bound to this
// node's lease, and drives it (cau-coordinator.ts); (3) answers Invoke-CauScan's requests, running
// the plug-in's scan command, and Save-CauDebugTrace's, with this node's plug-in outputs; (4) on
// the leader, starts the self-updating role's due run (cau-role.ts).
import { execFile } from 'node:child_process';
import type { ClusterAdmin } from './cluster-admin.ts';
import type { ClusterNode } from './cluster-node.ts';
import { currentNode, type CauRunRecord } from './cau-plan.ts';
import { CauCoordinator } from './cau-coordinator.ts';
import { CauRunner } from './cau-runner.ts';
import { startDueRun } from './cau-role.ts';
import {
  CAU_COORDINATOR_KEY, CAU_RUN_KEY, CAU_SCAN_PREFIX, CAU_TRACE_PREFIX, cauRequestKey, cauResultKey,
  type CauCoordinatorRecord, type CauRequest, type CauResult, type CauScanRequest, type CauScanResult, type CauTraceResult,
} from './cau-keys.ts';

const TICK_MS = 1000;
const SCAN_OUTPUT_MAX = 4 * 1024 * 1024;
/** A node's plug-in outputs in its Save-CauDebugTrace answer: one etcd value (1.5 MiB at most by etcd's default) holds them in base64. */
const TRACE_FILE_MAX = 64 * 1024;
const TRACE_TOTAL_MAX = 768 * 1024;

export class CauAgent {
  private readonly abort = new AbortController();
  private readonly runner: CauRunner;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private driving: Promise<void> | undefined;
  private stopping = false;
  /** Requests (Invoke-CauScan's, Save-CauDebugTrace's) this daemon answered or is answering, until their request key is gone. */
  private readonly answered = new Set<string>();

  private constructor(private readonly node: ClusterNode, private readonly admin: ClusterAdmin, dataDir: string) {
    this.runner = new CauRunner(dataDir, { VMHOST_CAU_NODE: node.name, VMHOSTD_PID: String(process.pid), VMHOST_DATA_DIR: dataDir });
  }

  static start(node: ClusterNode, admin: ClusterAdmin, dataDir: string): CauAgent {
    const a = new CauAgent(node, admin, dataDir);
    a.timer = setInterval(() => a.kick(), TICK_MS);
    a.kick();
    return a;
  }

  private kick(): void {
    if (this.ticking || this.abort.signal.aborted) return;
    this.ticking = this.tick().catch(() => undefined).finally(() => { this.ticking = undefined; }); // etcd unreachable: next tick
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    await this.runner.collect(async (r) => {
      if (this.stopping) throw new Error('stopping: the next daemon reports it'); // its files stay
      await this.node.etcd.put(cauResultKey(this.node.name), JSON.stringify(r satisfies CauResult));
    });
    await this.answer(CAU_SCAN_PREFIX, (v) => this.scan(JSON.parse(v) as CauScanRequest));
    await this.answer(CAU_TRACE_PREFIX, async () => ({
      Node: this.node.name, Files: (await this.runner.outputs(TRACE_FILE_MAX, TRACE_TOTAL_MAX)).map((f) => ({ Name: f.Name, Base64: f.Data.toString('base64') })),
    } satisfies CauTraceResult));
    const kv = await this.node.etcd.get(CAU_RUN_KEY);
    if (kv) {
      const run = JSON.parse(kv.value) as CauRunRecord;
      await this.serve(run);
      if (!this.driving && currentNode(run)?.Node !== this.node.name) await this.coordinate();
    }
    // Last: whatever the schedule's start meets, the run's own work above was done first.
    await startDueRun(this.node, new Date());
  }

  /** Requests `<prefix><id>/request` not yet answered here: each worked once, beside the tick, its answer put at `<prefix><id>/<node>`. */
  private async answer(prefix: string, work: (request: string) => Promise<unknown>): Promise<void> {
    const { kvs } = await this.node.etcd.range(prefix);
    const asked = new Map(kvs.filter((kv) => kv.key.endsWith('/request')).map((kv) => [kv.key.slice(0, -'request'.length), kv.value]));
    for (const k of this.answered) if (k.startsWith(prefix) && !asked.has(k)) this.answered.delete(k);
    for (const [k, value] of asked) {
      if (this.answered.has(k)) continue;
      this.answered.add(k);
      void work(value).then((r) => this.node.etcd.put(`${k}${this.node.name}`, JSON.stringify(r))).catch(() => undefined); // the asking node reports no answer
    }
  }

  /** The scan command's output lines are the updates; it installs nothing (the plug-in's promise, not ours to check). */
  private scan(req: CauScanRequest): Promise<CauScanResult> {
    return new Promise((resolve) => {
      execFile('/bin/sh', ['-c', req.Command], { timeout: req.TimeoutMs, killSignal: 'SIGKILL', maxBuffer: SCAN_OUTPUT_MAX, env: { ...process.env, ...this.runner.env } }, (err, stdout, stderr) => {
        if (!err) { resolve({ Node: this.node.name, Updates: stdout.split('\n').map((l) => l.trim()).filter(Boolean) }); return; }
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        const why = err.killed ? `the scan command did not end within ${Math.round(req.TimeoutMs / 1000)} s: killed` : `the scan command exited ${String(err.code)}`;
        resolve({ Node: this.node.name, Error: tail ? `${why}: ${tail}` : why });
      });
    });
  }

  /** The run's request to this node, run once (a request id already started or answered here is not run again). */
  private async serve(run: CauRunRecord): Promise<void> {
    const cur = currentNode(run);
    if (cur?.Node !== this.node.name || cur.RequestId === undefined) return;
    const kv = await this.node.etcd.get(cauRequestKey(this.node.name));
    const req = kv && (JSON.parse(kv.value) as CauRequest);
    if (!req || req.RequestId !== cur.RequestId || await this.runner.known(req.RequestId)) return;
    const done = await this.node.etcd.get(cauResultKey(this.node.name));
    if (done && (JSON.parse(done.value) as CauResult).RequestId === req.RequestId) return;
    this.node.event('Information', 'CLUSTER_CAU_NODE_RUN', `CAU run ${req.RunId}: node ${this.node.name} runs its ${req.Stage} command`);
    await this.runner.start(req);
  }

  private async coordinate(): Promise<void> {
    const me = JSON.stringify({ Node: this.node.name } satisfies CauCoordinatorRecord);
    const r = await this.node.etcd.txn([{ key: CAU_COORDINATOR_KEY, absent: true }], [{ put: CAU_COORDINATOR_KEY, value: me, lease: this.node.leaseId }]);
    // Still ours (this node's drive stopped on an error it could not ride out): drive on.
    if (!r.succeeded && (await this.node.etcd.get(CAU_COORDINATOR_KEY))?.value !== me) return;
    if (r.succeeded) this.node.event('Information', 'CLUSTER_CAU_COORDINATOR', `Node ${this.node.name} coordinates the Cluster-Aware Updating run now`);
    this.driving = new CauCoordinator(this.node, this.admin, this.abort.signal).drive()
      .catch((e: unknown) => this.node.event('Warning', 'CLUSTER_CAU_COORDINATOR_FAILED', `CAU coordination on ${this.node.name}: ${(e as Error).message}`))
      .finally(() => { this.driving = undefined; });
  }

  /**
   * The daemon is stopping: from now on this node reports no command's end. An updater that
   * restarts the daemon ends while the old daemon stops; its end is the next daemon's to report,
   * so the run never sees the update done while the node still runs its old version.
   */
  stop(): void {
    this.stopping = true;
  }

  /**
   * Whether the current run is updating this node now: its daemon stopping then is the update
   * restarting it, and the node keeps its etcd vote (it is back within the run's timeout).
   */
  async updatingThisNode(): Promise<boolean> {
    const kv = await this.node.etcd.get(CAU_RUN_KEY).catch(() => undefined);
    return kv !== undefined && currentNode(JSON.parse(kv.value) as CauRunRecord)?.Node === this.node.name;
  }

  async close(): Promise<void> {
    this.abort.abort();
    clearInterval(this.timer);
    await this.ticking;
    // A coordinator stopping lets go at once, so another node continues without waiting for its lease to expire.
    await this.driving;
    await this.node.etcd.txn([{ key: CAU_COORDINATOR_KEY, value: JSON.stringify({ Node: this.node.name } satisfies CauCoordinatorRecord) }], [{ delete: CAU_COORDINATOR_KEY }]).catch(() => undefined);
  }
}
