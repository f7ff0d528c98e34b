// Build → parse round-trips for every protocol, and checksums against known-good vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { internetChecksum, onesSum } from './bytes.ts';
import { parseMac, parseIpv4, parseIpv6, ipv4ToBytes, macToNumber, formatIpv6 } from './address.ts';
import { buildEthernet, parseEthernet, pushVlan, popVlan, setVlanId, ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_QINQ } from './ethernet.ts';
import { buildArp, parseArp, buildGratuitousArp, isGratuitousArp, ARP_REPLY } from './arp.ts';
import { buildIpv4, parseIpv4 as parseIpv4Header, ipv4ChecksumOk, setIpv4Checksum, IPV4_FLAG_MF, IPPROTO_UDP } from './ipv4.ts';
import { buildIpv6, parseIpv6 as parseIpv6Header, IPV6_DEST_OPTS, IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_MAX_EXTENSIONS } from './ipv6.ts';
import { buildIcmpv4Echo, parseIcmpv4, icmpv4ChecksumOk, ICMP_ECHO_REPLY } from './icmpv4.ts';
import {
  buildRouterAdvertisement, buildNeighborAdvertisement, buildNeighborSolicitation, buildRedirect, buildRouterSolicitation,
  parseIcmpv6, setIcmpv6Checksum, icmpv6ChecksumOk, ND_OPT_MTU, ND_OPT_PREFIX_INFORMATION, ND_OPT_SOURCE_LINKADDR,
  ND_OPT_TARGET_LINKADDR, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, RA_FLAG_MANAGED,
} from './icmpv6.ts';
import { buildUdp, parseUdp, udpChecksumOk } from './udp.ts';
import { buildTcp, parseTcp, tcpChecksumOk, TCP_ACK, TCP_PSH } from './tcp.ts';
import { buildDhcp, parseDhcp, isDhcpServerMessageType, BOOTREPLY, DHCPACK, DHCPDISCOVER, DHCPNAK, DHCPOFFER, DHCPREQUEST, DHCP_OPT_SERVER_ID } from './dhcp.ts';
import { buildGre, parseGre, buildGreInUdp, parseGreInUdp, nvgreKey, nvgreVsid, nvgreFlowId, GRE_UDP_PORT, NVGRE_PROTOCOL } from './gre.ts';
import { pcapHeader, pcapRecord } from './pcap.ts';
import type { Parsed } from './result.ts';

function ok<T>(r: Parsed<T>): T {
  if (!r.ok) assert.fail(`malformed: ${r.reason} at ${r.offset}`);
  return r;
}
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const A = parseMac('00:15:5d:00:00:0a'), B = parseMac('00:15:5d:00:00:0b');

test('Internet checksum: RFC 1071 §3 example and a known IPv4 header', () => {
  const r1071 = hex('0001 f203 f4f5 f6f7');
  assert.equal(onesSum(r1071, 0, 8), 0x2ddf0); // RFC 1071: 2ddf0, folded ddf2
  assert.equal(internetChecksum(r1071, 0, 8), 0x220d);
  // Widely used example header 192.168.0.1 → 192.168.0.199, checksum b861.
  const h = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  assert.ok(ipv4ChecksumOk(h, 0));
  const b = buildIpv4({ src: parseIpv4('192.168.0.1'), dst: parseIpv4('192.168.0.199'), protocol: 17, ttl: 64, payload: new Uint8Array(0x73 - 20) });
  assert.deepEqual(b.subarray(0, 20), h);
  h[8] = 63; assert.ok(!ipv4ChecksumOk(h, 0)); setIpv4Checksum(h, 0); assert.ok(ipv4ChecksumOk(h, 0));
});

