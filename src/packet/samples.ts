// Test and benchmark fixtures: one valid frame per protocol the library builds, made
// with the library's own builders, with the classifier fields each should yield.
// Not part of the public surface (index.ts); used by *.test.ts and bench/packet-parse.ts.
import { parseMac, parseIpv4, parseIpv6, ipv4ToBytes, solicitedNodeMulticast, ipv6MulticastMac, macToNumber } from './address.ts';
import { buildEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_TEB } from './ethernet.ts';
import { buildArp, buildGratuitousArp, ARP_REPLY, ARP_REQUEST } from './arp.ts';
import { buildIpv4, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_MF } from './ipv4.ts';
import { buildIpv6, IPV6_FRAGMENT, IPV6_HOP_BY_HOP } from './ipv6.ts';
import { buildIcmpv4Echo, ICMP_ECHO_REQUEST } from './icmpv4.ts';
import {
  buildNeighborAdvertisement, buildNeighborSolicitation, buildRedirect, buildRouterAdvertisement, buildRouterSolicitation,
  buildIcmpv6Echo, setIcmpv6Checksum, ICMPV6_ECHO_REQUEST, NA_FLAG_OVERRIDE, NA_FLAG_SOLICITED, ND_OPT_MTU,
  ND_OPT_PREFIX_INFORMATION, ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR, ND_OPT_REDIRECTED_HEADER, RA_FLAG_OTHER,
} from './icmpv6.ts';
import { buildUdp } from './udp.ts';
import { buildTcp, TCP_SYN } from './tcp.ts';
import { buildDhcp, BOOTREPLY, BOOTREQUEST, DHCPDISCOVER, DHCPOFFER, DHCP_OPT_LEASE_TIME, DHCP_OPT_PARAM_REQUEST, DHCP_OPT_ROUTER, DHCP_OPT_SERVER_ID, DHCP_OPT_SUBNET_MASK } from './dhcp.ts';
import { buildGreInUdp, buildNvgre, GRE_UDP_PORT, nvgreKey } from './gre.ts';
import type { FrameInfo } from './classify.ts';

export const MAC_A = parseMac('00:15:5d:00:00:0a');
export const MAC_B = parseMac('00:15:5d:00:00:0b');
export const MAC_BCAST = parseMac('ff:ff:ff:ff:ff:ff');
export const IP4_A = parseIpv4('192.168.10.10');
export const IP4_B = parseIpv4('192.168.10.11');
export const IP6_A = parseIpv6('fe80::215:5dff:fe00:a');
export const IP6_B = parseIpv6('fe80::215:5dff:fe00:b');
export const IP6_ALL_NODES = parseIpv6('ff02::1');
export const IP6_ALL_ROUTERS = parseIpv6('ff02::2');
export const VSID = 5001;

export interface Sample {
  readonly name: string;
  readonly frame: Uint8Array;
  /** Classifier fields this frame must yield. */
  readonly expect: Partial<Record<keyof FrameInfo, unknown>>;
}

function v4(src: number, dst: number, protocol: number, payload: Uint8Array, extra: { flags?: number; fragmentOffset?: number; options?: Uint8Array; id?: number } = {}): Uint8Array {
  return buildIpv4({ src, dst, protocol, payload, id: extra.id ?? 0x1234, ...extra });
}

function eth(dst: Uint8Array, src: Uint8Array, ethertype: number, payload: Uint8Array, vid?: number): Uint8Array {
  return buildEthernet({ dst, src, ethertype, payload, ...(vid !== undefined ? { vlan: { vid, pcp: 3 } } : {}) });
}

function nd6(src: Uint8Array, dst: Uint8Array, msg: Uint8Array, dstMac: Uint8Array, srcMac = MAC_A): Uint8Array {
  setIcmpv6Checksum(msg, src, dst);
  return eth(dstMac, srcMac, ETHERTYPE_IPV6, buildIpv6({ src, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: msg }));
}

