// The node loop's view of the cluster's keys, kept by a watch instead of a full read per pass.
// A full range of the prefix costs etcd and the node time in proportion to the cluster: with
// 8,000 roles (24,000 keys) one read took 0.4–1.7 s on this machine, and every node read once
// a second and on every change — a load no etcd keeps up with. Here the keys are read once,
// then every change arrives by the watch and is applied in revision order; a pass copies the
// maps (milliseconds at that size). Two rules keep it as good as a fresh read for the loop:
//   - read-your-writes: every write this node makes under the prefix (EtcdClient.onWrite) is
//     waited for — its own event must have arrived before the next snapshot is handed out, so
//     the loop never sees, say, its own claim missing and releases the VM it just claimed;
//   - a full read every RESYNC_MS (and whenever the watch breaks or is too slow), as a backstop,
//     with events at or below the read's revision ignored so the two never go backwards.
// Others' writes reach the loop one watch delivery later than a read would have seen them —
// the same as a read made a moment earlier; every decision that must not race is a txn anyway.
// Admin cmdlets still read the keys themselves (ClusterNode.read): they are rare and must see
// what another node wrote a moment ago.
import type { EtcdClient, WatchEvent } from './etcd-client.ts';
import { PREFIX, applyKv, cloneSnapshot, dropKey, parseSnapshot, type Snapshot } from './keys.ts';

/**
 * The backstop's period: a full read this often even when the watch is healthy. Not often: at
 * 8,000 roles one read is ~24,000 keys parsed in one synchronous stretch, which on a starved
 * machine (load 40+) held a daemon's event loop — and its keepalives — for seconds.
 */
const RESYNC_MS = 300_000;

export class SnapshotCache {
  private kept: Snapshot | undefined;
  /** The revision the kept snapshot reflects: the last full read's, or the last event applied after it. */
  private revision = 0;
  /** The last full read's revision: events at or below it are in the kept snapshot already. */
  private readRevision = 0;
  /** The newest revision of this node's own writes under the prefix: a pass waits for it. */
  private wanted = 0;
  private resyncAt = 0;
  private waiters: Array<{ revision: number; done: () => void }> = [];
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly etcd: EtcdClient, private readonly onChange: () => void) {
    etcd.onWrite = (revision, keys) => {
      if (keys.some((k) => k.startsWith(PREFIX))) this.wanted = Math.max(this.wanted, revision);
    };
  }

  /** Start the watch (from the first full read's revision); it runs until close(). */
  start(): void {
    void this.watchLoop();
  }

  /** A copy of the keys at least as new as every write of this node's. */
  async read(): Promise<Snapshot> {
    if (!this.kept || Date.now() >= this.resyncAt) return this.resync();
    if (this.revision < this.wanted) {
      // How long a pass waits for its own write's event before it reads everything instead: as long
      // as etcd is given for an answer (etcd-client.ts) — a slow etcd's watch is slow too, and a full read then would only add to its load.
      const caught = await this.caughtUp(this.wanted, this.etcd.timeouts.ms());
      if (!caught) return this.resync();
    }
    return cloneSnapshot(this.kept);
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
    this.etcd.onWrite = undefined;
    for (const w of this.waiters.splice(0)) w.done();
  }

  private async resync(): Promise<Snapshot> {
    const { kvs, revision } = await this.etcd.range(PREFIX);
    // A read older than what the watch already applied would go backwards: keep the newer state.
    if (!this.kept || revision >= this.revision) {
      this.kept = parseSnapshot(kvs, revision);
      this.revision = revision;
      this.readRevision = revision;
      this.wake();
    }
    this.resyncAt = Date.now() + RESYNC_MS;
    return cloneSnapshot(this.kept);
  }

  private apply(e: WatchEvent): void {
    const s = this.kept;
    // Events the last full read already holds (the watch may run from before it). Not "at or below
    // the last event's": a txn's several keys share one revision and arrive as several events.
    if (!s || e.kv.modRevision <= this.readRevision) return;
    if (e.type === 'PUT') applyKv(s, e.kv);
    else dropKey(s, e.kv.key);
    this.revision = e.kv.modRevision;
    s.revision = this.revision;
    this.wake();
    this.onChange();
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.revision < w.revision) return true;
      w.done();
      return false;
    });
  }

  private caughtUp(revision: number, ms: number): Promise<boolean> {
    if (this.revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, ms);
      const waiter = { revision, done: () => { clearTimeout(timer); resolve(true); } };
      this.waiters.push(waiter);
    });
  }

  private async watchLoop(): Promise<void> {
    while (!this.closed) {
      try {
        if (!this.kept) await this.resync();
        await this.etcd.watch(PREFIX, this.revision + 1, (e) => this.apply(e), this.abort.signal);
      } catch {
        // etcd unreachable: the passes' own reads fail and say so; the watch is tried again below.
      }
      if (this.closed) return;
      // The stream ended (a member restarted, compaction, a partition): read everything again next pass.
      this.kept = undefined;
      this.onChange();
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