test('Ethernet and 802.1Q: build, parse, push, pop, QinQ refused', () => {
  const f = buildEthernet({ dst: B, src: A, ethertype: ETHERTYPE_IPV4, payload: new Uint8Array([1, 2, 3]) });
  const e = ok(parseEthernet(f));
  assert.equal(e.dst, macToNumber(B)); assert.equal(e.src, macToNumber(A)); assert.equal(e.vlan, null); assert.equal(e.payloadOffset, 14);
  const t = pushVlan(f, { vid: 100, pcp: 5, dei: true });
  const et = ok(parseEthernet(t));
  assert.deepEqual(et.vlan, { vid: 100, pcp: 5, dei: true }); assert.equal(et.ethertype, ETHERTYPE_IPV4); assert.equal(et.payloadOffset, 18);
  assert.ok(setVlanId(t, 200)); assert.equal(ok(parseEthernet(t)).vlan?.vid, 200); assert.equal(ok(parseEthernet(t)).vlan?.pcp, 5);
  const popped = popVlan(t);
  assert.equal(popped.buffer, t.buffer, 'pop is in place, no copy');
  assert.deepEqual(popped, f);
  assert.equal(popVlan(f), f);
  const built = buildEthernet({ dst: B, src: A, ethertype: ETHERTYPE_ARP, vlan: { vid: 7 }, payload: new Uint8Array(0) });
  assert.equal(ok(parseEthernet(built)).vlan?.vid, 7);
  const qinq = pushVlan(t.slice(), { vid: 1 }); // tag on a tag
  assert.equal((parseEthernet(pushVlan(pushVlan(f, { vid: 2 }), { vid: 1 })) as { reason: string }).reason, 'qinq-unsupported');
  qinq[12] = ETHERTYPE_QINQ >> 8; qinq[13] = ETHERTYPE_QINQ & 0xff;
  assert.equal((parseEthernet(qinq) as { reason: string }).reason, 'qinq-unsupported');
  assert.deepEqual(parseEthernet(f.subarray(0, 13)), { ok: false, reason: 'truncated-ethernet', layer: 'ethernet', offset: 0 });
  assert.equal((parseEthernet(pushVlan(f, { vid: 1 }).slice(0, 16)) as { reason: string }).reason, 'truncated-vlan');
});

test('ARP round trip, gratuitous', () => {
  const p = ok(parseArp(buildArp({ op: ARP_REPLY, sha: A, spa: 0x0a000001, tha: B, tpa: 0x0a000002 }), 0));
  assert.deepEqual({ ...p }, { ok: true, op: 2, sha: macToNumber(A), spa: 0x0a000001, tha: macToNumber(B), tpa: 0x0a000002 });
  const g = ok(parseArp(buildGratuitousArp(A, 0x0a000009), 0));
  assert.ok(isGratuitousArp(g)); assert.equal(g.tha, 0);
  assert.equal((parseArp(new Uint8Array(27), 0) as { reason: string }).reason, 'truncated-arp');
  assert.equal((parseArp(new Uint8Array(28), 0) as { reason: string }).reason, 'unsupported-arp');
});

test('IPv4 round trip with options and fragment fields', () => {
  const b = buildIpv4({ src: 1, dst: 0xfffffffe, protocol: 99, ttl: 9, id: 777, dscp: 46, ecn: 1, flags: IPV4_FLAG_MF, fragmentOffset: 1480, options: new Uint8Array([0x94, 4, 0, 0, 1]), payload: new Uint8Array(10).fill(5) });
  const h = ok(parseIpv4Header(b, 0));
  assert.equal(h.headerLength, 28); assert.equal(h.optionsLength, 8); assert.equal(b[20], 0x94);
  assert.equal(h.dscp, 46); assert.equal(h.ecn, 1); assert.equal(h.id, 777); assert.equal(h.flags, IPV4_FLAG_MF);
  assert.equal(h.fragmentOffset, 1480); assert.equal(h.ttl, 9); assert.equal(h.protocol, 99); assert.equal(h.src, 1); assert.equal(h.dst, 0xfffffffe);
  assert.equal(h.payloadOffset, 28); assert.equal(h.payloadLength, 10); assert.ok(ipv4ChecksumOk(b, 0));
  const padded = new Uint8Array(b.length + 6); padded.set(b); // Ethernet padding after the datagram
  assert.equal(ok(parseIpv4Header(padded, 0)).payloadLength, 10);
  assert.equal((parseIpv4Header(b.subarray(0, b.length - 1), 0) as { reason: string }).reason, 'truncated-ipv4');
  const lie = b.slice(); lie[0] = 0x44;
  assert.equal((parseIpv4Header(lie, 0) as { reason: string }).reason, 'bad-ipv4-header-length');
});

