// The DHCP, router and ND guards against fragments (fragments.ts, RFC 7113 / RFC 6980): a
// fragmented DHCP OFFER, RA or NA from a guarded port is dropped; guards off, it passes; a
// guarded port's other fragmented traffic still flows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildEthernet, buildIpv4, buildIpv6, buildDhcp, buildUdp, buildRouterAdvertisement, buildNeighborAdvertisement, setIcmpv6Checksum,
  ipv4ToBytes, parseIpv4Address, parseIpv6Address, parseMac,
  ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPPROTO_UDP, IPV4_FLAG_MF, IPV6_FRAGMENT, BOOTREPLY, DHCPOFFER,
} from '../packet/index.ts';
import { BCAST, Bench, mac } from './test-support.ts';

/** An IPv4 UDP datagram split in two fragments at byte `cut` of the UDP message (a multiple of 8). */
function udp4Fragments(srcMac: string, sport: number, dport: number, data: Uint8Array, cut: number): Uint8Array[] {
  const s = parseIpv4Address('10.0.0.1'), d = parseIpv4Address('255.255.255.255');
  const u = buildUdp({ srcPort: sport, dstPort: dport, payload: data, src: ipv4ToBytes(s), dst: ipv4ToBytes(d) });
  const frag = (payload: Uint8Array, flags: number, fragmentOffset: number): Uint8Array =>
    buildEthernet({ src: parseMac(srcMac), dst: parseMac(BCAST), ethertype: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: s, dst: d, protocol: IPPROTO_UDP, id: 7, flags, fragmentOffset, payload }) });
  return [frag(u.subarray(0, cut), IPV4_FLAG_MF, 0), frag(u.subarray(cut), 0, cut)];
}

/** An IPv6 packet (upper-layer `nh`, message `msg`) split in two fragments at byte `cut` (a multiple of 8). */
function ipv6Fragments(srcMac: string, nh: number, msg: Uint8Array, cut: number, src = 'fe80::1'): Uint8Array[] {
  const s = parseIpv6Address(src), d = parseIpv6Address('ff02::1');
  const frag = (payload: Uint8Array, offset: number, more: boolean): Uint8Array => {
    const fh = new Uint8Array(6);
    const v = offset | (more ? 1 : 0);
    fh[0] = v >>> 8; fh[1] = v & 0xff; fh[5] = 42; // offset + M flag, identification 42
    return buildEthernet({ src: parseMac(srcMac), dst: parseMac('33:33:00:00:00:01'), ethertype: ETHERTYPE_IPV6,
      payload: buildIpv6({ src: s, dst: d, nextHeader: nh, hopLimit: 255, extensions: [{ type: IPV6_FRAGMENT, data: fh }], payload }) });
  };
  return [frag(msg.subarray(0, cut), 0, true), frag(msg.subarray(cut), cut, false)];
}

function icmpv6(msg: Uint8Array): Uint8Array {
  return setIcmpv6Checksum(msg, parseIpv6Address('fe80::1'), parseIpv6Address('ff02::1'));
}

const offer = buildDhcp({ op: BOOTREPLY, xid: 42, chaddr: parseMac(mac(2)), messageType: DHCPOFFER, yiaddr: parseIpv4Address('10.0.0.50') });

