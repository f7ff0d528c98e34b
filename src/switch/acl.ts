// Port ACLs. Directions are the VM's: Outbound = frames the VM sends (checked on the way into
// the switch), Inbound = frames toward the VM (checked on the way out); "local" is the VM's
// side of the packet, "remote" the other side.
// - Extended ACLs (Add-VMNetworkAdapterExtendedAcl): rules of one direction in descending
//   Weight; the first rule whose local/remote prefix, protocol and local/remote port match
//   decides Allow or Deny; no match = Allow. Only IP packets are subject to them. A Stateful
//   Allow creates a flow (protocol, local IP+port, remote IP+port) that lets both directions
//   through before any rule is consulted — the return traffic of an allowed outbound
//   connection passes an inbound Deny — until the flow sees no packet for IdleSessionTimeout.
// - 2012 ACLs (Add-VMNetworkAdapterAcl): by remote IP prefix or remote MAC. Allow/Deny: the
//   most specific matching rule wins (MAC > longer prefix), Deny on a tie, no match = Allow.
//   Meter: every matching Meter ACL counts the frames and bytes in its direction(s) — the
//   network half of resource metering.
// Both kinds must allow a frame. The extended rules are compiled per direction by
// acl-classifier.ts, with a verdict cache in front (acl-verdict-cache.ts) when there are more
// than a handful; the flows are kept by acl-flows.ts. Depends on packet, policy,
// acl-classifier, acl-verdict-cache, acl-flows.
import { type Cidr, type FrameInfo, parseMac, macToNumber } from '../packet/index.ts';
import type { AclDirection, ExtendedAcl, PortAcl } from './policy.ts';
import {
  OUTBOUND, INBOUND, LINEAR_MAX_RULES, type Dir, type Rule, type RuleClassifier, type ClassifierForm, cidrOrAny, compileRule, compileClassifier, ipMatch, mask32,
} from './acl-classifier.ts';
import { VerdictCache } from './acl-verdict-cache.ts';
import { FlowTable } from './acl-flows.ts';

export { OUTBOUND, INBOUND, type Dir };

interface Rule2012 {
  readonly acl: PortAcl;
  readonly dirs: readonly [boolean, boolean];
  readonly mac: number;
  readonly cidr: Cidr | null;
  /** Specificity: 129 for a MAC, else the prefix length (−1 = Any). */
  readonly rank: number;
  /**
   * An IPv4 prefix precomputed as int32 network and mask, matched inline: through ipMatch a
   * Meter rule's match cost about twice as much per frame as the rest of the meter (BENCHMARKS.md).
   * Only in PortAcls of the 'auto' form (the product's): the 'linear' form keeps ipMatch, and
   * the property test holds the two to the same verdicts and counts.
   */
  readonly v4: boolean;
  readonly v4Net: number;
  readonly v4Mask: number;
}

export interface MeterCounters {
  remoteAddress: string;
  inboundFrames: number;
  inboundBytes: number;
  outboundFrames: number;
  outboundBytes: number;
}

function dirsOf(d: AclDirection | 'Both'): readonly [boolean, boolean] {
  return [d !== 'Inbound', d !== 'Outbound'];
}

export class PortAcls {
  private readonly extended: [RuleClassifier, RuleClassifier];
  /** The verdict caches in front of `extended` (null: that direction has too few rules to gain from one). */
  readonly caches: [VerdictCache | null, VerdictCache | null];
  private readonly rules2012: Rule2012[] = [];
  private readonly has2012Filter: [boolean, boolean] = [false, false];
  readonly meters: MeterCounters[] = [];
  private readonly meterRules: Rule2012[] = [];
  /** Stateful flows, kept across policy changes. */
  readonly flows: FlowTable;
  private readonly anyStateful: boolean;
  /** Per direction: extended rules or stateful flows to consult (read once here: `size` is a getter on one classifier form, a field on the other). */
  private readonly extendedActive: [boolean, boolean];