test('IPv6 round trip and the bounded extension-header walk', () => {
  const src = parseIpv6('2001:db8::1'), dst = parseIpv6('2001:db8::2');
  const pad6 = new Uint8Array([1, 4, 0, 0, 0, 0]);
  const b = buildIpv6({ src, dst, nextHeader: IPPROTO_UDP, hopLimit: 3, trafficClass: 0xb8, flowLabel: 0x12345, payload: new Uint8Array(8),
    extensions: [{ type: IPV6_HOP_BY_HOP, data: pad6 }, { type: IPV6_ROUTING, data: new Uint8Array(6) }, { type: IPV6_DEST_OPTS, data: new Uint8Array(14).fill(0).map((_, i) => (i === 0 ? 1 : i === 1 ? 12 : 0)) }] });
  const h = ok(parseIpv6Header(b, 0));
  assert.equal(h.nextHeader, IPV6_HOP_BY_HOP); assert.equal(h.protocol, IPPROTO_UDP); assert.equal(h.upperOffset, 40 + 8 + 8 + 16);
  assert.equal(h.upperLength, 8); assert.equal(h.hopLimit, 3); assert.equal(h.trafficClass, 0xb8); assert.equal(h.flowLabel, 0x12345);
  assert.equal(formatIpv6(b, h.srcOffset), '2001:db8::1'); assert.equal(formatIpv6(b, h.dstOffset), '2001:db8::2');
  const many = buildIpv6({ src, dst, nextHeader: 59, payload: new Uint8Array(0), extensions: Array.from({ length: IPV6_MAX_EXTENSIONS + 1 }, () => ({ type: IPV6_DEST_OPTS, data: pad6 })) });
  assert.equal((parseIpv6Header(many, 0) as { reason: string }).reason, 'too-many-ipv6-extensions');
  const lie = b.slice(); lie[41] = 200; // hop-by-hop length beyond the payload
  assert.equal((parseIpv6Header(lie, 0) as { reason: string }).reason, 'truncated-ipv6-extension');
  assert.equal((parseIpv6Header(b.subarray(0, b.length - 1), 0) as { reason: string }).reason, 'bad-ipv6-payload-length');
});

test('ICMPv4 echo round trip and checksum', () => {
  const m = buildIcmpv4Echo({ type: ICMP_ECHO_REPLY, id: 0x1234, seq: 9, data: new Uint8Array([1, 2, 3]) });
  const h = ok(parseIcmpv4(m, 0));
  assert.equal(h.type, 0); assert.equal(h.id, 0x1234); assert.equal(h.seq, 9); assert.ok(icmpv4ChecksumOk(m, 0, m.length));
  m[9] = 0; assert.ok(!icmpv4ChecksumOk(m, 0, m.length));
});

test('ICMPv6 ND round trips: RS, RA with options, NS, NA, Redirect; checksum', () => {
  const src = parseIpv6('fe80::1'), dst = parseIpv6('ff02::1'), tgt = parseIpv6('2001:db8::99');
  const ra = setIcmpv6Checksum(buildRouterAdvertisement({ curHopLimit: 63, flags: RA_FLAG_MANAGED, routerLifetime: 900, reachableTime: 30000, retransTimer: 1000,
    options: [{ type: ND_OPT_SOURCE_LINKADDR, mac: A }, { type: ND_OPT_MTU, mtu: 1400 }, { type: ND_OPT_PREFIX_INFORMATION, prefix: parseIpv6('2001:db8:5::'), prefixLength: 64, autonomous: false, validLifetime: 100, preferredLifetime: 50 }] }), src, dst);
  assert.ok(icmpv6ChecksumOk(ra, 0, ra.length, src, dst));
  const r = ok(parseIcmpv6(ra, 0));
  assert.equal(r.type, 134); assert.equal(r.curHopLimit, 63); assert.equal(r.raFlags, RA_FLAG_MANAGED); assert.equal(r.routerLifetime, 900);
  assert.equal(r.reachableTime, 30000); assert.equal(r.retransTimer, 1000); assert.equal(r.sourceLinkAddr, macToNumber(A)); assert.equal(r.mtu, 1400);
  assert.equal(r.prefixes.length, 1);
  const p = r.prefixes[0]!;
  assert.deepEqual([p.prefixLength, p.onLink, p.autonomous, p.validLifetime, p.preferredLifetime, formatIpv6(ra, p.prefixOffset)], [64, true, false, 100, 50, '2001:db8:5::']);
  const ns = ok(parseIcmpv6(buildNeighborSolicitation({ target: tgt, options: [{ type: ND_OPT_SOURCE_LINKADDR, mac: B }] }), 0));
  assert.equal(ns.type, 135); assert.equal(ns.targetOffset, 8); assert.equal(ns.sourceLinkAddr, macToNumber(B)); assert.equal(ns.targetLinkAddr, -1);
  const naBytes = buildNeighborAdvertisement({ target: tgt, flags: NA_FLAG_ROUTER | NA_FLAG_SOLICITED, options: [{ type: ND_OPT_TARGET_LINKADDR, mac: A }] });
  const na = ok(parseIcmpv6(naBytes, 0));
  assert.equal(na.naFlags, NA_FLAG_ROUTER | NA_FLAG_SOLICITED); assert.equal(formatIpv6(naBytes, na.targetOffset), '2001:db8::99'); assert.equal(na.targetLinkAddr, macToNumber(A));
  const rdBytes = buildRedirect({ target: src, destination: tgt, options: [{ type: ND_OPT_TARGET_LINKADDR, mac: B }] });
  const rd = ok(parseIcmpv6(rdBytes, 0));
  assert.equal(rd.type, 137); assert.equal(formatIpv6(rdBytes, rd.destinationOffset), '2001:db8::99'); assert.equal(rd.targetLinkAddr, macToNumber(B));
  assert.equal(ok(parseIcmpv6(buildRouterSolicitation({}), 0)).sourceLinkAddr, -1);
  const zeroLen = naBytes.slice(); zeroLen[25] = 0;
  assert.deepEqual(parseIcmpv6(zeroLen, 0), { ok: false, reason: 'bad-nd-option', layer: 'icmpv6', offset: 24 });
  const longOpt = naBytes.slice(); longOpt[25] = 2;
  assert.equal((parseIcmpv6(longOpt, 0) as { reason: string }).reason, 'bad-nd-option');
  assert.equal((parseIcmpv6(naBytes.subarray(0, 20), 0) as { reason: string }).reason, 'truncated-icmpv6');
});

