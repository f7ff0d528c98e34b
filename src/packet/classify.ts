// The per-frame classifier: one pass over a frame filling a FrameInfo with what the
// switch decides on (MACs, VLAN, ethertype, ARP, IP, L4 ports, TCP flags, ICMP/ND,
// DHCP, GRE). No allocation beyond the result object (none with parseFrameInto);
// checksums are not verified here. Malformed frames give ok = false with a drop reason,
// the layer and the byte offset; parseFrame never throws.
// Depends on bytes, address, result and the protocol constants.
import { u16, u32 } from './bytes.ts';
import { macToNumber } from './address.ts';
import type { DropReason, Layer } from './result.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN } from './ethernet.ts';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './ipv4.ts';
import { IPV6_AH, IPV6_FRAGMENT, IPV6_MAX_EXTENSIONS, isIpv6Extension } from './ipv6.ts';
import { ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR, ndOptionsStart } from './icmpv6.ts';
import { BOOTREPLY, isDhcpServerMessageType, DHCP_MAGIC_COOKIE, DHCP_OPT_END, DHCP_OPT_MESSAGE_TYPE, DHCP_OPT_PAD, DHCP_OPTIONS_OFFSET } from './dhcp.ts';
import { GRE_UDP_PORT } from './gre.ts';

/**
 * What the switch needs per frame. Numeric fields are -1 when absent. MACs are numbers
 * (see macToNumber); IPv4 addresses are unsigned numbers; IPv6 addresses are offsets
 * into the frame (ipSrcOffset/ipDstOffset, also set for IPv4).
 */
export class FrameInfo {
  ok = true;
  reason: DropReason | null = null;
  layer: Layer | null = null;
  /** Offset of the malformed field when ok is false. */
  offset = -1;
  length = 0;
  dst = 0;
  src = 0;
  /** VLAN ID of the 802.1Q tag, -1 when untagged. */
  vlanId = -1;
  pcp = 0;
  ethertype = 0;
  l3Offset = 0;
  arpOp = -1;
  arpSha = -1;
  arpSpa = -1;
  arpTha = -1;
  arpTpa = -1;
  /** 4, 6, or 0 when not IP. */
  ipVersion = 0;
  ipSrc = 0;
  ipDst = 0;
  ipSrcOffset = -1;
  ipDstOffset = -1;
  /** Upper-layer protocol (after IPv6 extension headers). */
  ipProtocol = -1;
  /** TTL or hop limit. */
  ttl = -1;
  /** Part of a fragmented datagram (IPv4 MF/offset, IPv6 fragment header). */
  fragment = false;
  /** A fragment other than the first: carries no upper-layer header. */
  laterFragment = false;
  l4Offset = -1;
  l4Length = -1;
  srcPort = -1;
  dstPort = -1;
  tcpFlags = -1;
  icmpType = -1;
  icmpCode = -1;
  /** ND target address offset (NS/NA/Redirect). */
  ndTargetOffset = -1;
  ndSourceLinkAddr = -1;
  ndTargetLinkAddr = -1;
  dhcpOp = -1;
  dhcpMessageType = -1;
  /** A message only a DHCP server sends: BOOTREPLY, or type OFFER/ACK/NAK/FORCERENEW. */
  dhcpFromServer = false;
  greProtocol = -1;
  greKey = -1;
  /** Offset of the GRE payload (the inner frame for NVGRE). */
  greInnerOffset = -1;
  greInUdp = false;
}

