// An exact-match cache in front of one port direction's extended-ACL classifier: the rule
// that decides an IPv4 frame's (protocol, source, destination, source port, destination
// port) — or none — remembered for the next frame with the same five fields, as Open
// vSwitch's exact-match cache sits in front of its classifier. A frame of a known flow then
// costs one hash and four integer compares instead of a probe per rule shape.
// Correct without any invalidation of its own: the classifier's answer is a pure function of
// those five fields (ruleMatches reads nothing else), and the cache belongs to one compiled
// classifier, which is never edited: any policy change (ACLs, guards, VLAN, …) compiles the
// port anew (port-state.ts) with a new, empty cache. What must happen per frame stays outside
// it: stateful flows are looked up and refreshed, and Meter ACLs counted, by PortAcls for
// every frame; nor does the MAC table or any other port's state enter an ACL's verdict.
// 4,096 flows, eight-way associative, in typed arrays (no allocation). Ways because flows
// taken in turn (a sender to many peers) thrash any set that holds more of them than it has
// ways: with two, 8 % of a thousand such flows missed on every frame, with four 3 %; with
// eight a set overflows only when the cache is near full.
// IPv6 frames go to the classifier (their addresses are 16 bytes; IPv6 rule sets are rare here).
// Depends on packet, acl-classifier.
import type { FrameInfo } from '../packet/index.ts';
import type { Rule, RuleClassifier } from './acl-classifier.ts';

const SLOTS = 1 << 12;
const WAYS = 8;
/** Key words per slot. */
const W = 4;
/** Bits of a slot's fourth key word above the protocol's 8: the ports that are absent (-1), and "slot in use". */
const NO_SRC_PORT = 1 << 8;
const NO_DST_PORT = 1 << 9;
const USED = 1 << 10;

/** One multiply per field, then MurmurHash3's finaliser, so every input bit reaches the slot bits. */
function hash(src: number, dst: number, ports: number, tag: number): number {
  let h = Math.imul(src, 0x9e3779b1) ^ Math.imul(dst, 0x85ebca6b) ^ Math.imul(ports, 0xc2b2ae35) ^ tag;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class VerdictCache {
  /** Four int32 words a slot: source, destination, ports (16 bits each), protocol and flags. */
  private readonly keys = new Int32Array(SLOTS * W);
  private readonly verdicts: (Rule | null)[] = new Array<Rule | null>(SLOTS).fill(null);
  hits = 0;
  misses = 0;

  constructor(private readonly classifier: RuleClassifier) {}

  /**
   * `classifier.lookup(f, b)` for an IPv4 frame. A flow may sit in any of its set's eight
   * slots; a new one goes into the first and moves the others one along, so the flow
   * inserted longest ago is the one forgotten.
   */
  lookup(f: FrameInfo, b: Uint8Array): Rule | null {
    const src = f.ipSrc | 0, dst = f.ipDst | 0;
    const sp = f.srcPort, dp = f.dstPort;
    const ports = ((sp & 0xffff) << 16) | (dp & 0xffff);
    const tag = USED | (f.ipProtocol & 0xff) | (sp < 0 ? NO_SRC_PORT : 0) | (dp < 0 ? NO_DST_PORT : 0);
    const slot = hash(src, dst, ports, tag) & (SLOTS - WAYS);
    const keys = this.keys;
    for (let s = slot; s < slot + WAYS; s++) {
      const k = s * W;
      if (keys[k] === src && keys[k + 1] === dst && keys[k + 2] === ports && keys[k + 3] === tag) {
        this.hits++;
        return this.verdicts[s] as Rule | null;
      }
    }
    this.misses++;
    const r = this.classifier.lookup(f, b);
    const k = slot * W;
    keys.copyWithin(k + W, k, k + (WAYS - 1) * W);
    const v = this.verdicts;
    for (let s = slot + WAYS - 1; s > slot; s--) v[s] = v[s - 1] as Rule | null;
    keys[k] = src; keys[k + 1] = dst; keys[k + 2] = ports; keys[k + 3] = tag;
    v[slot] = r;
    return r;
  }
}
