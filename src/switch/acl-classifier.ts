// The extended-ACL classifier of one port and direction: which rule, if any, decides a frame —
// the matching rule of highest Weight. Compiled once when the policy changes, never edited
// per frame. Two forms with the same answer:
// - linear: the rules in descending weight, first match wins. Cheapest for a handful of rules
//   and for rule sets where every rule has its own shape.
// - tuple space (Open vSwitch's classifier, Srinivasan et al. 1999): rules are grouped by the
//   shape of what they match exactly — protocol or not, local/remote prefix length, single
//   local/remote port or not — and hashed within their group on those masked values. A frame
//   costs one hash probe per group, in descending order of the group's best weight, stopping
//   once no later group can beat the match found. Port ranges are checked on the probed rules
//   only. 100 rules of one shape cost one probe.
// Both forms decide with the same `ruleMatches`, so the tuple form only skips rules that cannot
// match; acl-classifier.test.ts checks them against each other on random rule sets and frames.
// No allocation per frame. Depends on packet, policy.
import {
  type Cidr, type FrameInfo, parseCidr, ipv4InPrefix, ipv6InPrefix,
  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6,
} from '../packet/index.ts';
import { VmhostError } from '../common/errors.ts';
import type { ExtendedAcl } from './policy.ts';

export const OUTBOUND = 0;
export const INBOUND = 1;
export type Dir = typeof OUTBOUND | typeof INBOUND;

const DEFAULT_IDLE_S = 300;
/** Protocol value of a rule for any IP protocol, and for ICMP of either IP version. */
const PROTO_ANY = -1;
const PROTO_ICMP = -2;
/** Up to this many rules a direction is scanned linearly (a probe per shape costs more). */
export const LINEAR_MAX_RULES = 4;

export interface Rule {
  readonly acl: ExtendedAcl;
  readonly weight: number;
  readonly deny: boolean;
  readonly local: Cidr | null;
  readonly remote: Cidr | null;
  /**
   * An IPv4 `local`/`remote` as int32 network and mask (masks 0 otherwise), matched inline:
   * through ipMatch each prefix cost about 40 ns a frame (BENCHMARKS.md), and a port with a
   * few rules scans them all for every frame.
   */
  readonly local4: boolean;
  readonly localNet: number;
  readonly localMask: number;
  readonly remote4: boolean;
  readonly remoteNet: number;
  readonly remoteMask: number;
  /** IP protocol number, PROTO_ANY or PROTO_ICMP. */
  readonly proto: number;
  readonly lp: readonly [number, number] | null;
  readonly rp: readonly [number, number] | null;
  readonly stateful: boolean;
  readonly idleMs: number;
}

function badAcl(message: string): VmhostError {
  return new VmhostError('SWITCH_BAD_POLICY', message, { op: 'acl' });
}

export function cidrOrAny(text: string | undefined): Cidr | null {
  if (text === undefined || text === 'Any' || text === '*') return null;
  return parseCidr(text);
}

function portRange(p: string | number | undefined): readonly [number, number] | null {
  if (p === undefined || p === 'Any' || p === '*') return null;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(p));
  if (!m) throw badAcl(`bad port ${String(p)}`);
  const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi > 65535 || lo > hi) throw badAcl(`bad port range ${String(p)}`);
  return [lo, hi];
}

function protocolNumber(p: string | number | undefined): number {
  if (p === undefined) return PROTO_ANY;
  if (typeof p === 'number') return p;
  switch (p.toUpperCase()) {
    case 'ANY': return PROTO_ANY;
    case 'TCP': return IPPROTO_TCP;
    case 'UDP': return IPPROTO_UDP;
    case 'ICMP': return PROTO_ICMP;
    case 'ICMPV4': return IPPROTO_ICMP;
    case 'ICMPV6': return IPPROTO_ICMPV6;
  }
  if (/^\d{1,3}$/.test(p) && Number(p) < 256) return Number(p);
  throw badAcl(`bad protocol ${p}`);
}

export function compileRule(a: ExtendedAcl): Rule {
  const local = cidrOrAny(a.localIPAddress), remote = cidrOrAny(a.remoteIPAddress);
  const localMask = local?.version === 4 ? mask32(local.prefixLength) : 0;
  const remoteMask = remote?.version === 4 ? mask32(remote.prefixLength) : 0;
  return {
    acl: a, weight: a.weight, deny: a.action === 'Deny', local, remote,
    local4: local?.version === 4, localNet: local?.version === 4 ? local.address & localMask : 0, localMask,
    remote4: remote?.version === 4, remoteNet: remote?.version === 4 ? remote.address & remoteMask : 0, remoteMask,
    proto: protocolNumber(a.protocol), lp: portRange(a.localPort), rp: portRange(a.remotePort),
    stateful: a.stateful === true && a.action === 'Allow', idleMs: (a.idleSessionTimeout || DEFAULT_IDLE_S) * 1000,
  };
}

