// Get-ClusterLog: every node's cluster-relevant events, merged by time. Each node copies its own
// (ClusterLogPublisher) into etcd under the log prefix, in LOG_SLOTS slots per node overwritten
// in turn — bounded whatever a node logs, and still readable when the node is Down, which is when
// an administrator wants its last words. Writes go in the background, what is queued in one txn; a write etcd
// refuses is dropped and counted, never logged as an event (that event would be published too).
// At start the node also copies what it logged since its last copied event (its join, and what
// it logged while cut off from etcd, its isolation among them, if its daemon restarted since).
import type { EventLog, HostEvent } from '../host/index.ts';
import type { EtcdClient } from './etcd-client.ts';
import { LOG_PREFIX, LOG_SLOTS, logKey, type ClusterLogRecord } from './ops-keys.ts';

/** The events a cluster cares about: the cluster's own, clustered VMs', moves. */
export function clusterRelevant(e: HostEvent, clustered: (vmId: string) => boolean): boolean {
  return e.Code.startsWith('CLUSTER_') || e.Code.startsWith('VM_CLUSTER_') || e.Code.startsWith('VM_MOVED_') || (e.VMId !== undefined && clustered(e.VMId));
}

/** Records per txn (etcd 3.4 takes at most 128 operations in one). */
const FLUSH_BATCH = 100;

export class ClusterLogPublisher {
  private queue: ClusterLogRecord[] = [];
  private flushing: Promise<void> | undefined;
  private readonly unsubscribe: () => void;
  /** Records etcd did not take (unreachable, no majority). */
  dropped = 0;

  constructor(private readonly etcd: EtcdClient, private readonly node: string, private readonly events: EventLog, private readonly clustered: (vmId: string) => boolean) {
    this.unsubscribe = events.subscribe((e) => {
      if (!clusterRelevant(e, clustered)) return;
      this.queue.push(this.record(e));
      this.flushing ??= this.flush();
    });
  }

  private record(e: HostEvent): ClusterLogRecord {
    return { Node: this.node, Seq: e.Seq, Time: e.Time, Level: e.Level, Code: e.Code, Message: e.Message, ...(e.VMId ? { VMId: e.VMId } : {}), ...(e.VMName ? { VMName: e.VMName } : {}) };
  }

  /** Queue the events logged after the last one of this node in etcd and before those queued since the subscription. */
  async backlog(): Promise<void> {
    let last = 0;
    for (const kv of (await this.etcd.range(`${LOG_PREFIX}${this.node}/`)).kvs) {
      try { last = Math.max(last, (JSON.parse(kv.value) as ClusterLogRecord).Seq); } catch { /* not ours */ }
    }
    const before = this.queue[0]?.Seq ?? Infinity;
    const missed = this.events.list({ since: last }).filter((e) => e.Seq < before && clusterRelevant(e, this.clustered)).slice(-LOG_SLOTS);
    this.queue.unshift(...missed.map((e) => this.record(e)));
    this.flushing ??= this.flush();
  }

  /** What is queued goes FLUSH_BATCH records per txn: a node placing or claiming 500 roles logs 500 events at once. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, FLUSH_BATCH);
      // A txn takes each key once: of two records for one slot (LOG_SLOTS apart) the later stays, as written one by one.
      const slots = new Map(batch.map((r) => [logKey(this.node, r.Seq), JSON.stringify(r)]));
      await this.etcd.txn([], [...slots].map(([key, value]) => ({ put: key, value }))).catch(() => { this.dropped += batch.length; });
    }
    this.flushing = undefined;
  }

  /** Stop copying; what is queued is written first (a leaving node's last events say why it left). */
  async close(): Promise<void> {
    this.unsubscribe();
    await this.flushing;
  }
}

export interface ClusterLogQuery {
  /** Only these nodes' events. */
  Node?: string[];
  /** Only the last this many minutes (Get-ClusterLog -TimeSpan). */
  TimeSpan?: number;
}

/** Every node's published events (or the asked nodes'), oldest first. */
export async function readClusterLog(etcd: EtcdClient, q: ClusterLogQuery = {}): Promise<ClusterLogRecord[]> {
  const nodes = q.Node?.map((n) => n.toLowerCase());
  const since = q.TimeSpan !== undefined ? Date.now() - q.TimeSpan * 60_000 : undefined;
  const out: ClusterLogRecord[] = [];
  for (const kv of (await etcd.range(LOG_PREFIX)).kvs) {
    let r: ClusterLogRecord;
    try { r = JSON.parse(kv.value) as ClusterLogRecord; } catch { continue; }
    if (nodes && !nodes.includes(r.Node.toLowerCase())) continue;
    if (since !== undefined && Date.parse(r.Time) < since) continue;
    out.push(r);
  }
  return out.sort((a, b) => a.Time.localeCompare(b.Time) || a.Node.localeCompare(b.Node) || a.Seq - b.Seq);
}
