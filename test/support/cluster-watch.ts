// Test support: the cluster's keys in etcd as a test sees them, kept by watches, so a test awaits
// a change (a node Down, a role Online) as the event that makes it true instead of polling an API.
// One watch per etcd member: a partition freezes one member and its watch goes silent, the
// others go on. Every member streams the same history, so an event is applied only when its
// revision is newer than the last one applied to its key; a stream that breaks is opened again
// from the last revision it delivered (nothing is compacted in a test cluster).
import { EtcdClient, type WatchEvent } from '../../src/cluster/etcd-client.ts';
import { PREFIX, applyKv, dropKey, parseSnapshot, type Snapshot } from '../../src/cluster/keys.ts';

export class ClusterWatch {
  private readonly applied = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private readonly stop = new AbortController();

  private constructor(readonly snapshot: Snapshot) {}

  /** Read the keys once through any member, then follow every member from that revision. */
  static async start(endpoints: readonly string[]): Promise<ClusterWatch> {
    const { kvs, revision } = await new EtcdClient(endpoints).range(PREFIX);
    const w = new ClusterWatch(parseSnapshot(kvs, revision));
    for (const kv of kvs) w.applied.set(kv.key, kv.modRevision);
    for (const url of endpoints) void w.follow(url, revision + 1);
    return w;
  }

  private async follow(url: string, from: number): Promise<void> {
    const client = new EtcdClient([url]);
    let next = from;
    while (!this.stop.signal.aborted) {
      await client.watch(PREFIX, next, (e) => { next = Math.max(next, e.kv.modRevision + 1); this.apply(e); }, this.stop.signal)
        .catch(() => new Promise((ok) => setTimeout(ok, 200))); // the member is down or restarting: try again
    }
  }

  private apply(e: WatchEvent): void {
    if ((this.applied.get(e.kv.key) ?? 0) >= e.kv.modRevision) return; // another member's stream delivered it first
    this.applied.set(e.kv.key, e.kv.modRevision);
    this.snapshot.revision = Math.max(this.snapshot.revision, e.kv.modRevision);
    if (e.type === 'DELETE') dropKey(this.snapshot, e.kv.key);
    else applyKv(this.snapshot, e.kv);
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with `fn`'s first truthy answer, evaluated now and after every change; fails after `ms`. */
  until<T>(what: string, ms: number, fn: (s: Snapshot) => T | undefined | false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const v = fn(this.snapshot);
        if (!v) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => { this.waiters.delete(check); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.stop.abort();
  }
}
