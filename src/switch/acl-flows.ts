// The stateful flows of a port's extended ACLs: (protocol, local IP + port, remote IP + port),
// the same key for both directions. A flow is found from the frame's own fields and bytes —
// a numeric hash, then a field-by-field comparison — so a lookup allocates nothing; only a
// new flow does. Kept across policy changes (the port passes the table on). Depends on packet.
import { type FrameInfo, ipv6Equal } from '../packet/index.ts';
import { OUTBOUND, type Dir } from './acl-classifier.ts';

interface FlowEntry {
  readonly proto: number;
  readonly version: number;
  /** IPv4 addresses as numbers; IPv6 ones as 16 bytes (v4: null). */
  readonly local4: number;
  readonly remote4: number;
  readonly local6: Uint8Array | null;
  readonly remote6: Uint8Array | null;
  readonly localPort: number;
  readonly remotePort: number;
  lastSeen: number;
  idleMs: number;
}

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x01000193);
}

function mixBytes(h: number, b: Uint8Array, off: number): number {
  for (let i = 0; i < 16; i += 4) h = mix(h, (b[off + i]! << 24) | (b[off + i + 1]! << 16) | (b[off + i + 2]! << 8) | b[off + i + 3]!);
  return h;
}

export class FlowTable {
  private readonly buckets = new Map<number, FlowEntry[]>();
  private count = 0;

  get size(): number { return this.count; }

  /** True when the frame belongs to a live flow (refreshed); a lapsed one is removed. */
  touch(dir: Dir, f: FrameInfo, b: Uint8Array, now: number): boolean {
    const h = this.hash(dir, f, b);
    const bucket = this.buckets.get(h);
    if (!bucket) return false;
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!;
      if (!this.same(e, dir, f, b)) continue;
      if (now - e.lastSeen <= e.idleMs) { e.lastSeen = now; return true; }
      this.removeAt(h, bucket, i);
      return false;
    }
    return false;
  }

  /** Starts (or restarts) the frame's flow. */
  add(dir: Dir, f: FrameInfo, b: Uint8Array, now: number, idleMs: number): void {
    const h = this.hash(dir, f, b);
    let bucket = this.buckets.get(h);
    const old = bucket?.find((e) => this.same(e, dir, f, b));
    if (old) { old.lastSeen = now; old.idleMs = idleMs; return; }
    const out = dir === OUTBOUND, v6 = f.ipVersion === 6;
    const lo = out ? f.ipSrcOffset : f.ipDstOffset, ro = out ? f.ipDstOffset : f.ipSrcOffset;
    const e: FlowEntry = {
      proto: f.ipProtocol, version: f.ipVersion,
      local4: v6 ? 0 : out ? f.ipSrc : f.ipDst, remote4: v6 ? 0 : out ? f.ipDst : f.ipSrc,
      local6: v6 ? b.slice(lo, lo + 16) : null, remote6: v6 ? b.slice(ro, ro + 16) : null,
      localPort: out ? f.srcPort : f.dstPort, remotePort: out ? f.dstPort : f.srcPort, lastSeen: now, idleMs,
    };
    if (!bucket) { bucket = []; this.buckets.set(h, bucket); }
    bucket.push(e);
    this.count++;
  }

  sweep(now: number): void {
    for (const [h, bucket] of this.buckets) {
      for (let i = bucket.length - 1; i >= 0; i--) if (now - bucket[i]!.lastSeen > bucket[i]!.idleMs) this.removeAt(h, bucket, i);
    }
  }

  private removeAt(h: number, bucket: FlowEntry[], i: number): void {
    bucket.splice(i, 1);
    if (bucket.length === 0) this.buckets.delete(h);
    this.count--;
  }

  private hash(dir: Dir, f: FrameInfo, b: Uint8Array): number {
    const out = dir === OUTBOUND;
    let h = mix(0x811c9dc5, f.ipProtocol);
    if (f.ipVersion === 6) {
      h = mixBytes(h, b, out ? f.ipSrcOffset : f.ipDstOffset);
      h = mixBytes(h, b, out ? f.ipDstOffset : f.ipSrcOffset);
    } else {
      h = mix(mix(h, out ? f.ipSrc : f.ipDst), out ? f.ipDst : f.ipSrc);
    }
    h = mix(mix(h, out ? f.srcPort : f.dstPort), out ? f.dstPort : f.srcPort);
    return h & 0x3fffffff;
  }

  private same(e: FlowEntry, dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
    const out = dir === OUTBOUND;
    if (e.proto !== f.ipProtocol || e.version !== f.ipVersion) return false;
    if (e.localPort !== (out ? f.srcPort : f.dstPort) || e.remotePort !== (out ? f.dstPort : f.srcPort)) return false;
    if (f.ipVersion === 6) return ipv6Equal(b, out ? f.ipSrcOffset : f.ipDstOffset, e.local6!) && ipv6Equal(b, out ? f.ipDstOffset : f.ipSrcOffset, e.remote6!);
    return e.local4 === (out ? f.ipSrc : f.ipDst) && e.remote4 === (out ? f.ipDst : f.ipSrc);
  }
}
