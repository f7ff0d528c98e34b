// The distributed router's ICMP errors (RFC 792, RFC 1812 §4.3.2; RFC 4443 for IPv6 in
// router-icmp6.ts): a routed IPv4 packet whose TTL runs out gets Time Exceeded (type 11 code
// 0), one with no customer route Destination Unreachable / net unreachable (type 3 code 0), one
// whose destination has no lookup record host unreachable (code 1), one with DF set too big for
// the provider network once encapsulated fragmentation needed (code 4, with the customer MTU,
// RFC 1191), sent back to the VM on its own port from the gateway MAC and the gateway address
// (.1) of the sender's subnet — as the sender's default router would — so traceroute shows the
// hop, a missing route fails at once instead of timing out and path MTU discovery finds 1458.
// Never about an ICMP error, a later fragment, or a packet from an address that is not the
// sender's unicast one (RFC 1812 §4.3.2.7); at most RATE per second with a burst of BURST
// across the host's data path, IPv4 and IPv6 together (a token bucket, as RFC 4443 §2.4(f)
// suggests: a VM sending into a black hole cannot make the router flood it), each error sent or
// held back counted. The original IP header and as much of its payload as fits in 576 bytes
// are quoted. Pure but for the clock. Depends on packet, compiled, ipv6 (Policy6),
// router-icmp6, router (GATEWAY_MAC).
import {
  ETHERTYPE_IPV4, ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACHABLE, ICMP_NET_UNREACHABLE, ICMP_TIME_EXCEEDED, IPPROTO_ICMP,
  buildEthernet, buildIcmpv4Error, buildIpv4, ipv4Mask, isIpv4Multicast, macFromNumber, parseCidr, type FrameInfo,
} from '../packet/index.ts';
import type { CompiledPolicy } from './compiled.ts';
import type { Policy6 } from './ipv6.ts';
import { icmpv6Error, type Icmpv6ErrorKind } from './router-icmp6.ts';
import { GATEWAY_MAC } from './router.ts';

/** ICMP error types (RFC 1812 §4.3.2.7: never answered with an error). */
const ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
const RATE = 10, BURST = 20;
const IP = 14;
/** The DF bit in the flags/fragment offset word's high byte. */
const DF = 0x40;

export type IcmpErrorKind = 'time-exceeded' | 'net-unreachable' | 'host-unreachable' | 'frag-needed';

const TYPE_CODE: Record<IcmpErrorKind, readonly [number, number]> = {
  'time-exceeded': [ICMP_TIME_EXCEEDED, 0],
  'net-unreachable': [ICMP_DEST_UNREACHABLE, ICMP_NET_UNREACHABLE],
  'host-unreachable': [ICMP_DEST_UNREACHABLE, ICMP_HOST_UNREACHABLE],
  'frag-needed': [ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED],
};

/** The ICMP and ICMPv6 errors one data path sends: the bucket and the counts. */
export class IcmpErrors {
  private tokens = BURST;
  private last: number;
  readonly sent: Record<IcmpErrorKind | Icmpv6ErrorKind, number> = {
    'time-exceeded': 0, 'net-unreachable': 0, 'host-unreachable': 0, 'frag-needed': 0,
    'time-exceeded6': 0, 'no-route6': 0, 'address-unreachable6': 0, 'packet-too-big6': 0,
  };
  rateLimited = 0;

  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }

  /**
   * The error frame for `frame` (an untagged IPv4 frame a VM of `vsid` sent, parsed as `info`),
   * or undefined when none is due (see the header; fragmentation needed only with DF) or the
   * bucket is empty. `mtu`: the next-hop MTU for 'frag-needed'.
   */
  answer(p: CompiledPolicy, vsid: number, frame: Uint8Array, info: FrameInfo, kind: IcmpErrorKind, mtu = 0): Uint8Array | undefined {
    if (info.ipVersion !== 4 || info.laterFragment || (info.ipProtocol === IPPROTO_ICMP && ERROR_TYPES.has(info.icmpType))) return undefined;
    if (info.ipSrc === 0 || isIpv4Multicast(info.ipSrc) || info.ipSrc === 0xffff_ffff) return undefined;
    if (kind === 'frag-needed' && (frame[IP + 6]! & DF) === 0) return undefined;
    const from = gatewayAddress(p, vsid, info.ipSrc);
    if (from === undefined || !this.admit(kind)) return undefined;
    const ipLength = ((frame[IP + 2]! << 8) | frame[IP + 3]!) || frame.length - IP;
    const [type, code] = TYPE_CODE[kind];
    const icmp = buildIcmpv4Error({ type, code, word: kind === 'frag-needed' ? mtu & 0xffff : 0, invoking: frame.subarray(IP, IP + Math.min(ipLength, frame.length - IP)) });
    const ip = buildIpv4({ src: from, dst: info.ipSrc, protocol: IPPROTO_ICMP, payload: icmp, ttl: 64, flags: 0 });
    return buildEthernet({ dst: macFromNumber(info.src), src: macFromNumber(GATEWAY_MAC), ethertype: ETHERTYPE_IPV4, payload: ip });
  }

  /** As `answer`, for an IPv6 frame (router-icmp6.ts); `mtu`: the MTU a 'packet-too-big6' reports. */
  answer6(p6: Policy6, vsid: number, frame: Uint8Array, info: FrameInfo, kind: Icmpv6ErrorKind, mtu = 0): Uint8Array | undefined {
    return icmpv6Error(p6, vsid, frame, info, kind, mtu, () => this.admit(kind));
  }

  /** Takes a token for an error of `kind` and counts it, or counts it held back (the gateway's Packet Too Big share the bucket). */
  admit(kind: IcmpErrorKind | Icmpv6ErrorKind): boolean {
    const now = this.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.last) * RATE) / 1000);
    this.last = now;
    if (this.tokens < 1) { this.rateLimited++; return false; }
    this.tokens--;
    this.sent[kind]++;
    return true;
  }
}

/** The gateway (.1) of the on-link customer route that holds `src` in `vsid`: the sender's default router. */
function gatewayAddress(p: CompiledPolicy, vsid: number, src: number): number | undefined {
  const r = p.tables.routeV4(vsid, src);
  if (!r || r.nextHop !== '0.0.0.0' || r.virtualSubnetId !== vsid) return undefined;
  const c = parseCidr(r.destinationPrefix);
  if (c.version !== 4) return undefined;
  const gw = ((c.address & ipv4Mask(c.prefixLength)) >>> 0) + 1;
  return p.isGateway(vsid, gw) ? gw : undefined;
}
