// The switch's microflow cache, in the style of Open vSwitch's exact-match cache: the
// forwarding decision for a known unicast IPv4 frame — the destination port, its egress tag,
// which Meter ACL counters each side bumps (or that a side's ACLs must still be checked per
// frame: stateful ones) and the MAC table entries it relied on — remembered under the fields
// the decision depends on, so the next frame of the flow skips ingress VLAN, guards, the ACL
// verdicts, the learning domain, the MAC lookup and VLAN membership (switch.ts
// forwardCached does what is left per frame and checks an entry is still true).
// The key: ingress port, destination and source MAC, and — only while some port of the switch
// has ACLs (`l3`), the one policy part that reads them — IPv4 protocol, addresses and ports.
// Without ACLs a flow is cached on L2 fields only; the guards read nothing else of a cacheable
// frame (switch.ts decides which frames are: untagged IPv4, not a fragment, not a DHCP server
// message, not ICMPv6 in IPv4) but the source address, which the ARP guard re-checks whenever
// it changes.
// Never stale: an entry holds the switch's generation (bumped by every policy, port,
// extension or settings change) and the MAC table entries it used, which say when they moved
// or went (mac-table.ts), and the destination's ageing is checked per frame. A stale entry
// stays until its slot is reused (with it, a removed port's state: bounded by the cache's size).
// 4,096 entries, eight-way associative, keys in typed arrays; an entry is allocated on a miss only.
// Eight ways, as acl-verdict-cache.ts found: bench/switch.ts's 1,000 flows taken in turn missed
// 1 % of their frames with four (sets holding more flows than ways), each a full pipeline pass.
// Depends on packet, mac-table, acl, port-state.
import type { FrameInfo } from '../packet/index.ts';
import type { MacEntry } from './mac-table.ts';
import type { MeterCounters } from './acl.ts';
import type { PortState } from './port-state.ts';

const SLOTS = 1 << 12;
const WAYS = 8;
/** Key words per slot. */
const W = 8;
/** Bit of the last key word: "slot in use" (key words are otherwise all zero-able). */
const USED = 1 << 30;
const TWO32 = 0x100000000;

/** What one side's ACLs do for a cached flow: bump these Meter counters, or (check) run the ACLs per frame. */
export interface AclStep {
  readonly meters: readonly MeterCounters[];
  /** Stateful ACLs: their flows change per frame, so the verdict is not cached. */
  readonly check: boolean;
}

export const NO_ACL_STEP: AclStep = { meters: [], check: false };

export class CachedFlow {
  constructor(
    readonly generation: number,
    readonly dst: PortState,
    /** The source MAC's table entry (refreshed per frame) and the destination's. */
    readonly srcMac: MacEntry,
    readonly dstMac: MacEntry,
    /** The tag the frame leaves with (-1: untagged). */
    readonly tag: number,
    readonly outbound: AclStep,
    readonly inbound: AclStep,
  ) {}
}

export class FlowCache {
  private readonly keys = new Int32Array(SLOTS * W);
  private readonly flows: (CachedFlow | null)[] = new Array<CachedFlow | null>(SLOTS).fill(null);
  /** The key and set of the last probe, for the insert that follows a miss. */
  private readonly key = new Int32Array(W);
  private set = 0;
  hits = 0;
  misses = 0;

  /** The cached flow of `f` arriving on port number `port`, or null. `l3`: the key includes the IPv4 fields. */
  probe(port: number, f: FrameInfo, l3: boolean): CachedFlow | null {
    const k = this.key;
    const dst = f.dst, src = f.src;
    k[0] = port;
    k[1] = ((dst / TWO32) & 0xffff) | ((src / TWO32) << 16);
    k[2] = dst | 0;
    k[3] = src | 0;
    if (l3) {
      k[4] = f.ipSrc | 0;
      k[5] = f.ipDst | 0;
      k[6] = ((f.srcPort & 0xffff) << 16) | (f.dstPort & 0xffff);
      k[7] = USED | (f.ipProtocol & 0xff) | (f.srcPort < 0 ? 1 << 8 : 0) | (f.dstPort < 0 ? 1 << 9 : 0);
    } else {
      k[4] = 0; k[5] = 0; k[6] = 0; k[7] = USED | (1 << 10);
    }
    let h = Math.imul(k[0]! ^ k[1]!, 0x9e3779b1) ^ Math.imul(k[2]!, 0x85ebca6b) ^ Math.imul(k[3]!, 0xc2b2ae35);
    h ^= Math.imul(k[4]! ^ k[7]!, 0x27d4eb2f) ^ Math.imul(k[5]! ^ k[6]!, 0x165667b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    const set = (h ^ (h >>> 16)) & (SLOTS - WAYS);
    this.set = set;
    const keys = this.keys;
    for (let s = set; s < set + WAYS; s++) {
      const o = s * W;
      if (keys[o] === k[0] && keys[o + 2] === k[2] && keys[o + 3] === k[3] && keys[o + 1] === k[1]
        && keys[o + 4] === k[4] && keys[o + 5] === k[5] && keys[o + 6] === k[6] && keys[o + 7] === k[7]) {
        this.hits++;
        return this.flows[s]!;
      }
    }
    this.misses++;
    return null;
  }

  /**
   * Remembers `flow` under the key of the last probe. A stale entry of that key is replaced
   * where it is; a new key goes first in its set and moves the others one along, so the one
   * inserted longest ago is forgotten.
   */
  insert(flow: CachedFlow): void {
    const keys = this.keys, k = this.key, set = this.set;
    let at = -1;
    for (let s = set; s < set + WAYS && at < 0; s++) {
      const o = s * W;
      let same = true;
      for (let i = 0; i < W && same; i++) same = keys[o + i] === k[i];
      if (same) at = s;
    }
    if (at < 0) {
      at = set;
      keys.copyWithin((set + 1) * W, set * W, (set + WAYS - 1) * W);
      for (let s = set + WAYS - 1; s > set; s--) this.flows[s] = this.flows[s - 1]!;
      keys.set(k, set * W);
    }
    this.flows[at] = flow;
  }
}