function reset(f: FrameInfo): void {
  f.ok = true; f.reason = null; f.layer = null; f.offset = -1; f.length = 0; f.dst = 0; f.src = 0;
  f.vlanId = -1; f.pcp = 0; f.ethertype = 0; f.l3Offset = 0;
  f.arpOp = -1; f.arpSha = -1; f.arpSpa = -1; f.arpTha = -1; f.arpTpa = -1;
  f.ipVersion = 0; f.ipSrc = 0; f.ipDst = 0; f.ipSrcOffset = -1; f.ipDstOffset = -1; f.ipProtocol = -1; f.ttl = -1;
  f.fragment = false; f.laterFragment = false; f.l4Offset = -1; f.l4Length = -1;
  f.srcPort = -1; f.dstPort = -1; f.tcpFlags = -1; f.icmpType = -1; f.icmpCode = -1;
  f.ndTargetOffset = -1; f.ndSourceLinkAddr = -1; f.ndTargetLinkAddr = -1;
  f.dhcpOp = -1; f.dhcpMessageType = -1; f.dhcpFromServer = false; f.greProtocol = -1; f.greKey = -1; f.greInnerOffset = -1; f.greInUdp = false;
}

function fail(f: FrameInfo, reason: DropReason, layer: Layer, offset: number): FrameInfo {
  f.ok = false; f.reason = reason; f.layer = layer; f.offset = offset;
  return f;
}

/**
 * Classifies a frame into a new FrameInfo. `maxLength`: frames longer than this (e.g.
 * MTU + 18) are refused as 'giant-frame'; no limit by default.
 */
export function parseFrame(b: Uint8Array, maxLength = Infinity): FrameInfo {
  return parseFrameInto(b, new FrameInfo(), maxLength);
}

/** Classifies a frame into `f` (reset first), for callers that reuse one object. */
export function parseFrameInto(b: Uint8Array, f: FrameInfo, maxLength = Infinity): FrameInfo {
  reset(f);
  const n = b.length;
  f.length = n;
  if (n < 14) return fail(f, 'truncated-ethernet', 'ethernet', 0);
  if (n > maxLength) return fail(f, 'giant-frame', 'ethernet', maxLength);
  f.dst = macToNumber(b, 0);
  f.src = macToNumber(b, 6);
  let type = u16(b, 12);
  let off = 14;
  if (type === ETHERTYPE_QINQ) return fail(f, 'qinq-unsupported', 'vlan', 12);
  if (type === ETHERTYPE_VLAN) {
    if (n < 18) return fail(f, 'truncated-vlan', 'vlan', 14);
    const tci = u16(b, 14);
    f.vlanId = tci & 0xfff;
    f.pcp = tci >>> 13;
    type = u16(b, 16);
    off = 18;
    if (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) return fail(f, 'qinq-unsupported', 'vlan', 16);
  }
  f.ethertype = type;
  f.l3Offset = off;
  if (type === ETHERTYPE_ARP) return arp(b, off, f);
  if (type === ETHERTYPE_IPV4) return ipv4(b, off, f);
  if (type === ETHERTYPE_IPV6) return ipv6(b, off, f);
  return f;
}

function arp(b: Uint8Array, off: number, f: FrameInfo): FrameInfo {
  if (b.length - off < 28) return fail(f, 'truncated-arp', 'arp', off);
  if (u16(b, off) !== 1 || u16(b, off + 2) !== 0x0800 || b[off + 4] !== 6 || b[off + 5] !== 4) {
    return fail(f, 'unsupported-arp', 'arp', off);
  }
  f.arpOp = u16(b, off + 6);
  f.arpSha = macToNumber(b, off + 8);
  f.arpSpa = u32(b, off + 14);
  f.arpTha = macToNumber(b, off + 18);
  f.arpTpa = u32(b, off + 24);
  return f;
}

function ipv4(b: Uint8Array, off: number, f: FrameInfo): FrameInfo {
  if (b.length - off < 20) return fail(f, 'truncated-ipv4', 'ipv4', off);
  const vihl = b[off]!;
  if (vihl >>> 4 !== 4) return fail(f, 'bad-ipv4-version', 'ipv4', off);
  const hl = (vihl & 0xf) * 4;
  if (hl < 20) return fail(f, 'bad-ipv4-header-length', 'ipv4', off);
  const total = u16(b, off + 2);
  if (total < hl) return fail(f, 'bad-ipv4-total-length', 'ipv4', off + 2);
  if (b.length - off < total) return fail(f, 'truncated-ipv4', 'ipv4', off + 2);
  f.ipVersion = 4;
  const ff = u16(b, off + 6);
  f.fragment = (ff & 0x3fff) !== 0;
  f.laterFragment = (ff & 0x1fff) !== 0;
  f.ttl = b[off + 8]!;
  f.ipProtocol = b[off + 9]!;
  f.ipSrcOffset = off + 12;
  f.ipDstOffset = off + 16;
  f.ipSrc = u32(b, off + 12);
  f.ipDst = u32(b, off + 16);
  if (f.laterFragment) return f;
  return l4(b, off + hl, total - hl, f);
}

