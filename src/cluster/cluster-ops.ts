// A cluster node's operations beside its loop (cluster-node.ts): it copies its cluster-relevant
// events into etcd for Get-ClusterLog (cluster-log.ts), answers Test-Cluster's requests
// (validation.ts) and monitors its roles' guest services (vm-monitor.ts). Started by the daemon
// after the node joined; closed before it leaves, its log last.
import type { Host } from '../host/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { ClusterLogPublisher } from './cluster-log.ts';
import type { HeartbeatTiming } from './heartbeat-policy.ts';
import { VALIDATE_PREFIX, validateReportKey, type ValidationRequest } from './ops-keys.ts';
import { answerValidation } from './validation.ts';
import { VmMonitor } from './vm-monitor.ts';

const REWATCH_MS = 1000;

export class ClusterOps {
  private readonly log: ClusterLogPublisher;
  private readonly monitor: VmMonitor;
  private readonly abort = new AbortController();
  private readonly answered = new Set<string>();
  private watching: Promise<void> | undefined;

  private constructor(private readonly node: ClusterNode, private readonly host: Host, heartbeat: HeartbeatTiming) {
    const clustered = (id: string): boolean => host.clusteredVms().some((v) => v.id === id);
    this.log = new ClusterLogPublisher(node.etcd, node.name, host.events, clustered);
    this.monitor = new VmMonitor(node, host, heartbeat);
  }

  static start(node: ClusterNode, host: Host, heartbeat: HeartbeatTiming): ClusterOps {
    const ops = new ClusterOps(node, host, heartbeat);
    ops.monitor.start();
    void ops.log.backlog().catch(() => undefined); // etcd unreachable now: those events stay in the node's own log
    ops.watching = ops.watchValidation();
    return ops;
  }

  /** Requests pending when the watch (re)starts are answered from a read; later ones as the watch reports them. */
  private async watchValidation(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      try {
        const { kvs, revision } = await this.node.etcd.range(VALIDATE_PREFIX);
        for (const kv of kvs) if (kv.key.endsWith('/request')) this.answer(kv.value);
        await this.node.etcd.watch(VALIDATE_PREFIX, revision + 1, (e) => {
          if (!e.kv.key.endsWith('/request')) return;
          if (e.type === 'PUT') this.answer(e.kv.value);
          else this.answered.delete(e.kv.key.slice(VALIDATE_PREFIX.length, -'/request'.length)); // the run is over
        }, signal);
      } catch { /* etcd unreachable: try again */ }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, REWATCH_MS));
    }
  }

  private answer(value: string): void {
    const req = JSON.parse(value) as ValidationRequest;
    if (this.answered.has(req.Run)) return;
    this.answered.add(req.Run);
    void answerValidation(this.node, this.host, req)
      .then((r) => this.node.etcd.put(validateReportKey(req.Run, this.node.name), JSON.stringify(r)))
      .catch(() => undefined); // the asking node reports a node that did not answer
  }

  /** Stop monitoring and answering; the log goes on (the leave that follows logs why VMs were turned off). */
  async close(): Promise<void> {
    this.abort.abort();
    await this.watching;
    await this.monitor.close();
  }

  /** Last: what the node logged up to now is written to etcd. */
  async closeLog(): Promise<void> {
    await this.log.close();
  }
}
