// A node's liveness: one etcd lease of TTL_SECONDS, kept alive by the daemon every
// KEEPALIVE_MS. Everything the node holds in etcd — its `alive` key, the leader key, the
// ownership keys of its roles — is bound to it, so when the node dies etcd deletes them all at
// once after the TTL: that is the cluster's failure detection.
// The node also knows when its own guarantee ends: a keepalive sent at t that etcd answered
// with TTL s means etcd keeps the lease at least until t + s (etcd counts from receipt). The
// node treats itself as owner only until that instant less SAFETY_MS (`validUntil`); past it
// without a newer answer (etcd unreachable, this process stalled), it must stop its clustered
// VMs itself — before any other node can claim them. `onRenewed`/`onLost` tell the cluster node.
import type { EtcdClient } from './etcd-client.ts';

export const TTL_SECONDS = 4;
export const KEEPALIVE_MS = 1000;
/** Time kept back from the lease's end: to kill the VMs and for clocks that tick at different rates. */
export const SAFETY_MS = 1000;

export interface LeaseEvents {
  /** A keepalive came back: the lease is held until at least `validUntil` (performance.now()). */
  onRenewed(validUntil: number): void;
  /** The guarantee ran out (no keepalive answer in time) or etcd says the lease is gone. */
  onLost(why: string): void;
  /** A new lease replaced an expired one: what was bound to the old one must be written again. */
  onNewLease(id: string): Promise<void>;
}

export class NodeLease {
  id = '';
  private validUntil = 0;
  private lost = true;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly etcd: EtcdClient, private readonly events: LeaseEvents) {}

  /** Grant the first lease (throws when etcd is unreachable: the daemon does not start half-clustered). */
  async start(): Promise<void> {
    await this.fresh();
    this.schedule();
  }

  get valid(): boolean {
    return !this.lost && performance.now() < this.validUntil;
  }

  /** Until when (performance.now()) this node may act as the lease's holder; 0 once lost. */
  get until(): number {
    return this.lost ? 0 : this.validUntil;
  }

  private async fresh(): Promise<void> {
    const sentAt = performance.now();
    this.id = await this.etcd.grant(TTL_SECONDS);
    await this.events.onNewLease(this.id);
    this.renewed(sentAt + TTL_SECONDS * 1000 - SAFETY_MS);
  }

  private renewed(until: number): void {
    this.validUntil = until;
    this.lost = false;
    this.events.onRenewed(until);
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.lose('no keepalive answer from etcd before the lease could expire'), Math.max(0, until - performance.now()));
  }

  private lose(why: string): void {
    if (this.lost || this.closed) return;
    this.lost = true;
    this.events.onLost(why);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.beat().finally(() => this.schedule()), KEEPALIVE_MS);
  }

  private async beat(): Promise<void> {
    const sentAt = performance.now();
    // The call ends with the guarantee at the latest: by then the deadline timer has fenced this
    // node. Within it, how long each member is waited for follows etcd's latency (etcd-client.ts),
    // so a slow etcd's late answer still renews the lease. Once lost, the client's timeouts alone.
    const left = this.lost ? 0 : this.validUntil - sentAt;
    try {
      const ttl = await this.etcd.keepAlive(this.id, left > 0 ? AbortSignal.timeout(Math.ceil(left)) : undefined);
      if (this.closed) return;
      if (ttl > 0) { this.renewed(sentAt + ttl * 1000 - SAFETY_MS); return; }
      this.lose(`etcd lease ${this.id} expired`);
      await this.fresh();
    } catch {
      // etcd unreachable: the deadline timer ends the guarantee; keep trying meanwhile.
    }
  }

  /** Stop renewing; `revoke` also ends the lease now (a clean leave: no TTL wait for the others). */
  async close(revoke: boolean): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    if (revoke && this.id) await this.etcd.revoke(this.id).catch(() => undefined);
  }
}
