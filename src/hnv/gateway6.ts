// IPv6 through the multitenant gateway (gateway.ts holds the IPv4 side and the ports; this is
// what it does with an IPv6 frame). Per served routing domain that has IPv6: the gateway's CA
// in its subnet (the next hop of the domain's ::/0 customer route, a lookup record with the
// port's MAC) and its address on the datacenter segment, which the datacenter routes the
// domain's addresses to.
// - Forwarding mode: routed, no translation — IPv6's normal way: the domain's on-link IPv6
//   customer prefixes go out and come in unchanged (so forwarding-mode domains must not
//   overlap; the datacenter routes each prefix to the external address).
// - NAT mode: NPTv6 (RFC 6296, nptv6.ts) from the domain's internal prefix to its own external
//   prefix — tenants with the same addresses (Blue's and Red's fd00:b::/64) get different ones
//   outside, so a reply names exactly one domain. Stateless and checksum-neutral: every
//   protocol and fragment passes, ICMPv6 errors too (the quoted packet's address is translated
//   as well, so a Packet Too Big from the datacenter reaches the guest's own socket). As the
//   IPv4 NAT lets nothing unsolicited in, inbound is filtered by address pair (RFC 4787's
//   address-dependent filtering: a datacenter address may send to a VM address it was sent
//   from, within the idle time: TCP 2 h 4 min, else 120 s; 65,536 pairs at most); an ICMPv6
//   error by the pair it quotes.
// - Never between domains: toward another domain's external prefix or address, or a
//   forwarding-mode domain's prefix, refused (gw-hairpin, gw-cross-domain).
// Both ways the hop limit is one less (at 1: gw-ttl-expired, and Time Exceeded back to the
// sender, so traceroute6 shows the gateway). A packet bigger than the next
// link's MTU gets Packet Too Big (RFC 4443, RFC 8201) back to its sender: from a VM, the
// datacenter's IPv6 MTU (default 1500), sent from the gateway's CA; from the datacenter, the
// customer MTU (1458: the provider MTU less NVGRE), sent from the external address — rate
// limited with the router's bucket. Neighbour Discovery on the datacenter segment: NS for an
// external address answered (Router flag), the asker's link-layer address learned, unknown
// neighbours solicited (up to 3 frames wait 1 s per address, 256 addresses). Pure but for the
// gateway's injections. Depends on packet, policy, nptv6, router-icmp (IcmpErrors).
import {
  ETHERTYPE_IPV6, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, IPPROTO_ICMPV6, IPPROTO_TCP, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT,
  ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR, buildEthernet, buildIcmpv6Error, buildIpv6, buildNeighborAdvertisement, buildNeighborSolicitation,
  formatIpv6, ipv6InPrefix, ipv6Key, ipv6MulticastMac, isIcmpv6Error, isIpv6Unspecified, macFromNumber, parseCidr, parseIpv6Address, setIcmpv6Checksum, solicitedNodeMulticast,
  type FrameInfo,
} from '../packet/index.ts';
import type { HnvPolicy } from './policy.ts';
import { Nptv6 } from './nptv6.ts';
import type { IcmpErrors } from './router-icmp.ts';

/** A routing domain's IPv6 at the gateway. */
export interface GatewayIpv6 {
  /** The gateway's IPv6 CA in its subnet: the next hop of the domain's ::/0 customer route, with a lookup record naming the port's MAC. */
  readonly customerAddress: string;
  /** Its IPv6 address on the datacenter segment, to which the datacenter routes the domain's (NAT: its external) prefix. */
  readonly externalAddress: string;
  /** NAT mode: the NPTv6 internal and external prefixes (same length, at most /64). */
  readonly internalPrefix?: string;
  readonly externalPrefix?: string;
  /** The datacenter's IPv6 MTU (1280–9000, default 1500). */
  readonly mtu?: number;
}

export const DEFAULT_DATACENTER_MTU = 1500;

/** What the gateway's IPv4 side knows of a domain and hands in. */
export interface Domain6Of { readonly routingDomainId: string; readonly mode: 'Nat' | 'Forwarding'; readonly ipv6?: GatewayIpv6 }

/** What Gateway6 needs of the gateway: its clock, the datacenter MAC, and the ways out. */
export interface Gateway6Host<D> {
  readonly datacenterMac: number;
  readonly customerMtu: number;
  readonly icmp: IcmpErrors;
  now(): number;
  /** `b` (IPv6, MACs to be set) into the domain's subnet, to the distributed router. */
  toTenant(d: D, b: Uint8Array): void;
  /** `b` (MACs set) onto the datacenter segment. */
  toWire(b: Uint8Array): void;
  drop(reason: string): void;
  passed(outward: boolean): void;
}

