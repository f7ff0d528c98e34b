// The DHCP, router and ND guards against fragments (RFC 7113, RFC 6980, RFC 7112): a guard
// that reads the upper-layer header must not be bypassed by splitting the message so that
// the header it keys on is missing or the message is never parsed whole. The switch does
// not reassemble, so it judges each fragment by what it can see:
//  - DhcpGuard: a first fragment of UDP that is to or from a DHCP port (67/68; DHCPv6
//    546/547), or too short to show its ports, is dropped. A later fragment passes: its
//    datagram cannot be reassembled without the first, and raw-socket DHCP clients discard
//    fragments; dropping it would break every fragmented UDP datagram of a guarded VM.
//  - RouterGuard / ArpGuard: every IPv6 fragment whose next header is ICMPv6, first or later,
//    is dropped (RA, Redirect and ND are never legitimately fragmented: RFC 6980). That also
//    stops fragmented ICMPv6 echo from such a port: the price of not reassembling.
// A first fragment whose header chain ends before the upper-layer header never gets here:
// the parser already drops it as malformed (truncated-ipv6-extension).
// Depends on packet, stats.
import { type FrameInfo, IPPROTO_ICMPV6, IPPROTO_UDP } from '../packet/index.ts';
import type { SwitchDropReason } from './stats.ts';

const UDP_HEADER = 8;

export interface FragmentGuards {
  readonly dhcpGuard: boolean;
  readonly routerGuard: boolean;
  readonly arpGuard: boolean;
}

/** For a frame that is a fragment (`f.fragment`): the guard that drops it, or null. */
export function fragmentGuard(g: FragmentGuards, f: FrameInfo): SwitchDropReason | null {
  if (g.dhcpGuard && f.ipProtocol === IPPROTO_UDP && !f.laterFragment) {
    if (f.l4Length < UDP_HEADER) return 'dhcp-guard';
    if (f.ipVersion === 4 ? isDhcpPort(f.srcPort) || isDhcpPort(f.dstPort) : isDhcpv6Port(f.srcPort) || isDhcpv6Port(f.dstPort)) return 'dhcp-guard';
  }
  if (f.ipVersion === 6 && f.ipProtocol === IPPROTO_ICMPV6) {
    if (g.routerGuard) return 'router-guard';
    if (g.arpGuard) return 'nd-spoofing';
  }
  return null;
}

function isDhcpPort(p: number): boolean { return p === 67 || p === 68; }
function isDhcpv6Port(p: number): boolean { return p === 546 || p === 547; }
