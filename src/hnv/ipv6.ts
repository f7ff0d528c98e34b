// IPv6 customer addresses in the NVGRE data path (the provider network stays IPv4): lookup
// records with IPv6 CAs by (VSID, CA), Neighbor Solicitations answered with a Neighbor
// Advertisement from the records — as ARP is for IPv4 (router.ts), so no NS is flooded — and the
// distributed router for IPv6: the gateway addresses of every subnet with an on-link IPv6
// customer route (its prefix ::1, and the router's link-local address ROUTER_LINK_LOCAL, which
// Router Advertisements come from — router-adv.ts — so SLAAC guests route through it), answered
// with GATEWAY_MAC and the Router flag, echo requests to them answered, and packets sent to
// GATEWAY_MAC routed between subnets of one routing domain, hop limit one less (ICMPv6 errors:
// router-icmp6.ts). A frame to a MAC is carried by the MAC's record as for IPv4 (compiled.ts
// keeps IPv6 records' MACs and PAs too). Not here: duplicate-address probes from :: (nobody is
// told: the records are the only owners). Pure. Depends on packet, compiled, lookup, router
// (GATEWAY_MAC).
import {
  ETHERTYPE_IPV6, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, IPPROTO_ICMPV6, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, ND_OPT_TARGET_LINKADDR, buildEthernet, buildIpv6,
  buildNeighborAdvertisement, formatIpv6, ipv6InPrefix, ipv6Key, isIpv6Unspecified, macFromNumber, parseCidr, parseIpv4Address, parseIpv6Address, setIcmpv6Checksum, type FrameInfo,
} from '../packet/index.ts';
import type { CompiledPolicy } from './compiled.ts';
import type { HnvPolicy } from './policy.ts';
import { GATEWAY_MAC } from './router.ts';

/** An IPv6 lookup record as the data path uses it. */
export interface Destination6 { readonly ca: Uint8Array; readonly mac: number; readonly pa: number }

/** IPv6 header of an untagged frame, and where its addresses are. */
const IP = 14, SRC = IP + 8, DST = IP + 24;
/** NS/NA: the target address follows the 4-byte reserved word after the ICMPv6 header. */
const ND_TARGET = IP + 40 + 8;

const key = (vsid: number, b: Uint8Array, off = 0): string => `${vsid}/${ipv6Key(b, off)}`;

/** The router's link-local address: fe80:: and the modified EUI-64 of GATEWAY_MAC (RFC 4291 App. A), the source of its RAs. */
export const ROUTER_LINK_LOCAL = parseIpv6Address('fe80::15:5dff:feff:ff01');

/** An on-link IPv6 customer route of a subnet: what its RAs advertise, and its gateway (::1). */
export interface OnLinkPrefix { readonly prefix: Uint8Array; readonly length: number; readonly gateway: Uint8Array }

export class Policy6 {
  private readonly byCa = new Map<string, Destination6>();
  private readonly gateways = new Set<string>();
  private readonly domainSubnets = new Map<string, number[]>();
  private readonly onLink = new Map<number, OnLinkPrefix[]>();

  constructor(private readonly p: CompiledPolicy, policy: HnvPolicy) {
    for (const r of policy.lookupRecords) {
      if (!r.customerAddress.includes(':') || r.providerAddress.includes(':') || r.type === 'GatewayWildcard') continue;
      const ca = parseIpv6Address(r.customerAddress);
      this.byCa.set(key(r.virtualSubnetId, ca), { ca, mac: parseInt(r.macAddress, 16), pa: parseIpv4Address(r.providerAddress) });
    }
    for (const route of policy.customerRoutes) {
      const subnets = this.domainSubnets.get(route.routingDomainId) ?? [];
      if (!subnets.includes(route.virtualSubnetId)) subnets.push(route.virtualSubnetId);
      this.domainSubnets.set(route.routingDomainId, subnets);
      const c = parseCidr(route.destinationPrefix);
      if (c.version !== 6 || route.nextHop !== '::' || c.prefixLength > 126) continue;
      const gw = c.address.slice();
      gw[15] = gw[15]! | 1; // the prefix's ::1 (normalized prefixes have the host bits clear)
      this.gateways.add(key(route.virtualSubnetId, gw));
      this.gateways.add(key(route.virtualSubnetId, ROUTER_LINK_LOCAL));
      const list = this.onLink.get(route.virtualSubnetId) ?? [];
      list.push({ prefix: c.address, length: c.prefixLength, gateway: gw });
      this.onLink.set(route.virtualSubnetId, list.sort((a, b) => b.length - a.length));
    }
  }

  /** The on-link IPv6 prefixes of `vsid`, longest first. */
  prefixes(vsid: number): readonly OnLinkPrefix[] { return this.onLink.get(vsid) ?? []; }

  /** The gateway (::1) of the on-link prefix of `vsid` that holds the address at `b[off]`: the sender's default router. */
  gatewayFor(vsid: number, b: Uint8Array, off: number): Uint8Array | undefined {
    return this.prefixes(vsid).find((o) => ipv6InPrefix(b, off, o.prefix, o.length))?.gateway;
  }

  byAddress(vsid: number, b: Uint8Array, off = 0): Destination6 | undefined { return this.byCa.get(key(vsid, b, off)); }
  isGateway(vsid: number, b: Uint8Array, off = 0): boolean { return this.gateways.has(key(vsid, b, off)); }