interface Served<D> {
  readonly d: D;
  readonly ca: Uint8Array;
  readonly external: Uint8Array;
  readonly npt: Nptv6 | undefined;
  readonly mtu: number;
}

const IP = 14, SRC = IP + 8, DST = IP + 24, L4 = IP + 40;
/** Where an ICMPv6 error quotes the invoking packet's addresses. */
const QUOTED_SRC = L4 + 8 + 8, QUOTED_DST = L4 + 8 + 24;
const ND_QUEUE = 3, ND_WAIT_MS = 1000, ND_PENDING_MAX = 256;
const FILTER_TCP_MS = 7_440_000, FILTER_MS = 120_000;
/** Address pairs the NAT filter holds at most (a VM spraying new destinations cannot grow it without bound). */
const FILTER_MAX = 65_536;

/** An IPv6 prefix's network and length (packet's parseCidr; the callers hand in IPv6 prefixes only). */
const prefixOf = (text: string): { prefix: Uint8Array; length: number } => {
  const c = parseCidr(text);
  return { prefix: c.address as Uint8Array, length: c.prefixLength };
};

export class Gateway6<D extends Domain6Of> {
  private readonly served: Served<D>[] = [];
  private readonly byDomain = new Map<D, Served<D>>();
  /** The forwarding-mode domains' on-link IPv6 customer prefixes. */
  private forwarded: { readonly s: Served<D>; readonly prefix: Uint8Array; readonly length: number }[] = [];
  private readonly neighbours = new Map<string, number>();
  private readonly pending = new Map<string, { readonly frames: Uint8Array[]; readonly asked: number }>();
  /** NAT mode's inbound filter: external VM address + datacenter address → until when replies may come in. */
  private readonly allowed = new Map<string, number>();

  constructor(private readonly h: Gateway6Host<D>, domains: readonly D[]) {
    for (const d of domains) {
      if (!d.ipv6) continue;
      const v = d.ipv6;
      let npt: Nptv6 | undefined;
      if (d.mode === 'Nat') {
        const i = prefixOf(v.internalPrefix!), e = prefixOf(v.externalPrefix!);
        npt = new Nptv6(i.prefix, e.prefix, i.length);
      }
      const s: Served<D> = { d, ca: parseIpv6Address(v.customerAddress), external: parseIpv6Address(v.externalAddress), npt, mtu: v.mtu ?? DEFAULT_DATACENTER_MTU };
      this.served.push(s);
      this.byDomain.set(d, s);
    }
  }

  /** The forwarding-mode domains' on-link IPv6 prefixes, from the host's policy. */
  setPolicy(policy: HnvPolicy): void {
    this.forwarded = [];
    for (const r of policy.customerRoutes) {
      const s = this.served.find((x) => x.d.routingDomainId === r.routingDomainId);
      if (s?.d.mode !== 'Forwarding' || r.nextHop !== '::' || !r.destinationPrefix.includes(':')) continue;
      this.forwarded.push({ s, ...prefixOf(r.destinationPrefix) });
    }
  }

  private forwardedTo(b: Uint8Array, off: number): Served<D> | undefined {
    return this.forwarded.find((x) => ipv6InPrefix(b, off, x.prefix, x.length))?.s;
  }

  /** An address of the gateway's datacenter side, or in a NAT domain's external prefix: never a way in from a tenant. */
  private isOutside(b: Uint8Array, off: number): boolean {
    return this.served.some((s) => ipv6Key(s.external) === ipv6Key(b, off) || (s.npt?.isExternal(b, off) ?? false));
  }

  // ---- tenant → datacenter ----

  /** An IPv6 frame a VM routed to the gateway port of domain `d` (`info`: its parse). */
  fromTenant(d: D, frame: Uint8Array, info: FrameInfo): void {
    const s = this.byDomain.get(d);
    if (!s) return this.h.drop('gw-no-ipv6');
    if (!info.ok || frame.length < L4) return this.h.drop('gw-malformed');
    const back = (e: Uint8Array): void => this.h.toTenant(d, e);
    if (frame[IP + 7]! <= 1) return this.refuse('gw-ttl-expired', frame, info, 'time-exceeded6', 0, s.ca, back);
    if (this.isOutside(frame, DST)) return this.h.drop('gw-hairpin');
    const other = this.forwardedTo(frame, DST);
    if (other !== undefined && other !== s) return this.h.drop('gw-cross-domain');
    if (frame.length - IP > s.mtu) return this.refuse('gw-too-big', frame, info, 'packet-too-big6', s.mtu, s.ca, back);
    const b = Uint8Array.prototype.slice.call(frame) as Uint8Array;
    if (s.npt) {
      if (!s.npt.isInternal(b, SRC) || !s.npt.outbound(b, SRC)) return this.h.drop('gw-no-translation');
      if (this.quotes(info, b)) {
        // An error about a packet a VM got: the quoted packet went to the VM's address. It opens nothing.
        if (s.npt.isInternal(b, QUOTED_DST)) s.npt.outbound(b, QUOTED_DST);
      } else if (!this.allow(b, SRC, DST, info.ipProtocol === IPPROTO_TCP ? FILTER_TCP_MS : FILTER_MS)) {
        return this.h.drop('gw-filter-full');
      }
    }
    b[IP + 7] = b[IP + 7]! - 1;
    this.h.passed(true);
    this.toDatacenter(b);
  }

