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
// Both kinds must allow a frame. Depends on packet, policy.
import {
  type Cidr, type FrameInfo, parseCidr, parseMac, macToNumber, ipv4InPrefix, ipv6InPrefix, ipv6Key,
  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6,
} from '../packet/index.ts';
import { VmhostError } from '../common/errors.ts';
import type { AclDirection, ExtendedAcl, PortAcl } from './policy.ts';

export const OUTBOUND = 0;
export const INBOUND = 1;
export type Dir = typeof OUTBOUND | typeof INBOUND;

const DEFAULT_IDLE_S = 300;

interface Rule {
  readonly acl: ExtendedAcl;
  readonly deny: boolean;
  readonly local: Cidr | null;
  readonly remote: Cidr | null;
  /** -1 any; -2 ICMP (v4 or v6). */
  readonly proto: number;
  readonly lp: readonly [number, number] | null;
  readonly rp: readonly [number, number] | null;
  readonly stateful: boolean;
  readonly idleMs: number;
}

interface Rule2012 {
  readonly acl: PortAcl;
  readonly dirs: readonly [boolean, boolean];
  readonly mac: number;
  readonly cidr: Cidr | null;
  /** Specificity: 129 for a MAC, else the prefix length (−1 = Any). */
  readonly rank: number;
}

export interface MeterCounters {
  remoteAddress: string;
  inboundFrames: number;
  inboundBytes: number;
  outboundFrames: number;
  outboundBytes: number;
}

export interface Flow {
  lastSeen: number;
  idleMs: number;
}

function badAcl(message: string): VmhostError {
  return new VmhostError('SWITCH_BAD_POLICY', message, { op: 'acl' });
}

function cidrOrAny(text: string | undefined): Cidr | null {
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
  if (p === undefined) return -1;
  if (typeof p === 'number') return p;
  switch (p.toUpperCase()) {
    case 'ANY': return -1;
    case 'TCP': return IPPROTO_TCP;
    case 'UDP': return IPPROTO_UDP;
    case 'ICMP': return -2;
    case 'ICMPV4': return IPPROTO_ICMP;
    case 'ICMPV6': return IPPROTO_ICMPV6;
  }
  if (/^\d{1,3}$/.test(p) && Number(p) < 256) return Number(p);
  throw badAcl(`bad protocol ${p}`);
}

function dirsOf(d: AclDirection | 'Both'): readonly [boolean, boolean] {
  return [d !== 'Inbound', d !== 'Outbound'];
}

function ipMatch(c: Cidr, f: FrameInfo, b: Uint8Array, local: boolean, dir: Dir): boolean {
  const useSrc = (dir === OUTBOUND) === local;
  if (c.version === 4) return f.ipVersion === 4 && ipv4InPrefix(useSrc ? f.ipSrc : f.ipDst, c.address, c.prefixLength);
  return f.ipVersion === 6 && ipv6InPrefix(b, useSrc ? f.ipSrcOffset : f.ipDstOffset, c.address, c.prefixLength);
}

export class PortAcls {
  private readonly rules: [Rule[], Rule[]] = [[], []];
  private readonly rules2012: Rule2012[] = [];
  private readonly has2012Filter: [boolean, boolean] = [false, false];
  readonly meters: MeterCounters[] = [];
  private readonly meterRules: Rule2012[] = [];
  /** Stateful flows, kept across policy changes. */
  readonly flows: Map<string, Flow>;
  private readonly anyStateful: boolean;

