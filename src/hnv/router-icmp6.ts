// The distributed router's ICMPv6 errors (RFC 4443), as router-icmp.ts's for IPv4: Time
// Exceeded (type 3 code 0) when a routed packet's hop limit runs out, Destination Unreachable
// (type 1) with code 0 (no route) when no customer route matches and code 3 (address
// unreachable) when the destination has no lookup record, Packet Too Big (type 2, RFC 8201) with
// the customer MTU when the frame cannot be encapsulated within the provider MTU — each from the
// gateway address (the on-link prefix's ::1) of the sender's subnet and the gateway MAC, back
// to the sender, quoting as much of the packet as keeps the error within 1280 bytes (§2.4(c)).
// None (§2.4(e)) about an ICMPv6 error message, from an unspecified or multicast source, or to
// a multicast destination (but Packet Too Big); the caller's `admit` is the rate limit
// (§2.4(f)). Pure. Depends on packet, ipv6 (Policy6), router (GATEWAY_MAC).
import {
  ETHERTYPE_IPV6, ICMPV6_ADDRESS_UNREACHABLE, ICMPV6_DEST_UNREACHABLE, ICMPV6_NO_ROUTE, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, IPPROTO_ICMPV6,
  buildEthernet, buildIcmpv6Error, buildIpv6, isIcmpv6Error, isIpv6Multicast, isIpv6Unspecified, macFromNumber, setIcmpv6Checksum, type FrameInfo,
} from '../packet/index.ts';
import type { Policy6 } from './ipv6.ts';
import { GATEWAY_MAC } from './router.ts';

export type Icmpv6ErrorKind = 'time-exceeded6' | 'no-route6' | 'address-unreachable6' | 'packet-too-big6';

const TYPE_CODE: Record<Icmpv6ErrorKind, readonly [number, number]> = {
  'time-exceeded6': [ICMPV6_TIME_EXCEEDED, 0],
  'no-route6': [ICMPV6_DEST_UNREACHABLE, ICMPV6_NO_ROUTE],
  'address-unreachable6': [ICMPV6_DEST_UNREACHABLE, ICMPV6_ADDRESS_UNREACHABLE],
  'packet-too-big6': [ICMPV6_PACKET_TOO_BIG, 0],
};

/** IPv6 header of an untagged frame, and where its addresses are. */
const IP = 14, SRC = IP + 8, DST = IP + 24;

/**
 * The ICMPv6 error of `kind` for `frame` (an untagged IPv6 frame a VM of `vsid` sent, parsed as
 * `info`), or undefined when none is due or `admit` (the rate limit) says no.
 */
export function icmpv6Error(
  p6: Policy6, vsid: number, frame: Uint8Array, info: FrameInfo, kind: Icmpv6ErrorKind, mtu: number, admit: () => boolean,
): Uint8Array | undefined {
  if (info.ipVersion !== 6 || frame.length < IP + 40) return undefined;
  if (info.ipProtocol === IPPROTO_ICMPV6 && info.icmpType >= 0 && isIcmpv6Error(info.icmpType)) return undefined;
  if (isIpv6Unspecified(frame, SRC) || isIpv6Multicast(frame, SRC)) return undefined;
  if (kind !== 'packet-too-big6' && isIpv6Multicast(frame, DST)) return undefined;
  const from = p6.gatewayFor(vsid, frame, SRC);
  if (from === undefined || !admit()) return undefined;
  const [type, code] = TYPE_CODE[kind];
  const dst = frame.slice(SRC, SRC + 16);
  const msg = buildIcmpv6Error({ type, code, word: kind === 'packet-too-big6' ? mtu : 0, invoking: frame.subarray(IP) });
  setIcmpv6Checksum(msg, from, dst);
  const ip = buildIpv6({ src: from, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 64, payload: msg });
  return buildEthernet({ dst: macFromNumber(info.src), src: macFromNumber(GATEWAY_MAC), ethertype: ETHERTYPE_IPV6, payload: ip });
}