/** Is `c` the frame's local (the VM's) or remote address in this direction? */
export function ipMatch(c: Cidr, f: FrameInfo, b: Uint8Array, local: boolean, dir: Dir): boolean {
  const useSrc = (dir === OUTBOUND) === local;
  if (c.version === 4) return f.ipVersion === 4 && ipv4InPrefix(useSrc ? f.ipSrc : f.ipDst, c.address, c.prefixLength);
  return f.ipVersion === 6 && ipv6InPrefix(b, useSrc ? f.ipSrcOffset : f.ipDstOffset, c.address, c.prefixLength);
}

/** The one definition of "rule r matches this IP frame". */
export function ruleMatches(r: Rule, dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
  if (r.proto !== PROTO_ANY) {
    if (r.proto === PROTO_ICMP) { if (f.ipProtocol !== IPPROTO_ICMP && f.ipProtocol !== IPPROTO_ICMPV6) return false; } else if (f.ipProtocol !== r.proto) return false;
  }
  const out = dir === OUTBOUND;
  if (r.local4) { if (f.ipVersion !== 4 || (((out ? f.ipSrc : f.ipDst) ^ r.localNet) & r.localMask) !== 0) return false; } else if (r.local && !ipMatch(r.local, f, b, true, dir)) return false;
  if (r.remote4) { if (f.ipVersion !== 4 || (((out ? f.ipDst : f.ipSrc) ^ r.remoteNet) & r.remoteMask) !== 0) return false; } else if (r.remote && !ipMatch(r.remote, f, b, false, dir)) return false;
  if (r.lp) { const p = out ? f.srcPort : f.dstPort; if (p < r.lp[0] || p > r.lp[1]) return false; }
  if (r.rp) { const p = out ? f.dstPort : f.srcPort; if (p < r.rp[0] || p > r.rp[1]) return false; }
  return true;
}

export interface RuleClassifier {
  /** The rule of highest weight matching the IP frame `f` (bytes `b`), or null. */
  lookup(f: FrameInfo, b: Uint8Array): Rule | null;
  readonly size: number;
}

class LinearClassifier implements RuleClassifier {
  constructor(private readonly rules: readonly Rule[], private readonly dir: Dir) {}
  get size(): number { return this.rules.length; }
  lookup(f: FrameInfo, b: Uint8Array): Rule | null {
    for (const r of this.rules) if (ruleMatches(r, this.dir, f, b)) return r;
    return null;
  }
}

/** What a group of rules matches exactly (−1 = that field is not hashed). */
interface Shape {
  /** 4 or 6 when a prefix is hashed, 0 when none is. */
  readonly version: number;
  readonly localLen: number;
  readonly remoteLen: number;
  /** What is hashed of the protocol: nothing, its number, or whether it is ICMP (v4 or v6). */
  readonly proto: 'any' | 'number' | 'icmp';
  readonly lp: boolean;
  readonly rp: boolean;
}

interface Tuple extends Shape {
  readonly maxWeight: number;
  /** Hash of the masked values → the group's rules with that hash, in descending weight. */
  readonly buckets: Map<number, Rule[]>;
}

/** An IPv4 prefix mask as a signed 32-bit value (an unsigned one above 2^31 would be a boxed number). */
export function mask32(len: number): number {
  return len <= 0 ? 0 : len >= 32 ? -1 : -1 << (32 - len);
}

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x9e3779b1) ^ (h >>> 15);
}

/** A prefix of an IPv6 address, 32 bits at a time. */
function mixV6(h: number, b: Uint8Array, off: number, len: number): number {
  for (let w = 0; w < 4 && len > 0; w++, len -= 32) {
    const o = off + 4 * w;
    const word = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) & mask32(len);
    h = mix(h, word);
  }
  return h;
}

/**
 * The hash of a shape's fields. Frames and rules go through this one function: a rule's
 * values hash like those of every frame it matches. Addresses: `lv4`/`rv4` for IPv4, else the
 * 16 bytes of `lb`/`rb` at `lo`/`ro`.
 */
function shapeHash(s: Shape, proto: number, lv4: number, lb: Uint8Array | null, lo: number, rv4: number, rb: Uint8Array | null, ro: number, lport: number, rport: number): number {
  let h = 0x811c9dc5;
  if (s.proto !== 'any') h = mix(h, proto);
  if (s.localLen >= 0) h = s.version === 4 ? mix(h, lv4 & mask32(s.localLen)) : mixV6(h, lb!, lo, s.localLen);
  if (s.remoteLen >= 0) h = s.version === 4 ? mix(h, rv4 & mask32(s.remoteLen)) : mixV6(h, rb!, ro, s.remoteLen);
  if (s.lp) h = mix(h, lport);
  if (s.rp) h = mix(h, rport);
  return h & 0x3fffffff;
}