test('UDP and TCP round trips with IPv4 and IPv6 pseudo-header checksums', () => {
  const s4 = ipv4ToBytes(parseIpv4('10.0.0.1')), d4 = ipv4ToBytes(parseIpv4('10.0.0.2'));
  const s6 = parseIpv6('2001:db8::1'), d6 = parseIpv6('2001:db8::2');
  for (const [s, d] of [[s4, d4], [s6, d6]] as const) {
    const u = buildUdp({ srcPort: 1234, dstPort: 53, payload: new Uint8Array([9, 8, 7]), src: s, dst: d });
    const uh = ok(parseUdp(u, 0));
    assert.deepEqual([uh.srcPort, uh.dstPort, uh.length, uh.payloadOffset, uh.payloadLength], [1234, 53, 11, 8, 3]);
    assert.ok(udpChecksumOk(u, 0, s, d)); u[10] = u[10]! ^ 1; assert.ok(!udpChecksumOk(u, 0, s, d));
    const t = buildTcp({ srcPort: 80, dstPort: 5555, seq: 0xfffffff0, ack: 42, flags: TCP_ACK | TCP_PSH, window: 512, options: new Uint8Array([1, 1, 1]), payload: new Uint8Array([1, 2, 3, 4, 5]), src: s, dst: d });
    const th = ok(parseTcp(t, 0));
    assert.deepEqual([th.srcPort, th.dstPort, th.seq, th.ack, th.flags, th.window, th.headerLength, th.payloadLength], [80, 5555, 0xfffffff0, 42, TCP_ACK | TCP_PSH, 512, 24, 5]);
    assert.ok(tcpChecksumOk(t, 0, t.length, s, d)); t[t.length - 1] = t[t.length - 1]! ^ 0x40; assert.ok(!tcpChecksumOk(t, 0, t.length, s, d));
  }
  // Hand-derived vector: UDP 10.0.0.1:1234 → 10.0.0.2:53, payload 09 08 07: pseudo-header
  // words, then header words (checksum field zero), then the payload padded to 0700.
  const u = buildUdp({ srcPort: 1234, dstPort: 53, payload: new Uint8Array([9, 8, 7]), src: s4, dst: d4 });
  const sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x0011 + 0x000b + 0x04d2 + 0x0035 + 0x000b + 0x0908 + 0x0700;
  assert.equal((u[6]! << 8) | u[7]!, ~sum & 0xffff);
  assert.equal((parseUdp(u, 0, 10) as { reason: string }).reason, 'bad-udp-length');
  assert.equal((parseTcp(new Uint8Array(20).fill(0x10), 0) as { reason: string }).reason, 'bad-tcp-data-offset');
});

