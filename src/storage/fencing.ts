// Fencing at the storage path (DESIGN §7): a clustered VM's disks are written only while the
// node holds a valid ownership token for the VM. The token is the etcd revision of the VM's
// ownership key, bound to the node's lease (src/cluster). Asking etcd per write would put a
// network round trip on every guest write, so the check is split: the cluster layer checks the
// token against etcd once per lease keepalive (about every second) and, on success, moves
// `validUntil` to the keepalive's send time plus the lease TTL less a margin — the instant
// before which no other node can have taken the key. A write compares one monotonic clock
// reading with that number: past it, or once the token is known stale (`revoke`), writes,
// trims and write-zeroes are refused with STORAGE_FENCED; reads, flushes and block-status
// pass (they change nothing, and a guest may still read while it is being stopped).
// A QEMU on a partitioned node reaches its disk only through this node's block server, so it
// cannot bypass the check.
import { VmhostError } from '../common/index.ts';
import type { IoRequest, IoResult, Next, Stage } from './pipeline.ts';

/** The ownership token a node holds for one VM, and until when it is known valid. */
export class OwnershipFence {
  /** performance.now() deadline; 0 = not valid (never renewed, expired or revoked). */
  private validUntilMs = 0;
  private revokedBecause: string | undefined;

  constructor(readonly token: number, readonly clock: () => number = () => performance.now()) {}

  /** The holder proved the token current at a moment whose guarantee lasts until `untilMs` (clock()). */
  renew(untilMs: number): void {
    if (this.revokedBecause === undefined && untilMs > this.validUntilMs) this.validUntilMs = untilMs;
  }

  /** The token is stale (another owner, the role removed): no write passes again. */
  revoke(why: string): void {
    this.revokedBecause = why;
    this.validUntilMs = 0;
  }

  /** Revoked for good (a lapsed guarantee may still be renewed; a stale token never is). */
  get revoked(): boolean {
    return this.revokedBecause !== undefined;
  }

  /** Why a write now would be refused, or undefined when it may pass. */
  refusal(now = this.clock()): string | undefined {
    if (this.revokedBecause !== undefined) return `ownership token ${this.token} is stale: ${this.revokedBecause}`;
    if (now >= this.validUntilMs) return `ownership token ${this.token} is not known valid (the node's lease was not renewed in time)`;
    return undefined;
  }
}

const CHANGES = new Set<IoRequest['kind']>(['write', 'trim', 'write-zeroes']);

export class FencingStage implements Stage {
  readonly name = 'fencing';
  /** Writes refused so far (for events and tests). */
  refused = 0;

  constructor(private readonly fence: OwnershipFence) {}

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    if (CHANGES.has(req.kind)) {
      const why = this.fence.refusal();
      if (why !== undefined) {
        this.refused++;
        return Promise.reject(new VmhostError('STORAGE_FENCED', `${req.exportName}: ${req.kind} refused: ${why}`, {
          op: req.kind, export: req.exportName, offset: req.offset, length: req.length, token: this.fence.token,
        }));
      }
    }
    return next(req);
  }

  /** Zero reads skip handle: reads are never fenced. */
  passesNow(): boolean {
    return true;
  }

  passedNow(): void { /* reads are not counted here */ }
}