function shapeOf(r: Rule): Shape | null {
  const v = r.local?.version ?? r.remote?.version ?? 0;
  if (r.local && r.remote && r.local.version !== r.remote.version) return null; // matches no frame
  return {
    version: v, localLen: r.local ? r.local.prefixLength : -1, remoteLen: r.remote ? r.remote.prefixLength : -1,
    proto: r.proto === PROTO_ANY ? 'any' : r.proto === PROTO_ICMP ? 'icmp' : 'number', lp: r.lp !== null && r.lp[0] === r.lp[1], rp: r.rp !== null && r.rp[0] === r.rp[1],
  };
}

function ruleHash(s: Shape, r: Rule): number {
  const l = r.local, rm = r.remote;
  return shapeHash(s, r.proto,
    l?.version === 4 ? l.address : 0, l?.version === 6 ? l.address : null, 0,
    rm?.version === 4 ? rm.address : 0, rm?.version === 6 ? rm.address : null, 0,
    r.lp ? r.lp[0] : -1, r.rp ? r.rp[0] : -1);
}

class TupleClassifier implements RuleClassifier {
  private readonly tuples: Tuple[];

  constructor(rules: readonly Rule[], private readonly dir: Dir, readonly size: number) {
    const byShape = new Map<string, { shape: Shape; rules: Rule[] }>();
    for (const r of rules) {
      const shape = shapeOf(r);
      if (!shape) continue;
      const k = `${shape.version}/${shape.localLen}/${shape.remoteLen}/${shape.proto}/${shape.lp}/${shape.rp}`;
      let g = byShape.get(k);
      if (!g) { g = { shape, rules: [] }; byShape.set(k, g); }
      g.rules.push(r); // `rules` come in descending weight, so every bucket does too
    }
    this.tuples = [...byShape.values()].map(({ shape, rules: rs }) => {
      const buckets = new Map<number, Rule[]>();
      for (const r of rs) {
        const h = ruleHash(shape, r);
        const b = buckets.get(h);
        if (b) b.push(r); else buckets.set(h, [r]);
      }
      return { ...shape, maxWeight: rs[0]!.weight, buckets };
    }).sort((x, y) => y.maxWeight - x.maxWeight);
  }

  /** Hash probes per frame at most. */
  get probes(): number { return this.tuples.length; }

  lookup(f: FrameInfo, b: Uint8Array): Rule | null {
    const out = this.dir === OUTBOUND;
    const lv4 = out ? f.ipSrc : f.ipDst, rv4 = out ? f.ipDst : f.ipSrc;
    const lo = out ? f.ipSrcOffset : f.ipDstOffset, ro = out ? f.ipDstOffset : f.ipSrcOffset;
    const lport = out ? f.srcPort : f.dstPort, rport = out ? f.dstPort : f.srcPort;
    // An 'icmp' shape hashes ICMP of either version as PROTO_ICMP, anything else as itself (no rule there has it).
    const icmpClass = f.ipProtocol === IPPROTO_ICMP || f.ipProtocol === IPPROTO_ICMPV6 ? PROTO_ICMP : f.ipProtocol;
    let best: Rule | null = null;
    for (const t of this.tuples) {
      if (best && best.weight > t.maxWeight) break;
      if (t.version !== 0 && t.version !== f.ipVersion) continue;
      const bucket = t.buckets.get(shapeHash(t, t.proto === 'icmp' ? icmpClass : f.ipProtocol, lv4, b, lo, rv4, b, ro, lport, rport));
      if (!bucket) continue;
      for (const r of bucket) {
        if (best && best.weight > r.weight) break;
        if (ruleMatches(r, this.dir, f, b)) { best = r; break; }
      }
    }
    return best;
  }
}

export type ClassifierForm = 'auto' | 'linear' | 'tuples';

/**
 * Compiles one direction's rules (any order). 'auto' scans a few rules linearly and builds
 * tuples when that saves probes; the other forms are for the tests that compare the two.
 */
export function compileClassifier(rules: readonly Rule[], dir: Dir, form: ClassifierForm = 'auto'): RuleClassifier {
  const sorted = [...rules].sort((x, y) => y.weight - x.weight);
  if (form === 'linear') return new LinearClassifier(sorted, dir);
  if (form === 'tuples') return new TupleClassifier(sorted, dir, sorted.length);
  if (sorted.length <= LINEAR_MAX_RULES) return new LinearClassifier(sorted, dir);
  const t = new TupleClassifier(sorted, dir, sorted.length);
  return t.probes * 2 > sorted.length ? new LinearClassifier(sorted, dir) : t;
}