test('DHCPv4 round trip; server messages identified', () => {
  const m = buildDhcp({ op: BOOTREPLY, xid: 0xabcdef01, chaddr: A, yiaddr: 0x0a000005, siaddr: 0x0a000001, flags: 0x8000, messageType: DHCPACK,
    options: [{ code: DHCP_OPT_SERVER_ID, data: new Uint8Array([10, 0, 0, 1]) }] });
  const d = ok(parseDhcp(m, 0));
  assert.deepEqual([d.op, d.xid, d.chaddr, d.yiaddr, d.siaddr, d.flags, d.messageType, d.htype, d.hlen], [2, 0xabcdef01, macToNumber(A), 0x0a000005, 0x0a000001, 0x8000, DHCPACK, 1, 6]);
  assert.deepEqual(d.options.map((o) => [o.code, o.length]), [[53, 1], [54, 4]]);
  assert.deepEqual([...m.subarray(d.options[1]!.offset, d.options[1]!.offset + 4)], [10, 0, 0, 1]);
  for (const t of [DHCPOFFER, DHCPACK, DHCPNAK]) assert.ok(isDhcpServerMessageType(t));
  for (const t of [DHCPDISCOVER, DHCPREQUEST]) assert.ok(!isDhcpServerMessageType(t));
  const cut = m.slice(0, 244); // option 54 runs past the end
  cut[243] = 54; assert.equal((parseDhcp(cut.slice(0, 244), 0) as { reason: string }).reason, 'bad-dhcp-option');
  const badCookie = m.slice(); badCookie[236] = 0;
  assert.equal((parseDhcp(badCookie, 0) as { reason: string }).reason, 'bad-dhcp-cookie');
  assert.equal((parseDhcp(m.subarray(0, 239), 0) as { reason: string }).reason, 'truncated-dhcp');
});

test('GRE: key/sequence/checksum bits, NVGRE key helpers, GRE-in-UDP', () => {
  const inner = new Uint8Array(20).fill(0xee);
  const g = buildGre({ protocol: NVGRE_PROTOCOL, key: nvgreKey(0xabcdef, 0x12), sequence: 77, checksum: true, payload: inner });
  const h = ok(parseGre(g, 0));
  assert.deepEqual([h.checksumPresent, h.keyPresent, h.sequencePresent, h.protocol, h.key, h.sequence, h.headerLength, h.payloadOffset], [true, true, true, 0x6558, 0xabcdef12, 77, 16, 16]);
  assert.equal(internetChecksum(g, 0, g.length), 0);
  assert.equal(nvgreVsid(h.key), 0xabcdef); assert.equal(nvgreFlowId(h.key), 0x12);
  assert.equal(nvgreKey(5001, 0), 5001 * 256);
  const plain = ok(parseGre(buildGre({ protocol: 0x0800, payload: inner }), 0));
  assert.deepEqual([plain.keyPresent, plain.key, plain.headerLength], [false, -1, 4]);
  const s = ipv4ToBytes(1), d = ipv4ToBytes(2);
  const gu = buildGreInUdp({ srcPort: 40000, src: s, dst: d, protocol: NVGRE_PROTOCOL, key: nvgreKey(4096), payload: inner });
  const uh = ok(parseUdp(gu, 0));
  assert.equal(uh.dstPort, GRE_UDP_PORT); assert.ok(udpChecksumOk(gu, 0, s, d));
  assert.equal(ok(parseGre(gu, uh.payloadOffset)).key, 4096 << 8);
  const both = ok(parseGreInUdp(gu, 0));
  assert.deepEqual([both.udp.srcPort, both.gre.protocol, both.gre.key, both.gre.payloadOffset], [40000, NVGRE_PROTOCOL, 4096 << 8, 16]);
  assert.equal((parseGreInUdp(buildUdp({ srcPort: 1, dstPort: 2, src: s, dst: d, payload: inner }), 0) as { reason: string }).reason, 'not-gre-in-udp');
  assert.equal((parseGre(g.subarray(0, 10), 0) as { reason: string }).reason, 'truncated-gre');
  const v1 = g.slice(); v1[1] = 1;
  assert.equal((parseGre(v1, 0) as { reason: string }).reason, 'unsupported-gre-version');
});

test('pcap encoder: header and record layout', () => {
  const h = pcapHeader({ snaplen: 96, nanoseconds: true });
  assert.deepEqual([...h.subarray(0, 8)], [0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0]);
  assert.equal(new DataView(h.buffer).getUint32(16, true), 96);
  assert.equal(new DataView(h.buffer).getUint32(20, true), 1);
  assert.deepEqual([...pcapHeader().subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1]);
  const frame = new Uint8Array(100).fill(3);
  const r = pcapRecord(frame, 1_700_000_000_123_456_789n, { snaplen: 96, nanoseconds: true });
  const v = new DataView(r.buffer);
  assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true), r.length], [1_700_000_000, 123_456_789, 96, 100, 112]);
  const us = new DataView(pcapRecord(frame, 1_700_000_000_123_456_789n).buffer);
  assert.equal(us.getUint32(4, true), 123_456); assert.equal(us.getUint32(8, true), 100);
});