  /** `form`: how the extended rules are compiled (tests compare the forms; the product uses 'auto', the only one with verdict caches). */
  constructor(extended: readonly ExtendedAcl[], acls2012: readonly PortAcl[], flows?: FlowTable, oldMeters?: readonly MeterCounters[], form: ClassifierForm = 'auto') {
    this.flows = flows ?? new FlowTable();
    const rules: [Rule[], Rule[]] = [[], []];
    for (const a of extended) rules[a.direction === 'Outbound' ? OUTBOUND : INBOUND].push(compileRule(a));
    this.extended = [compileClassifier(rules[OUTBOUND], OUTBOUND, form), compileClassifier(rules[INBOUND], INBOUND, form)];
    const cache = (c: RuleClassifier): VerdictCache | null => (form === 'auto' && c.size > LINEAR_MAX_RULES ? new VerdictCache(c) : null);
    this.caches = [cache(this.extended[OUTBOUND]), cache(this.extended[INBOUND])];
    this.anyStateful = rules.some((rs) => rs.some((r) => r.stateful));
    this.extendedActive = [this.extended[OUTBOUND].size > 0 || this.anyStateful, this.extended[INBOUND].size > 0 || this.anyStateful];
    for (const a of acls2012) {
      const cidr = a.remoteIPAddress !== undefined ? cidrOrAny(a.remoteIPAddress) : null;
      const mac = a.remoteMacAddress !== undefined ? macToNumber(parseMac(a.remoteMacAddress)) : -1;
      const v4 = form === 'auto' && cidr?.version === 4;
      const v4Mask = v4 ? mask32(cidr.prefixLength) : 0;
      const v4Net = v4 ? cidr.address & v4Mask : 0;
      const r: Rule2012 = { acl: a, dirs: dirsOf(a.direction), mac, cidr, rank: mac >= 0 ? 129 : cidr ? cidr.prefixLength : -1, v4, v4Net, v4Mask };
      if (a.action === 'Meter') {
        this.meterRules.push(r);
        const remote = a.remoteIPAddress ?? a.remoteMacAddress ?? 'Any';
        const old = oldMeters?.find((m) => m.remoteAddress === remote);
        this.meters.push(old ?? { remoteAddress: remote, inboundFrames: 0, inboundBytes: 0, outboundFrames: 0, outboundBytes: 0 });
      } else {
        this.rules2012.push(r);
        if (r.dirs[0]) this.has2012Filter[0] = true;
        if (r.dirs[1]) this.has2012Filter[1] = true;
      }
    }
  }

  get empty(): boolean {
    return this.extended[0].size === 0 && this.extended[1].size === 0 && this.rules2012.length === 0 && this.meterRules.length === 0;
  }

  /** Stateful rules: a verdict depends on the flows earlier frames made, not on the frame alone. */
  get stateful(): boolean { return this.anyStateful; }

  /**
   * For the flow cache, without stateful rules (the verdict is then a function of the frame's
   * MACs and IPv4 fields): would check() deny it? Counts nothing.
   */
  denies(dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
    if (this.has2012Filter[dir] && this.decide2012(dir, f, b)) return true;
    if (f.ipVersion === 0 || !this.extendedActive[dir]) return false;
    const cache = this.caches[dir];
    const r = cache !== null && f.ipVersion === 4 ? cache.lookup(f, b) : this.extended[dir].lookup(f, b);
    return r !== null && r.deny;
  }

  /** The Meter counters check() bumps for an allowed frame (the flow cache bumps them itself). */
  metersFor(dir: Dir, f: FrameInfo, b: Uint8Array): MeterCounters[] {
    const out: MeterCounters[] = [];
    for (let i = 0; i < this.meterRules.length; i++) if (this.matches2012(this.meterRules[i]!, dir, f, b)) out.push(this.meters[i]!);
    return out;
  }

  /** null = allowed; else the rule that denied the frame. Counts meters for allowed frames. */
  check(dir: Dir, f: FrameInfo, b: Uint8Array, now: number): ExtendedAcl | PortAcl | null {
    if (this.has2012Filter[dir]) {
      const r = this.decide2012(dir, f, b);
      if (r) return r;
    }
    if (f.ipVersion !== 0 && this.extendedActive[dir]) {
      const r = this.decideExtended(dir, this.extended[dir], f, b, now);
      if (r) return r;
    }
    if (this.meterRules.length > 0) this.meter(dir, f, b);
    return null;
  }

  private matches2012(r: Rule2012, dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
    if (!r.dirs[dir]) return false;
    if (r.mac >= 0) return (dir === OUTBOUND ? f.dst : f.src) === r.mac;
    if (r.v4) return f.ipVersion === 4 && (((dir === OUTBOUND ? f.ipDst : f.ipSrc) ^ r.v4Net) & r.v4Mask) === 0;
    if (!r.cidr) return true;
    return ipMatch(r.cidr, f, b, false, dir);
  }

  private decide2012(dir: Dir, f: FrameInfo, b: Uint8Array): PortAcl | null {
    let best: Rule2012 | null = null;
    for (const r of this.rules2012) {
      if (!this.matches2012(r, dir, f, b)) continue;
      if (!best || r.rank > best.rank || (r.rank === best.rank && r.acl.action === 'Deny')) best = r;
    }
    return best && best.acl.action === 'Deny' ? best.acl : null;
  }

  private meter(dir: Dir, f: FrameInfo, b: Uint8Array): void {
    for (let i = 0; i < this.meterRules.length; i++) {
      if (!this.matches2012(this.meterRules[i]!, dir, f, b)) continue;
      const m = this.meters[i]!;
      if (dir === OUTBOUND) { m.outboundFrames++; m.outboundBytes += f.length; } else { m.inboundFrames++; m.inboundBytes += f.length; }
    }
  }

  private decideExtended(dir: Dir, rs: RuleClassifier, f: FrameInfo, b: Uint8Array, now: number): ExtendedAcl | null {
    if (this.anyStateful && this.flows.touch(dir, f, b, now)) return null;
    const cache = this.caches[dir];
    const r = cache !== null && f.ipVersion === 4 ? cache.lookup(f, b) : rs.lookup(f, b);
    if (!r) return null;
    if (r.deny) return r.acl;
    if (r.stateful && this.anyStateful) this.flows.add(dir, f, b, now, r.idleMs);
    return null;
  }

  sweep(now: number): void { this.flows.sweep(now); }
}