  /** An ICMPv6 error whose quoted IPv6 header is here whole. */
  private quotes(info: FrameInfo, b: Uint8Array): boolean {
    return info.ipProtocol === IPPROTO_ICMPV6 && info.l4Offset === L4 && info.icmpType >= 0 && isIcmpv6Error(info.icmpType) && b.length >= QUOTED_DST + 16;
  }

  /** Replies from `remote` to `vm` may come in for `ms` more; false: the filter is full (a new pair waits for the sweep). */
  private allow(b: Uint8Array, vm: number, remote: number, ms: number): boolean {
    const k = ipv6Key(b, vm) + ipv6Key(b, remote);
    if (this.allowed.size >= FILTER_MAX && !this.allowed.has(k)) return false;
    this.allowed.set(k, this.h.now() + ms);
    return true;
  }

  private allows(b: Uint8Array, vm: number, remote: number): boolean {
    return (this.allowed.get(ipv6Key(b, vm) + ipv6Key(b, remote)) ?? 0) > this.h.now();
  }

  private toDatacenter(b: Uint8Array): void {
    b.set(macFromNumber(this.h.datacenterMac), 6);
    const key = ipv6Key(b, DST);
    const mac = this.neighbours.get(key);
    if (mac !== undefined) { b.set(macFromNumber(mac), 0); this.h.toWire(b); return; }
    const now = this.h.now();
    this.giveUp(now);
    const q = this.pending.get(key);
    if (q ? q.frames.length >= ND_QUEUE : this.pending.size >= ND_PENDING_MAX) return this.h.drop('gw-nd-queue-full');
    if (q) { q.frames.push(b); return; }
    this.pending.set(key, { frames: [b], asked: now });
    // Asked from the first external address: any of ours is answered the same.
    const target = b.slice(DST, DST + 16), group = solicitedNodeMulticast(target), src = this.served[0]!.external;
    const ns = buildNeighborSolicitation({ target, options: [{ type: ND_OPT_SOURCE_LINKADDR, mac: macFromNumber(this.h.datacenterMac) }] });
    setIcmpv6Checksum(ns, src, group);
    this.h.toWire(buildEthernet({ dst: ipv6MulticastMac(group), src: macFromNumber(this.h.datacenterMac), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src, dst: group, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: ns }) }));
  }

  /** Neighbour questions nobody answered within ND_WAIT_MS are given up: what waited is dropped. */
  giveUp(now: number): void {
    for (const [k, x] of this.pending) {
      if (now - x.asked <= ND_WAIT_MS) continue;
      this.pending.delete(k);
      for (let i = 0; i < x.frames.length; i++) this.h.drop('gw-nd-unresolved');
    }
  }

  /** Expired filter entries go; returns how many. */
  sweep(): number {
    const now = this.h.now();
    let n = 0;
    for (const [k, until] of this.allowed) if (until <= now) { this.allowed.delete(k); n++; }
    this.giveUp(now);
    return n;
  }

  // ---- datacenter → tenant ----

  /** An IPv6 frame on the datacenter segment (`dcMac`: whether it is addressed to the gateway's MAC). */
  fromDatacenter(frame: Uint8Array, info: FrameInfo): void {
    if (info.ipProtocol === IPPROTO_ICMPV6 && (info.icmpType === ND_NEIGHBOR_SOLICIT || info.icmpType === ND_NEIGHBOR_ADVERT)) return this.nd(frame, info);
    if (info.dst !== this.h.datacenterMac) return;
    if (!info.ok || frame.length < L4) return this.h.drop('gw-malformed');
    const b = Uint8Array.prototype.slice.call(frame) as Uint8Array;
    let s = this.served.find((x) => x.npt?.isExternal(b, DST));
    if (s) {
      const error = this.quotes(info, b);
      const ok = error ? this.allows(b, QUOTED_SRC, QUOTED_DST) : this.allows(b, DST, SRC);
      if (!ok || !s.npt!.inbound(b, DST)) return this.h.drop('gw-no-translation');
      if (error && s.npt!.isExternal(b, QUOTED_SRC)) s.npt!.inbound(b, QUOTED_SRC);
    } else {
      s = this.forwardedTo(b, DST);
      if (!s) return this.h.drop('gw-no-route');
    }
    // Errors go back to the datacenter sender from the external address (after the checks above: never one the filter would refuse).
    const back = (e: Uint8Array): void => { e.set(frame.subarray(6, 12), 0); e.set(macFromNumber(this.h.datacenterMac), 6); this.h.toWire(e); };
    if (frame[IP + 7]! <= 1) return this.refuse('gw-ttl-expired', frame, info, 'time-exceeded6', 0, s.external, back);
    if (frame.length - IP > this.h.customerMtu) return this.refuse('gw-too-big', frame, info, 'packet-too-big6', this.h.customerMtu, s.external, back);
    b[IP + 7] = b[IP + 7]! - 1;
    this.h.passed(false);
    this.h.toTenant(s.d, b);
  }

  /** NS for one of our external addresses answered (the asker learned); an NA for a neighbour we asked after learned, and what waited sent. */
  private nd(frame: Uint8Array, info: FrameInfo): void {
    if (info.ndTargetOffset < 0) return;
    const target = frame.subarray(info.ndTargetOffset, info.ndTargetOffset + 16);
    if (info.icmpType === ND_NEIGHBOR_ADVERT) {
      const mac = info.ndTargetLinkAddr >= 0 ? info.ndTargetLinkAddr : info.src;
      const key = ipv6Key(target);
      if (!this.pending.has(key) && !this.neighbours.has(key)) return; // unasked: nothing to learn (no cache poisoning by chatter)
      return this.learn(key, mac);
    }
    const key = ipv6Key(target);
    if (!this.served.some((s) => ipv6Key(s.external) === key)) return;
    const unspecified = isIpv6Unspecified(frame, SRC);
    if (!unspecified && info.ndSourceLinkAddr >= 0) this.learn(ipv6Key(frame, SRC), info.ndSourceLinkAddr);
    const dcMac = macFromNumber(this.h.datacenterMac), src = Uint8Array.from(target);
    // A duplicate-address probe (from ::) is defended to all-nodes, unsolicited (RFC 4861 §7.2.4).
    const dst = unspecified ? parseIpv6Address('ff02::1') : frame.slice(SRC, SRC + 16);
    const na = buildNeighborAdvertisement({ target: src, flags: NA_FLAG_ROUTER | NA_FLAG_OVERRIDE | (unspecified ? 0 : NA_FLAG_SOLICITED), options: [{ type: ND_OPT_TARGET_LINKADDR, mac: dcMac }] });
    setIcmpv6Checksum(na, src, dst);
    const ethDst = unspecified ? ipv6MulticastMac(dst) : macFromNumber(info.src);
    this.h.toWire(buildEthernet({ dst: ethDst, src: dcMac, ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: na }) }));
  }

  private learn(key: string, mac: number): void {
    this.neighbours.set(key, mac);
    const q = this.pending.get(key);
    if (q) { this.pending.delete(key); for (const b of q.frames) this.toDatacenter(b); }
  }

  /**
   * A packet the gateway will not pass on: counted under `reason`, and its sender told (Time
   * Exceeded for hop limit 1; Packet Too Big with `word` the next link's MTU) from `from`, the
   * gateway's address on the sender's side — never about an ICMPv6 error (RFC 4443 §2.4(e)),
   * within the router's rate limit. `send` puts the error on its way (the MACs are its to set).
   */
  private refuse(reason: string, frame: Uint8Array, info: FrameInfo, kind: 'time-exceeded6' | 'packet-too-big6', word: number, from: Uint8Array, send: (e: Uint8Array) => void): void {
    this.h.drop(reason);
    if (info.ipProtocol === IPPROTO_ICMPV6 && info.icmpType >= 0 && isIcmpv6Error(info.icmpType)) return;
    if (!this.h.icmp.admit(kind)) return;
    const dst = frame.slice(SRC, SRC + 16);
    const msg = buildIcmpv6Error({ type: kind === 'time-exceeded6' ? ICMPV6_TIME_EXCEEDED : ICMPV6_PACKET_TOO_BIG, code: 0, word, invoking: frame.subarray(IP) });
    setIcmpv6Checksum(msg, from, dst);
    send(buildEthernet({ dst: new Uint8Array(6), src: new Uint8Array(6), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src: from, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 64, payload: msg }) }));
  }

  status(): { neighbours: number; filtered: number; domains: Record<string, unknown>[] } {
    return {
      neighbours: this.neighbours.size, filtered: this.allowed.size,
      domains: this.served.map((s) => ({
        routingDomainId: s.d.routingDomainId, customerAddress: formatIpv6(s.ca), externalAddress: formatIpv6(s.external), mtu: s.mtu,
        ...(s.npt ? { internalPrefix: `${formatIpv6(s.npt.internal)}/${s.npt.length}`, externalPrefix: `${formatIpv6(s.npt.external)}/${s.npt.length}` } : {}),
      })),
    };
  }
}