  constructor(extended: readonly ExtendedAcl[], acls2012: readonly PortAcl[], flows?: Map<string, Flow>, oldMeters?: readonly MeterCounters[]) {
    this.flows = flows ?? new Map();
    for (const a of extended) {
      const r: Rule = {
        acl: a, deny: a.action === 'Deny', local: cidrOrAny(a.localIPAddress), remote: cidrOrAny(a.remoteIPAddress),
        proto: protocolNumber(a.protocol), lp: portRange(a.localPort), rp: portRange(a.remotePort),
        stateful: a.stateful === true && a.action === 'Allow', idleMs: (a.idleSessionTimeout || DEFAULT_IDLE_S) * 1000,
      };
      this.rules[a.direction === 'Outbound' ? OUTBOUND : INBOUND].push(r);
    }
    for (const rs of this.rules) rs.sort((x, y) => y.acl.weight - x.acl.weight);
    this.anyStateful = this.rules.some((rs) => rs.some((r) => r.stateful));
    for (const a of acls2012) {
      const cidr = a.remoteIPAddress !== undefined ? cidrOrAny(a.remoteIPAddress) : null;
      const mac = a.remoteMacAddress !== undefined ? macToNumber(parseMac(a.remoteMacAddress)) : -1;
      const r: Rule2012 = { acl: a, dirs: dirsOf(a.direction), mac, cidr, rank: mac >= 0 ? 129 : cidr ? cidr.prefixLength : -1 };
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
    return this.rules[0].length === 0 && this.rules[1].length === 0 && this.rules2012.length === 0 && this.meterRules.length === 0;
  }

  /** null = allowed; else the rule that denied the frame. Counts meters for allowed frames. */
  check(dir: Dir, f: FrameInfo, b: Uint8Array, now: number): ExtendedAcl | PortAcl | null {
    if (this.has2012Filter[dir]) {
      const r = this.decide2012(dir, f, b);
      if (r) return r;
    }
    if (f.ipVersion !== 0) {
      const rs = this.rules[dir];
      if (rs.length > 0 || this.anyStateful) {
        const r = this.decideExtended(dir, rs, f, b, now);
        if (r) return r;
      }
    }
    if (this.meterRules.length > 0) this.meter(dir, f, b);
    return null;
  }

  private matches2012(r: Rule2012, dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
    if (!r.dirs[dir]) return false;
    if (r.mac >= 0) return (dir === OUTBOUND ? f.dst : f.src) === r.mac;
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

  private flowKey(dir: Dir, f: FrameInfo, b: Uint8Array): string {
    const out = dir === OUTBOUND;
    const s = f.ipVersion === 4 ? String(f.ipSrc) : ipv6Key(b, f.ipSrcOffset);
    const d = f.ipVersion === 4 ? String(f.ipDst) : ipv6Key(b, f.ipDstOffset);
    // Always (protocol, local, localPort, remote, remotePort): the same key both ways.
    return out ? `${f.ipProtocol}|${s}|${f.srcPort}|${d}|${f.dstPort}` : `${f.ipProtocol}|${d}|${f.dstPort}|${s}|${f.srcPort}`;
  }

  private decideExtended(dir: Dir, rs: readonly Rule[], f: FrameInfo, b: Uint8Array, now: number): ExtendedAcl | null {
    let key: string | null = null;
    if (this.anyStateful) {
      key = this.flowKey(dir, f, b);
      const fl = this.flows.get(key);
      if (fl) {
        if (now - fl.lastSeen <= fl.idleMs) { fl.lastSeen = now; return null; }
        this.flows.delete(key);
      }
    }
    const out = dir === OUTBOUND;
    const lport = out ? f.srcPort : f.dstPort;
    const rport = out ? f.dstPort : f.srcPort;
    for (const r of rs) {
      if (r.proto !== -1) {
        if (r.proto === -2) { if (f.ipProtocol !== IPPROTO_ICMP && f.ipProtocol !== IPPROTO_ICMPV6) continue; } else if (f.ipProtocol !== r.proto) continue;
      }
      if (r.local && !ipMatch(r.local, f, b, true, dir)) continue;
      if (r.remote && !ipMatch(r.remote, f, b, false, dir)) continue;
      if (r.lp && (lport < r.lp[0] || lport > r.lp[1])) continue;
      if (r.rp && (rport < r.rp[0] || rport > r.rp[1])) continue;
      if (r.deny) return r.acl;
      if (r.stateful && key !== null) this.flows.set(key, { lastSeen: now, idleMs: r.idleMs });
      return null;
    }
    return null;
  }

  sweep(now: number): void {
    for (const [k, fl] of this.flows) if (now - fl.lastSeen > fl.idleMs) this.flows.delete(k);
  }
}