export function samples(): Sample[] {
  const a4 = ipv4ToBytes(IP4_A), b4 = ipv4ToBytes(IP4_B);
  const out: Sample[] = [];

  out.push({
    name: 'vlan-arp-request',
    frame: eth(MAC_BCAST, MAC_A, ETHERTYPE_ARP, buildArp({ op: ARP_REQUEST, sha: MAC_A, spa: IP4_A, tha: new Uint8Array(6), tpa: IP4_B }), 10),
    expect: { vlanId: 10, pcp: 3, ethertype: ETHERTYPE_ARP, arpOp: ARP_REQUEST, arpSpa: IP4_A, arpTpa: IP4_B, arpSha: macToNumber(MAC_A) },
  });
  out.push({
    name: 'arp-reply',
    frame: eth(MAC_A, MAC_B, ETHERTYPE_ARP, buildArp({ op: ARP_REPLY, sha: MAC_B, spa: IP4_B, tha: MAC_A, tpa: IP4_A })),
    expect: { vlanId: -1, arpOp: ARP_REPLY, arpSpa: IP4_B, arpTha: macToNumber(MAC_A) },
  });
  out.push({
    name: 'gratuitous-arp',
    frame: eth(MAC_BCAST, MAC_B, ETHERTYPE_ARP, buildGratuitousArp(MAC_B, IP4_B)),
    expect: { arpOp: ARP_REQUEST, arpSpa: IP4_B, arpTpa: IP4_B },
  });

  const discover = buildDhcp({
    op: BOOTREQUEST, xid: 0xdeadbeef, chaddr: MAC_A, flags: 0x8000, messageType: DHCPDISCOVER,
    options: [{ code: DHCP_OPT_PARAM_REQUEST, data: new Uint8Array([1, 3, 6]) }],
  });
  const zero4 = new Uint8Array(4), bcast4 = new Uint8Array([255, 255, 255, 255]);
  out.push({
    name: 'dhcp-discover',
    frame: eth(MAC_BCAST, MAC_A, ETHERTYPE_IPV4, v4(0, 0xffffffff, IPPROTO_UDP, buildUdp({ srcPort: 68, dstPort: 67, src: zero4, dst: bcast4, payload: discover }))),
    expect: { ipVersion: 4, ipProtocol: IPPROTO_UDP, srcPort: 68, dstPort: 67, dhcpOp: BOOTREQUEST, dhcpMessageType: DHCPDISCOVER },
  });
  const offer = buildDhcp({
    op: BOOTREPLY, xid: 0xdeadbeef, chaddr: MAC_A, yiaddr: IP4_A, siaddr: IP4_B, messageType: DHCPOFFER,
    options: [
      { code: DHCP_OPT_SERVER_ID, data: b4 }, { code: DHCP_OPT_LEASE_TIME, data: new Uint8Array([0, 0, 0x0e, 0x10]) },
      { code: DHCP_OPT_SUBNET_MASK, data: new Uint8Array([255, 255, 255, 0]) }, { code: DHCP_OPT_ROUTER, data: b4 },
    ],
  });
  out.push({
    name: 'dhcp-offer',
    frame: eth(MAC_BCAST, MAC_B, ETHERTYPE_IPV4, v4(IP4_B, 0xffffffff, IPPROTO_UDP, buildUdp({ srcPort: 67, dstPort: 68, src: b4, dst: bcast4, payload: offer }))),
    expect: { ipSrc: IP4_B, srcPort: 67, dstPort: 68, dhcpOp: BOOTREPLY, dhcpMessageType: DHCPOFFER },
  });
  const mss = new Uint8Array([2, 4, 0x05, 0xb4, 1, 3, 3, 7]); // MSS 1460, NOP, window scale 7
  out.push({
    name: 'tcp-syn',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(IP4_A, IP4_B, IPPROTO_TCP, buildTcp({ srcPort: 49152, dstPort: 80, seq: 1000, flags: TCP_SYN, options: mss, src: a4, dst: b4 }))),
    expect: { ipSrc: IP4_A, ipDst: IP4_B, ipProtocol: IPPROTO_TCP, srcPort: 49152, dstPort: 80, tcpFlags: TCP_SYN, ttl: 64 },
  });
  out.push({
    name: 'icmp-echo-router-alert',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(IP4_A, IP4_B, IPPROTO_ICMP, buildIcmpv4Echo({ type: ICMP_ECHO_REQUEST, id: 7, seq: 1, data: new Uint8Array(32).fill(0x61) }), { options: new Uint8Array([0x94, 4, 0, 0]) })),
    expect: { ipProtocol: IPPROTO_ICMP, icmpType: ICMP_ECHO_REQUEST, icmpCode: 0, l4Offset: 14 + 24 },
  });
  out.push({
    name: 'ipv4-first-fragment',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(IP4_A, IP4_B, IPPROTO_UDP, buildUdp({ srcPort: 5000, dstPort: 5001, src: a4, dst: b4, payload: new Uint8Array(64) }).subarray(0, 48), { flags: IPV4_FLAG_MF, id: 0x4242 })),
    expect: { fragment: true, laterFragment: false, srcPort: 5000, dstPort: 5001 },
  });

  const prefix = parseIpv6('2001:db8:1::');
  out.push({
    name: 'icmpv6-ra',
    frame: nd6(IP6_A, IP6_ALL_NODES, buildRouterAdvertisement({
      curHopLimit: 64, flags: RA_FLAG_OTHER, routerLifetime: 1800,
      options: [
        { type: ND_OPT_SOURCE_LINKADDR, mac: MAC_A }, { type: ND_OPT_MTU, mtu: 1500 },
        { type: ND_OPT_PREFIX_INFORMATION, prefix, prefixLength: 64 },
      ],
    }), ipv6MulticastMac(IP6_ALL_NODES)),
    expect: { ipVersion: 6, ipProtocol: IPPROTO_ICMPV6, icmpType: 134, ndSourceLinkAddr: macToNumber(MAC_A), ttl: 255 },
  });
  out.push({
    name: 'icmpv6-rs',
    frame: nd6(IP6_B, IP6_ALL_ROUTERS, buildRouterSolicitation({ options: [{ type: ND_OPT_SOURCE_LINKADDR, mac: MAC_B }] }), ipv6MulticastMac(IP6_ALL_ROUTERS), MAC_B),
    expect: { icmpType: 133, ndSourceLinkAddr: macToNumber(MAC_B) },
  });
  const snm = solicitedNodeMulticast(IP6_B);
  out.push({
    name: 'icmpv6-ns',
    frame: nd6(IP6_A, snm, buildNeighborSolicitation({ target: IP6_B, options: [{ type: ND_OPT_SOURCE_LINKADDR, mac: MAC_A }] }), ipv6MulticastMac(snm)),
    expect: { icmpType: 135, ndTargetOffset: 14 + 40 + 8, ndSourceLinkAddr: macToNumber(MAC_A), ndTargetLinkAddr: -1 },
  });
  out.push({
    name: 'icmpv6-na',
    frame: nd6(IP6_B, IP6_A, buildNeighborAdvertisement({ target: IP6_B, flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE, options: [{ type: ND_OPT_TARGET_LINKADDR, mac: MAC_B }] }), MAC_A, MAC_B),
    expect: { icmpType: 136, ndTargetOffset: 14 + 40 + 8, ndTargetLinkAddr: macToNumber(MAC_B) },
  });
  const inner6 = buildIpv6({ src: IP6_B, dst: parseIpv6('2001:db8:2::1'), nextHeader: 59, payload: new Uint8Array(0) });
  out.push({
    name: 'icmpv6-redirect',
    frame: nd6(IP6_A, IP6_B, buildRedirect({
      target: parseIpv6('fe80::1'), destination: parseIpv6('2001:db8:2::1'),
      options: [{ type: ND_OPT_TARGET_LINKADDR, mac: MAC_A }, { type: ND_OPT_REDIRECTED_HEADER, packet: inner6 }],
    }), MAC_B),
    expect: { icmpType: 137, ndTargetLinkAddr: macToNumber(MAC_A) },
  });
  const ip6g = parseIpv6('2001:db8:1::10'), ip6h = parseIpv6('2001:db8:1::11');
  out.push({
    name: 'icmpv6-echo',
    frame: nd6(ip6g, ip6h, buildIcmpv6Echo({ type: ICMPV6_ECHO_REQUEST, id: 1, seq: 2, data: new Uint8Array(16).fill(7) }), MAC_B),
    expect: { icmpType: ICMPV6_ECHO_REQUEST, ndTargetOffset: -1 },
  });
  const padN = new Uint8Array([1, 4, 0, 0, 0, 0]);
  out.push({
    name: 'ipv6-hbh-udp',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV6, buildIpv6({
      src: ip6g, dst: ip6h, nextHeader: IPPROTO_UDP, extensions: [{ type: IPV6_HOP_BY_HOP, data: padN }],
      payload: buildUdp({ srcPort: 40001, dstPort: 9999, src: ip6g, dst: ip6h, payload: new TextEncoder().encode('hello ipv6') }),
    })),
    expect: { ipVersion: 6, ipProtocol: IPPROTO_UDP, srcPort: 40001, dstPort: 9999, l4Offset: 14 + 48 },
  });
  out.push({
    name: 'ipv6-tcp',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV6, buildIpv6({ src: ip6g, dst: ip6h, nextHeader: IPPROTO_TCP, payload: buildTcp({ srcPort: 40000, dstPort: 443, seq: 1, flags: TCP_SYN, src: ip6g, dst: ip6h }) })),
    expect: { ipProtocol: IPPROTO_TCP, dstPort: 443, tcpFlags: TCP_SYN },
  });
  const fragData = new Uint8Array([0, 8, 0, 0, 0, 0x99]); // offset 8 bytes, id 0x99: a later fragment
  out.push({
    name: 'ipv6-later-fragment',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV6, buildIpv6({ src: ip6g, dst: ip6h, nextHeader: IPPROTO_UDP, extensions: [{ type: IPV6_FRAGMENT, data: fragData }], payload: new Uint8Array(24).fill(1) })),
    expect: { fragment: true, laterFragment: true, ipProtocol: IPPROTO_UDP, srcPort: -1 },
  });

  const inner = eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(IP4_A, IP4_B, IPPROTO_ICMP, buildIcmpv4Echo({ type: ICMP_ECHO_REQUEST, id: 9, seq: 3 })));
  const pa1 = parseIpv4('10.0.0.1'), pa2 = parseIpv4('10.0.0.2');
  out.push({
    name: 'nvgre',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(pa1, pa2, IPPROTO_GRE, buildNvgre(VSID, inner, 0x2a))),
    expect: { ipProtocol: IPPROTO_GRE, greProtocol: ETHERTYPE_TEB, greKey: nvgreKey(VSID, 0x2a), greInnerOffset: 14 + 20 + 8, greInUdp: false },
  });
  out.push({
    name: 'gre-in-udp',
    frame: eth(MAC_B, MAC_A, ETHERTYPE_IPV4, v4(pa1, pa2, IPPROTO_UDP, buildGreInUdp({
      srcPort: 50123, src: ipv4ToBytes(pa1), dst: ipv4ToBytes(pa2), protocol: ETHERTYPE_TEB, key: nvgreKey(VSID, 1), payload: inner,
    }))),
    expect: { dstPort: GRE_UDP_PORT, greInUdp: true, greProtocol: ETHERTYPE_TEB, greKey: nvgreKey(VSID, 1), greInnerOffset: 14 + 20 + 8 + 8 },
  });
  return out;
}