function ipv6(b: Uint8Array, off: number, f: FrameInfo): FrameInfo {
  if (b.length - off < 40) return fail(f, 'truncated-ipv6', 'ipv6', off);
  if (b[off]! >>> 4 !== 6) return fail(f, 'bad-ipv6-version', 'ipv6', off);
  const plen = u16(b, off + 4);
  if (b.length - off - 40 < plen) return fail(f, 'bad-ipv6-payload-length', 'ipv6', off + 4);
  f.ipVersion = 6;
  f.ttl = b[off + 7]!;
  f.ipSrcOffset = off + 8;
  f.ipDstOffset = off + 24;
  const end = off + 40 + plen;
  let nh = b[off + 6]!;
  let p = off + 40;
  let count = 0;
  while (isIpv6Extension(nh)) {
    if (++count > IPV6_MAX_EXTENSIONS) return fail(f, 'too-many-ipv6-extensions', 'ipv6', p);
    if (end - p < 8) return fail(f, 'truncated-ipv6-extension', 'ipv6', p);
    let len: number;
    if (nh === IPV6_FRAGMENT) {
      f.fragment = true;
      if ((u16(b, p + 2) & 0xfff8) !== 0) f.laterFragment = true;
      len = 8;
    } else if (nh === IPV6_AH) {
      len = (b[p + 1]! + 2) * 4;
    } else {
      len = (b[p + 1]! + 1) * 8;
    }
    if (end - p < len) return fail(f, 'truncated-ipv6-extension', 'ipv6', p);
    nh = b[p]!;
    p += len;
    if (f.laterFragment) break;
  }
  f.ipProtocol = nh;
  if (f.laterFragment) return f;
  return l4(b, p, end - p, f);
}

function l4(b: Uint8Array, off: number, len: number, f: FrameInfo): FrameInfo {
  f.l4Offset = off;
  f.l4Length = len;
  if (f.fragment) {
    // A first fragment: the L4 length fields describe the whole datagram; take what is here.
    const p = f.ipProtocol;
    if ((p === IPPROTO_UDP || p === IPPROTO_TCP) && len >= 4) { f.srcPort = u16(b, off); f.dstPort = u16(b, off + 2); }
    if (p === IPPROTO_TCP && len >= 14) f.tcpFlags = b[off + 13]!;
    if ((p === IPPROTO_ICMP || p === IPPROTO_ICMPV6) && len >= 2) { f.icmpType = b[off]!; f.icmpCode = b[off + 1]!; }
    return f;
  }
  switch (f.ipProtocol) {
    case IPPROTO_UDP: {
      if (len < 8) return fail(f, 'truncated-udp', 'udp', off);
      const ulen = u16(b, off + 4);
      if (ulen < 8 || ulen > len) return fail(f, 'bad-udp-length', 'udp', off + 4);
      f.srcPort = u16(b, off);
      f.dstPort = u16(b, off + 2);
      if (f.dstPort === 67 || f.dstPort === 68) return dhcp(b, off + 8, ulen - 8, f);
      if (f.dstPort === GRE_UDP_PORT) { f.greInUdp = true; return gre(b, off + 8, ulen - 8, f); }
      return f;
    }
    case IPPROTO_TCP: {
      if (len < 20) return fail(f, 'truncated-tcp', 'tcp', off);
      const hl = (b[off + 12]! >>> 4) * 4;
      if (hl < 20 || hl > len) return fail(f, 'bad-tcp-data-offset', 'tcp', off + 12);
      f.srcPort = u16(b, off);
      f.dstPort = u16(b, off + 2);
      f.tcpFlags = b[off + 13]!;
      return f;
    }
    case IPPROTO_ICMP:
      if (len < 8) return fail(f, 'truncated-icmpv4', 'icmpv4', off);
      f.icmpType = b[off]!;
      f.icmpCode = b[off + 1]!;
      return f;
    case IPPROTO_ICMPV6:
      return icmpv6(b, off, len, f);
    case IPPROTO_GRE:
      return gre(b, off, len, f);
    default:
      return f;
  }
}

