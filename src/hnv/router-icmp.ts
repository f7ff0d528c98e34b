// The distributed router's ICMP errors (RFC 792, RFC 1812 §4.3.2): a routed IPv4 packet whose
// TTL runs out gets Time Exceeded (type 11 code 0), one with no customer route Destination
// Unreachable / net unreachable (type 3 code 0), sent back to the VM on its own port from the
// gateway MAC and the gateway address (.1) of the sender's subnet — as the sender's default
// router would — so traceroute shows the hop and a missing route fails at once instead of
// timing out. Never about an ICMP error, a later fragment, or a packet from an address that
// is not the sender's unicast one (RFC 1812 §4.3.2.7); at most RATE per second with a burst of
// BURST across the host's data path (a token bucket: a VM sending into a black hole cannot make
// the router flood it), each error sent or held back counted. The original IP header and as
// much of its payload as fits in 576 bytes are quoted. Pure but for the clock. Depends on
// packet, compiled, router (GATEWAY_MAC).
import {
  ETHERTYPE_IPV4, IPPROTO_ICMP, buildEthernet, buildIpv4, internetChecksum, ipv4Mask, isIpv4Multicast, macFromNumber, parseIpv4Address,
  type FrameInfo,
} from '../packet/index.ts';
import type { CompiledPolicy } from './compiled.ts';
import { GATEWAY_MAC } from './router.ts';

export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_UNREACHABLE = 3;
/** RFC 1812 §4.3.2.3: an ICMP error is at most 576 bytes of IP. */
const MAX_ERROR_IP = 576;
/** ICMP error types (RFC 1812 §4.3.2.7: never answered with an error). */
const ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
const RATE = 10, BURST = 20;
const IP = 14;

export type IcmpErrorKind = 'time-exceeded' | 'net-unreachable';

/** The ICMP errors one data path sends: the bucket and the counts. */
export class IcmpErrors {
  private tokens = BURST;
  private last: number;
  readonly sent: Record<IcmpErrorKind, number> = { 'time-exceeded': 0, 'net-unreachable': 0 };
  rateLimited = 0;

  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }

  /**
   * The error frame for `frame` (an untagged IPv4 frame a VM of `vsid` sent to the gateway MAC,
   * parsed as `info`), or undefined when none is due (see the header) or the bucket is empty.
   */
  answer(p: CompiledPolicy, vsid: number, frame: Uint8Array, info: FrameInfo, kind: IcmpErrorKind): Uint8Array | undefined {
    if (info.ipVersion !== 4 || info.laterFragment || (info.ipProtocol === IPPROTO_ICMP && ERROR_TYPES.has(info.icmpType))) return undefined;
    if (info.ipSrc === 0 || isIpv4Multicast(info.ipSrc) || info.ipSrc === 0xffff_ffff) return undefined;
    const from = gatewayAddress(p, vsid, info.ipSrc);
    if (from === undefined) return undefined;
    if (!this.take()) { this.rateLimited++; return undefined; }
    this.sent[kind]++;
    const ipLength = ((frame[IP + 2]! << 8) | frame[IP + 3]!) || frame.length - IP;
    const quoted = frame.subarray(IP, IP + Math.min(ipLength, frame.length - IP, MAX_ERROR_IP - 20 - 8));
    const icmp = new Uint8Array(8 + quoted.length);
    icmp[0] = kind === 'time-exceeded' ? ICMP_TIME_EXCEEDED : ICMP_UNREACHABLE;
    icmp[1] = 0; // code 0: TTL exceeded in transit / net unreachable
    icmp.set(quoted, 8);
    const sum = internetChecksum(icmp, 0, icmp.length);
    icmp[2] = sum >>> 8; icmp[3] = sum & 0xff;
    const ip = buildIpv4({ src: from, dst: info.ipSrc, protocol: IPPROTO_ICMP, payload: icmp, ttl: 64, flags: 0 });
    return buildEthernet({ dst: macFromNumber(info.src), src: macFromNumber(GATEWAY_MAC), ethertype: ETHERTYPE_IPV4, payload: ip });
  }

  private take(): boolean {
    const now = this.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.last) * RATE) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** The gateway (.1) of the on-link customer route that holds `src` in `vsid`: the sender's default router. */
function gatewayAddress(p: CompiledPolicy, vsid: number, src: number): number | undefined {
  const r = p.tables.routeV4(vsid, src);
  if (!r || r.nextHop !== '0.0.0.0' || r.virtualSubnetId !== vsid) return undefined;
  const [net, len] = r.destinationPrefix.split('/') as [string, string];
  const gw = ((parseIpv4Address(net) & ipv4Mask(Number(len))) >>> 0) + 1;
  return p.isGateway(vsid, gw) ? gw : undefined;
}