test('DhcpGuard drops fragmented DHCP (v4 and v6) and first fragments too short to show their ports; other fragmented UDP passes', async () => {
  const b = await Bench.create();
  await b.port('rogue', { mac: mac(1) });
  await b.port('victim', { mac: mac(2) });
  const v4 = udp4Fragments(mac(1), 67, 68, offer, 64);
  for (const f of v4) b.send('rogue', f);
  assert.equal(b.take('victim').length, 2, 'guard off: both fragments pass');

  b.sw.setPortPolicy('rogue', { guards: { dhcpGuard: 'On' } });
  for (const f of v4) b.send('rogue', f);
  // The later fragment cannot be reassembled without the first, so it may pass.
  assert.equal(b.take('victim').length, 1);
  assert.equal(b.drops('rogue')['dhcp-guard'], 1);
  // From another source port to the client port, and a first fragment that ends inside the UDP header.
  b.send('rogue', udp4Fragments(mac(1), 1234, 68, offer, 64)[0]!);
  const tiny = udp4Fragments(mac(1), 67, 68, offer, 64)[0]!;
  const tinyFirst = buildEthernet({ src: parseMac(mac(1)), dst: parseMac(BCAST), ethertype: ETHERTYPE_IPV4,
    payload: buildIpv4({ src: parseIpv4Address('10.0.0.1'), dst: parseIpv4Address('255.255.255.255'), protocol: IPPROTO_UDP, flags: IPV4_FLAG_MF, payload: tiny.subarray(34, 38) }) });
  b.send('rogue', tinyFirst);
  // DHCPv6 ADVERTISE (547 → 546), fragmented.
  const s6 = parseIpv6Address('fe80::1'), d6 = parseIpv6Address('ff02::1');
  const adv = buildUdp({ srcPort: 547, dstPort: 546, payload: new Uint8Array(64), src: s6, dst: d6 });
  b.send('rogue', ipv6Fragments(mac(1), IPPROTO_UDP, adv, 32)[0]!);
  assert.equal(b.take('victim').length, 0);
  assert.equal(b.drops('rogue')['dhcp-guard'], 4);
  // Fragmented UDP that is not DHCP still flows from a guarded port.
  for (const f of udp4Fragments(mac(1), 5000, 5001, new Uint8Array(200), 64)) b.send('rogue', f);
  assert.equal(b.take('victim').length, 2);
  await b.sw.close();
});

test('RouterGuard drops fragmented RAs, first and later fragments; guard off they pass', async () => {
  const b = await Bench.create();
  await b.port('r', { mac: mac(1) });
  await b.port('h', { mac: mac(2) });
  const ra = ipv6Fragments(mac(1), IPPROTO_ICMPV6, icmpv6(buildRouterAdvertisement({ routerLifetime: 1800, options: [{ type: 5, mtu: 1500 }, { type: 1, mac: parseMac(mac(1)) }] })), 16);
  for (const f of ra) b.send('r', f);
  assert.equal(b.take('h').length, 2);
  b.sw.setPortPolicy('r', { guards: { routerGuard: 'On' } });
  for (const f of ra) b.send('r', f);
  // A first fragment carrying only part of the ICMPv6 header is dropped too.
  const head = ipv6Fragments(mac(1), IPPROTO_ICMPV6, icmpv6(buildRouterAdvertisement({ routerLifetime: 1800 })), 2)[0]!;
  b.send('r', head);
  assert.equal(b.take('h').length, 0);
  assert.equal(b.drops('r')['router-guard'], 3);
  await b.sw.close();
});

test('ArpGuard drops fragmented ND: a split NA cannot claim another port’s address', async () => {
  const b = await Bench.create();
  await b.port('victim', { mac: mac(2), ipAddresses: ['fe80::2'] });
  await b.port('attacker', { mac: mac(3), guards: { arpGuard: 'On' } });
  const naMsg = icmpv6(buildNeighborAdvertisement({ target: parseIpv6Address('fe80::2'), flags: 0x20, options: [{ type: 2, mac: parseMac(mac(3)) }] }));
  for (const f of ipv6Fragments(mac(3), IPPROTO_ICMPV6, naMsg, 8, 'fe80::3')) b.send('attacker', f);
  assert.equal(b.take('victim').length, 0);
  assert.equal(b.drops('attacker')['nd-spoofing'], 2);
  b.sw.setPortPolicy('attacker', { guards: { arpGuard: 'Off' } });
  for (const f of ipv6Fragments(mac(3), IPPROTO_ICMPV6, naMsg, 8, 'fe80::3')) b.send('attacker', f);
  assert.equal(b.take('victim').length, 2);
  await b.sw.close();
});