  /** A CA anywhere in the routing domain of `vsid` (a routed frame's source). */
  inDomain(vsid: number, b: Uint8Array, off: number): Destination6 | undefined {
    const rdid = this.p.tables.routingDomain(vsid);
    for (const v of rdid === undefined ? [vsid] : this.domainSubnets.get(rdid) ?? [vsid]) {
      const d = this.byAddress(v, b, off);
      if (d) return d;
    }
    return undefined;
  }
}

/** An NS from a VM of `vsid` (`info` its parse): the NA to send back, 'none' (a probe nobody answers), or a drop reason. */
export function neighborAnswer(p6: Policy6, vsid: number, frame: Uint8Array, info: FrameInfo): Uint8Array | 'none' | 'hnv-no-lookup-record' {
  if (info.ndTargetOffset !== ND_TARGET || isIpv6Unspecified(frame, SRC)) return 'none';
  const target = frame.subarray(ND_TARGET, ND_TARGET + 16);
  const gateway = p6.isGateway(vsid, target);
  const mac = gateway ? GATEWAY_MAC : p6.byAddress(vsid, target)?.mac;
  if (mac === undefined) return 'hnv-no-lookup-record';
  if (mac === info.src) return 'none'; // its own address: nobody else has it
  const na = buildNeighborAdvertisement({
    target, flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE | (gateway ? NA_FLAG_ROUTER : 0), options: [{ type: ND_OPT_TARGET_LINKADDR, mac: macFromNumber(mac) }],
  });
  const src = Uint8Array.from(target), dst = frame.slice(SRC, SRC + 16);
  setIcmpv6Checksum(na, src, dst);
  return buildEthernet({ dst: macFromNumber(info.src), src: macFromNumber(mac), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: na }) });
}

/** An echo request a VM of `vsid` sent to one of its gateway's addresses: the echo reply, else undefined. */
export function gatewayEcho6(p6: Policy6, vsid: number, frame: Uint8Array, info: FrameInfo): Uint8Array | undefined {
  if (info.ipProtocol !== IPPROTO_ICMPV6 || info.icmpType !== ICMPV6_ECHO_REQUEST || info.l4Offset !== IP + 40 || !p6.isGateway(vsid, frame, DST)) return undefined;
  const msg = frame.slice(info.l4Offset, info.l4Offset + info.l4Length);
  msg[0] = ICMPV6_ECHO_REPLY;
  const src = frame.slice(DST, DST + 16), dst = frame.slice(SRC, SRC + 16);
  setIcmpv6Checksum(msg, src, dst);
  return buildEthernet({ dst: macFromNumber(info.src), src: macFromNumber(GATEWAY_MAC), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 64, payload: msg }) });
}

export type Routed6 = { readonly ok: true; readonly frame: Uint8Array; readonly vsid: number; readonly mac: number } | { readonly ok: false; readonly drop: string };

/** Routes an IPv6 frame a VM of `vsid` sent to GATEWAY_MAC, as router.ts route() does IPv4. */
export function route6(p: CompiledPolicy, p6: Policy6, vsid: number, frame: Uint8Array): Routed6 {
  if (frame.length < IP + 40) return { ok: false, drop: 'hnv-not-routable' };
  const dst = formatIpv6(frame, DST);
  let r = p.tables.route(vsid, dst);
  let hop = frame.subarray(DST, DST + 16);
  if (r && r.nextHop !== '::') {
    hop = parseIpv6Address(r.nextHop);
    r = p.tables.route(vsid, r.nextHop);
    if (r && r.nextHop !== '::') r = undefined;
  }
  if (!r) return { ok: false, drop: 'hnv-no-route' };
  const to = p6.byAddress(r.virtualSubnetId, hop);
  if (!to) return { ok: false, drop: 'hnv-no-lookup-record' };
  const hopLimit = frame[IP + 7]!;
  if (hopLimit <= 1) return { ok: false, drop: 'hnv-ttl-expired' };
  const out = Uint8Array.prototype.slice.call(frame) as Uint8Array;
  out.set(macFromNumber(to.mac), 0);
  out.set(macFromNumber(GATEWAY_MAC), 6);
  out[IP + 7] = hopLimit - 1; // no header checksum in IPv6
  return { ok: true, frame: out, vsid: r.virtualSubnetId, mac: to.mac };
}

/**
 * The PA a routed IPv6 frame (source GATEWAY_MAC) must come from: its source CA's record in the
 * routing domain, or for a source outside the domain's CAs (the gateway routed it in) the record
 * of the next hop our own routes name for that address.
 */
export function routedSourcePa(p: CompiledPolicy, p6: Policy6, vsid: number, inner: Uint8Array): number | undefined {
  if (inner.length < IP + 40) return undefined;
  const own = p6.inDomain(vsid, inner, SRC);
  if (own) return own.pa;
  const r = p.tables.route(vsid, formatIpv6(inner, SRC));
  if (!r || r.nextHop === '::') return undefined;
  const hop = p.tables.route(vsid, r.nextHop);
  return hop && hop.nextHop === '::' ? p6.byAddress(hop.virtualSubnetId, parseIpv6Address(r.nextHop))?.pa : undefined;
}