function icmpv6(b: Uint8Array, off: number, len: number, f: FrameInfo): FrameInfo {
  if (len < 8) return fail(f, 'truncated-icmpv6', 'icmpv6', off);
  const type = b[off]!;
  f.icmpType = type;
  f.icmpCode = b[off + 1]!;
  const start = ndOptionsStart(type);
  if (start < 0) return f;
  if (len < start) return fail(f, 'truncated-icmpv6', 'icmpv6', off);
  if (start >= 24) f.ndTargetOffset = off + 8;
  const end = off + len;
  for (let p = off + start; p < end;) {
    if (end - p < 2) return fail(f, 'bad-nd-option', 'icmpv6', p);
    const olen = b[p + 1]! * 8;
    if (olen === 0 || end - p < olen) return fail(f, 'bad-nd-option', 'icmpv6', p);
    const ot = b[p]!;
    if (ot === ND_OPT_SOURCE_LINKADDR && f.ndSourceLinkAddr < 0) f.ndSourceLinkAddr = macToNumber(b, p + 2);
    else if (ot === ND_OPT_TARGET_LINKADDR && f.ndTargetLinkAddr < 0) f.ndTargetLinkAddr = macToNumber(b, p + 2);
    p += olen;
  }
  return f;
}

function dhcp(b: Uint8Array, off: number, len: number, f: FrameInfo): FrameInfo {
  if (len < DHCP_OPTIONS_OFFSET) return fail(f, 'truncated-dhcp', 'dhcp', off);
  if (u32(b, off + 236) !== DHCP_MAGIC_COOKIE) return fail(f, 'bad-dhcp-cookie', 'dhcp', off + 236);
  f.dhcpOp = b[off]!;
  const end = off + len;
  for (let p = off + DHCP_OPTIONS_OFFSET; p < end;) {
    const code = b[p]!;
    if (code === DHCP_OPT_END) break;
    if (code === DHCP_OPT_PAD) { p++; continue; }
    if (end - p < 2) return fail(f, 'bad-dhcp-option', 'dhcp', p);
    const olen = b[p + 1]!;
    if (end - p - 2 < olen) return fail(f, 'bad-dhcp-option', 'dhcp', p);
    if (code === DHCP_OPT_MESSAGE_TYPE && olen >= 1 && f.dhcpMessageType < 0) f.dhcpMessageType = b[p + 2]!;
    p += 2 + olen;
  }
  f.dhcpFromServer = f.dhcpOp === BOOTREPLY || isDhcpServerMessageType(f.dhcpMessageType);
  return f;
}

function gre(b: Uint8Array, off: number, len: number, f: FrameInfo): FrameInfo {
  if (len < 4) return fail(f, 'truncated-gre', 'gre', off);
  const fv = u16(b, off);
  if ((fv & 7) !== 0) return fail(f, 'unsupported-gre-version', 'gre', off);
  const hl = 4 + (fv & 0x8000 ? 4 : 0) + (fv & 0x2000 ? 4 : 0) + (fv & 0x1000 ? 4 : 0);
  if (len < hl) return fail(f, 'truncated-gre', 'gre', off);
  f.greProtocol = u16(b, off + 2);
  if (fv & 0x2000) f.greKey = u32(b, off + 4 + (fv & 0x8000 ? 4 : 0));
  f.greInnerOffset = off + hl;
  return f;
}
