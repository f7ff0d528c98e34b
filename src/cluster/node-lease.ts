// A node's liveness: one etcd lease of TTL_SECONDS, kept alive by the daemon every
// KEEPALIVE_MS (both the defaults of `LeaseTiming`, which `--cluster-lease-ttl` and
// `--cluster-keepalive` change). Everything the node holds in etcd — its `alive` key, the leader key, the
// ownership keys of its roles — is bound to it, so when the node dies etcd deletes them all at
// once after the TTL: that is the cluster's failure detection.
// The node also knows when its own guarantee ends: a keepalive sent at t that etcd answered
// with TTL s means etcd keeps the lease at least until t + s (etcd counts from receipt). The
// node treats itself as owner only until that instant less SAFETY_MS (`validUntil`); past it
// without a newer answer (etcd unreachable, this process stalled), it must stop its clustered
// VMs itself — before any other node can claim them. `onRenewed`/`onLost` tell the cluster node.
import { VmhostError } from '../common/index.ts';
import type { EtcdClient } from './etcd-client.ts';

// A keepalive is sent every keepalive period whether or not the last one has answered: waiting for
// each answer before sending the next would leave a slow etcd (1 s answers on a loaded machine)
// too little of the guarantee for the next one, and the node would fence itself while etcd still
// keeps its lease. An answer counts only if it extends the guarantee (each one's guarantee runs
// from its own send), so answers arriving out of order never shorten it.

export const TTL_SECONDS = 4;
export const KEEPALIVE_MS = 1000;
/** Time kept back from the lease's end: to kill the VMs and for clocks that tick at different rates. */
export const SAFETY_MS = 1000;

/** The lease's TTL and how often it is renewed: detection is about the TTL, fencing TTL − SAFETY_MS after the last answer. */
export interface LeaseTiming { ttlSeconds: number; keepaliveMs: number }
export const DEFAULT_LEASE_TIMING: LeaseTiming = { ttlSeconds: TTL_SECONDS, keepaliveMs: KEEPALIVE_MS };

/**
 * Refuse a timing that would fence a healthy node: the guarantee lasts TTL − SAFETY_MS from a
 * keepalive's send, and two keepalives must fit in it, so one late or lost answer does not
 * isolate the node. TTL 2 s is etcd's own floor with its default election timeout (1 s): it
 * grants at least ⌈1.5 × election timeout⌉.
 */
export function checkLeaseTiming(t: LeaseTiming): LeaseTiming {
  if (!Number.isInteger(t.ttlSeconds) || t.ttlSeconds < 2 || t.ttlSeconds > 300) {
    throw new VmhostError('INVALID_ARGUMENT', `--cluster-lease-ttl: ${t.ttlSeconds} is not a whole number of seconds from 2 to 300`, { param: 'cluster-lease-ttl' });
  }
  const room = t.ttlSeconds * 1000 - SAFETY_MS;
  if (!Number.isInteger(t.keepaliveMs) || t.keepaliveMs < 100 || 2 * t.keepaliveMs > room) {
    throw new VmhostError('INVALID_ARGUMENT', `--cluster-keepalive: ${t.keepaliveMs} ms; with a lease TTL of ${t.ttlSeconds} s it must be 100–${Math.floor(room / 2)} ms `
      + `(two keepalives within the TTL less ${SAFETY_MS} ms)`, { param: 'cluster-keepalive' });
  }
  return t;
}

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
  private inFlight = 0;
  /** A new lease is being granted (the old one expired in etcd): keepalives wait for it. */
  private replacing = false;
  /** An answer later than this after its send guarantees nothing any more (its guarantee has ended): the call stops there. */
  private readonly answerUsefulMs: number;
  /** Keepalives outstanding at most: one per keepalive period of answerUsefulMs. */
  private readonly maxInFlight: number;

  constructor(private readonly etcd: EtcdClient, private readonly events: LeaseEvents, private readonly timing: LeaseTiming = DEFAULT_LEASE_TIMING) {
    this.answerUsefulMs = timing.ttlSeconds * 1000 - SAFETY_MS;
    this.maxInFlight = Math.ceil(this.answerUsefulMs / timing.keepaliveMs);
  }

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
    this.id = await this.etcd.grant(this.timing.ttlSeconds);
    await this.events.onNewLease(this.id);
    this.renewed(sentAt + this.timing.ttlSeconds * 1000 - SAFETY_MS);
  }

  private renewed(until: number): void {
    // Already over (a late answer), or shorter than what a later-sent keepalive gave: no renewal.
    if (until <= performance.now() || (!this.lost && until <= this.validUntil)) return;
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
    this.timer = setTimeout(() => { this.schedule(); void this.beat(); }, this.timing.keepaliveMs);
  }

  private async beat(): Promise<void> {
    if (this.inFlight >= this.maxInFlight || this.replacing) return;
    this.inFlight++;
    const id = this.id;
    const sentAt = performance.now();
    try {
      // How long each member is waited for follows etcd's latency (etcd-client.ts), so a slow etcd's late answer still counts.
      const ttl = await this.etcd.keepAlive(id, AbortSignal.timeout(this.answerUsefulMs));
      if (this.closed || id !== this.id) return; // the answer of a lease replaced meanwhile
      if (ttl > 0) { this.renewed(sentAt + ttl * 1000 - SAFETY_MS); return; }
      if (this.replacing) return;
      this.lose(`etcd lease ${id} expired`);
      this.replacing = true;
      try { await this.fresh(); } finally { this.replacing = false; }
    } catch {
      // etcd unreachable or too slow: the deadline timer ends the guarantee; keep trying meanwhile.
    } finally {
      this.inFlight--;
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
