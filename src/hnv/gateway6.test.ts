// IPv6 through the multitenant gateway (gateway6.ts, nptv6.ts), between a real External switch
// running vmhost.hnv (host A; its uplink the UDP tunnel to host B's) and a real Internal
// "datacenter" switch whose host vNIC is an in-process port answering Neighbor Solicitations.
// Blue (5001) and Red (6001) both have VM fd00:b::10 and a ::/0 customer route to the gateway's
// CA fd00:b::fe; both are NAT-mode domains, so NPTv6 maps Blue's fd00:b::/48 onto fd99:0:b::/48
// and Red's onto fd99:0:e::/48; Green (7001, fd00:9::/64) is forwarded (routed unchanged).
// Proves: NPTv6 as RFC 6296's own example computes it; the gateway answers NS for its external
// address (Router flag) and learns the host by NS/NA; Blue's and Red's identical pings leave
// with different translated sources, good checksums and the hop limit two less (router,
// gateway), and each reply reaches only its own tenant; Red cannot reach Blue (Blue's external
// prefix or the gateway's address: gw-hairpin), nor can the datacenter send unsolicited into a
// NAT domain (gw-no-translation); a Blue VM on host B gets out through A's gateway and its reply
// back over NVGRE (B accepts it from the gateway's PA); Green goes out and in unchanged; a packet
// too big for the datacenter MTU earns the VM Packet Too Big, one too big for the customer MTU
// earns the datacenter host one, hop limit 1 earns Time Exceeded either way, and a datacenter Packet Too Big reaches the VM with the quoted
// packet translated back (so its own socket learns the path MTU); 5,000 mutated IPv6 frames on
// both sides never throw.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ETHERTYPE_IPV6, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, IPPROTO_ICMPV6, ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT, NA_FLAG_ROUTER,
  buildEthernet, buildIcmpv6Echo, formatMac, buildIcmpv6Error, buildIpv6, buildNeighborAdvertisement, buildNeighborSolicitation, formatIpv6, icmpv6ChecksumOk, ipv6MulticastMac,
  macToNumber, parseFrame, parseIpv6Address, parseMac, setIcmpv6Checksum, solicitedNodeMulticast,
} from '../packet/index.ts';
import { seededRandom } from '../common/prng.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { Clock, until } from '../switch/test-support.ts';
import { CUSTOMER_MTU, GATEWAY_MAC, type HnvGateway, type GatewayDomain } from './index.ts';
import { gatewayBed, type GatewayBed } from './gateway-test-bed.ts';
import { Nptv6 } from './nptv6.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}', RED = '{22222222-0000-0000-0000-000000000002}', GREEN = '{33333333-0000-0000-0000-000000000003}';
const PA_A = '192.168.100.1', PA_B = '192.168.100.2';
const HOST = 'fd99::1', HOST_MAC = '52:54:00:c8:00:01', DC_MAC = '02:15:5d:fe:00:00', ROUTER = '02:15:5d:ff:ff:01';
const GW6 = { 5001: 'fd00:b::fe', 6001: 'fd00:b::fe', 7001: 'fd00:9::fe' } as const;
const GW_MAC = { 5001: '02:15:5d:fe:00:01', 6001: '02:15:5d:fe:00:02', 7001: '02:15:5d:fe:00:03' } as const;
const BLUE_MTU = 1280;

interface Vm { port: string; host: 'a' | 'b'; vsid: 5001 | 6001 | 7001; ip: string; mac: string }
const VMS: Vm[] = [
  { port: 'blue', host: 'a', vsid: 5001, ip: 'fd00:b::10', mac: '52:54:00:05:00:0a' },
  { port: 'red', host: 'a', vsid: 6001, ip: 'fd00:b::10', mac: '52:54:00:06:00:0a' },
  { port: 'blueB', host: 'b', vsid: 5001, ip: 'fd00:b::11', mac: '52:54:00:05:00:0b' },
  { port: 'green', host: 'a', vsid: 7001, ip: 'fd00:9::10', mac: '52:54:00:07:00:0a' },
];
const vm = (port: string): Vm => VMS.find((v) => v.port === port)!;

const DOMAINS: GatewayDomain[] = [
  { routingDomainId: BLUE, mode: 'Nat', virtualSubnetId: 5001, customerAddress: '10.0.0.254', macAddress: GW_MAC[5001], externalAddress: '192.168.200.10',
    ipv6: { customerAddress: GW6[5001], externalAddress: 'fd99::b', internalPrefix: 'fd00:b::/48', externalPrefix: 'fd99:0:b::/48', mtu: BLUE_MTU } },
  { routingDomainId: RED, mode: 'Nat', virtualSubnetId: 6001, customerAddress: '10.0.0.254', macAddress: GW_MAC[6001], externalAddress: '192.168.200.10',
    ipv6: { customerAddress: GW6[6001], externalAddress: 'fd99::e', internalPrefix: 'fd00:b::/48', externalPrefix: 'fd99:0:e::/48' } },
  { routingDomainId: GREEN, mode: 'Forwarding', virtualSubnetId: 7001, customerAddress: '10.5.0.254', macAddress: GW_MAC[7001], externalAddress: '192.168.200.20',
    ipv6: { customerAddress: GW6[7001], externalAddress: 'fd99::9' } },
];

function policy(pa: string): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: pa, InterfaceIndex: 1, PrefixLength: 24 }));
  const routes = [[BLUE, 5001, 'fd00:b::/64', '::'], [BLUE, 5001, '::/0', GW6[5001]], [RED, 6001, 'fd00:b::/64', '::'], [RED, 6001, '::/0', GW6[6001]],
    [GREEN, 7001, 'fd00:9::/64', '::'], [GREEN, 7001, '::/0', GW6[7001]]] as const;
  for (const [rdid, vsid, prefix, hop] of routes) p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: hop }));
  for (const v of VMS) p = addLookupRecord(p, lookupRecord({ CustomerAddress: v.ip, VirtualSubnetID: v.vsid, MACAddress: v.mac, ProviderAddress: v.host === 'a' ? PA_A : PA_B, Rule: 'TranslationMethodEncap' }));
  for (const vsid of [5001, 6001, 7001] as const) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: GW6[vsid], VirtualSubnetID: vsid, MACAddress: GW_MAC[vsid], ProviderAddress: PA_A, Rule: 'TranslationMethodEncap', VMName: 'vmhost-gateway' }));
  }
  return p;
}

function ipv6Frame(srcMac: string, dstMac: string, src: string, dst: string, icmp: Uint8Array, hopLimit = 64): Uint8Array {
  const s = parseIpv6Address(src), d = parseIpv6Address(dst);
  setIcmpv6Checksum(icmp, s, d);
  return buildEthernet({ src: parseMac(srcMac), dst: parseMac(dstMac), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_ICMPV6, hopLimit, payload: icmp }) });
}
const echo6 = (type: 128 | 129, srcMac: string, dstMac: string, src: string, dst: string, id: number, size = 32): Uint8Array =>
  ipv6Frame(srcMac, dstMac, src, dst, buildIcmpv6Echo({ type, id, seq: 1, data: new Uint8Array(size) }));
/** The ICMPv6 checksum of an untagged IPv6 frame without extension headers verifies. */
const checksumOk = (f: Uint8Array): boolean => icmpv6ChecksumOk(f, 54, f.length - 54, f.subarray(22, 38), f.subarray(38, 54));
const src6 = (f: Uint8Array): string => formatIpv6(f, 22);
const dst6 = (f: Uint8Array): string => formatIpv6(f, 38);

test('NPTv6 computes RFC 6296 §3.6\'s example and maps back', () => {
  const npt = new Nptv6(parseIpv6Address('fd01:203:405::'), parseIpv6Address('2001:db8:1::'), 48);
  const a = parseIpv6Address('fd01:203:405:1::1234');
  assert.ok(npt.outbound(a, 0));
  assert.equal(formatIpv6(a), '2001:db8:1:d550::1234');
  assert.ok(npt.inbound(a, 0));
  assert.equal(formatIpv6(a), 'fd01:203:405:1::1234');
  assert.equal(npt.outbound(parseIpv6Address('fd01:203:405:ffff::1'), 0), false, 'an adjustment word of 0xFFFF cannot be mapped (§3.5)');
  const long = new Nptv6(parseIpv6Address('fd00:b::'), parseIpv6Address('fd99:0:b::'), 64);
  const b = parseIpv6Address('fd00:b::10'), sum = (x: Uint8Array): number => { let s = 0; for (let i = 0; i < 16; i += 2) s += (x[i]! << 8) | x[i + 1]!; while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s % 0xffff; };
  const before = sum(b);
  assert.ok(long.outbound(b, 0));
  assert.equal(sum(b), before, 'checksum-neutral for a /64 too (the adjustment in bits 64–79)');
  assert.ok(formatIpv6(b).startsWith('fd99:0:b:'));
});

describe('IPv6 through the multitenant gateway: NPTv6 for two tenants with one prefix, routed for a third', () => {
  const clock = new Clock();
  let bed: GatewayBed, got: Map<string, Uint8Array[]>, ext: VirtualSwitch, extB: VirtualSwitch, dc: VirtualSwitch, gw: HnvGateway;

  before(async () => {
    // The host's vNIC answers NS for its address and records everything (the NS included).
    bed = await gatewayBed({
      vms: VMS, hostMac: HOST_MAC, datacenterMac: DC_MAC, policies: [policy(PA_A), policy(PA_B)], domains: DOMAINS, now: clock.now,
      answer: (sw, f, i) => {
        if (i.icmpType === ND_NEIGHBOR_SOLICIT && formatIpv6(f, i.ndTargetOffset) === HOST) {
          const na = buildNeighborAdvertisement({ target: parseIpv6Address(HOST), options: [{ type: 2, mac: parseMac(HOST_MAC) }] });
          sw.inject('host', ipv6Frame(HOST_MAC, DC_MAC, HOST, src6(f), na, 255));
        }
        return true;
      },
    });
    ({ got, ext, extB, dc, gw } = bed);
  });
  after(async () => { await bed?.close(); });

  const clear = (): void => bed.clear();
  const receivers = (): string[] => bed.receivers();
  const drops = (): Record<string, number> => bed.drops();
  /** What reached the host that is not Neighbor Discovery. */
  const atHost = (): Uint8Array[] => got.get('host')!.filter((f) => ![ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT].includes(parseFrame(f).icmpType));
  const pingOut = (from: string, id: number, size = 32): Uint8Array | undefined => {
    clear();
    ext.inject(from, echo6(ICMPV6_ECHO_REQUEST, vm(from).mac, ROUTER, vm(from).ip, HOST, id, size));
    return atHost()[0];
  };

  test('the gateway answers NS for its external address as a router; Blue\'s ping leaves with its source in Blue\'s external prefix', () => {
    clear();
    const target = parseIpv6Address('fd99::b'), group = formatIpv6(solicitedNodeMulticast(target));
    dc.inject('host', ipv6Frame(HOST_MAC, formatMac(ipv6MulticastMac(solicitedNodeMulticast(target))), HOST, group,
      buildNeighborSolicitation({ target, options: [{ type: 1, mac: parseMac(HOST_MAC) }] }), 255));
    const na = got.get('host')!.map((f) => [f, parseFrame(f)] as const).find(([, i]) => i.icmpType === ND_NEIGHBOR_ADVERT);
    assert.ok(na, 'NA for the external address');
    assert.deepEqual([formatIpv6(na[0], na[1].ndTargetOffset), na[1].ndTargetLinkAddr, na[0][54 + 4]! & NA_FLAG_ROUTER, checksumOk(na[0])], ['fd99::b', macToNumber(parseMac(DC_MAC)), NA_FLAG_ROUTER, true]);

    const out = pingOut('blue', 7)!;
    assert.ok(out, 'Blue\'s echo request reached the host');
    const o = parseFrame(out);
    assert.ok(src6(out).startsWith('fd99:0:b:'), src6(out));
    assert.deepEqual([dst6(out), o.src, o.dst, o.ttl, checksumOk(out)], [HOST, macToNumber(parseMac(DC_MAC)), macToNumber(parseMac(HOST_MAC)), 62, true]);
  });

  test('Red, with the same address, leaves from its own prefix; each reply reaches only its own tenant', () => {
    const blueOut = pingOut('blue', 9)!, redOut = pingOut('red', 9)!;
    assert.ok(src6(redOut).startsWith('fd99:0:e:'), src6(redOut));
    assert.notEqual(src6(blueOut), src6(redOut));
    for (const [who, out] of [['blue', blueOut], ['red', redOut]] as const) {
      clear();
      dc.inject('host', echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, src6(out), 9));
      assert.deepEqual(receivers(), [who]);
      const r = got.get(who)![0]!;
      assert.deepEqual([src6(r), dst6(r), parseFrame(r).icmpType, parseFrame(r).src, checksumOk(r)], [HOST, 'fd00:b::10', ICMPV6_ECHO_REPLY, GATEWAY_MAC, true]);
    }
  });

  test('Red cannot reach Blue through the gateway; nothing unsolicited enters a NAT domain', () => {
    const blueOut = pingOut('blue', 11)!;
    const hairpin = drops()['gw-hairpin'] ?? 0;
    for (const dst of [src6(blueOut), 'fd99::b', 'fd99:0:b::11']) {
      clear();
      ext.inject('red', echo6(ICMPV6_ECHO_REQUEST, vm('red').mac, ROUTER, vm('red').ip, dst, 12));
      assert.deepEqual(receivers(), [], `Red → ${dst}`);
    }
    assert.equal(drops()['gw-hairpin'], hairpin + 3);
    // From the datacenter: a VM address nothing was sent from, and Blue's from another remote address.
    const refused = drops()['gw-no-translation'] ?? 0;
    clear();
    dc.inject('host', echo6(ICMPV6_ECHO_REQUEST, HOST_MAC, DC_MAC, HOST, 'fd99:0:b::aa', 13));
    dc.inject('host', echo6(ICMPV6_ECHO_REQUEST, HOST_MAC, DC_MAC, 'fd99::77', src6(blueOut), 13));
    assert.deepEqual(receivers(), []);
    assert.equal(drops()['gw-no-translation'], refused + 2);
    // The reply's permission expires with the idle time.
    clock.advance(121_000);
    dc.inject('host', echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, src6(blueOut), 11));
    assert.deepEqual(receivers(), [], 'after the idle time');
  });

  test('a Blue VM on host B gets out through A\'s gateway and its reply back over NVGRE', async () => {
    clear();
    extB.inject('blueB', echo6(ICMPV6_ECHO_REQUEST, vm('blueB').mac, ROUTER, vm('blueB').ip, HOST, 21));
    await until(() => atHost().length > 0);
    const out = atHost()[0]!;
    assert.ok(src6(out).startsWith('fd99:0:b:'));
    clear();
    dc.inject('host', echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, src6(out), 21));
    await until(() => got.get('blueB')!.length > 0);
    assert.deepEqual([src6(got.get('blueB')![0]!), dst6(got.get('blueB')![0]!), checksumOk(got.get('blueB')![0]!)], [HOST, 'fd00:b::11', true]);
  });

  test('forwarding mode: Green goes out and comes in unchanged', () => {
    const out = pingOut('green', 31)!;
    assert.deepEqual([src6(out), dst6(out), checksumOk(out)], ['fd00:9::10', HOST, true]);
    clear();
    dc.inject('host', echo6(ICMPV6_ECHO_REQUEST, HOST_MAC, DC_MAC, HOST, 'fd00:9::10', 32));
    assert.deepEqual(receivers(), ['green'], 'routed in: the datacenter routes Green\'s prefix to the gateway');
    const cross = drops()['gw-cross-domain'] ?? 0;
    clear();
    ext.inject('blue', echo6(ICMPV6_ECHO_REQUEST, vm('blue').mac, ROUTER, vm('blue').ip, 'fd00:9::10', 33));
    assert.deepEqual(receivers(), []);
    assert.equal(drops()['gw-cross-domain'], cross + 1, 'Blue toward Green\'s prefix');
  });

  test('5,000 mutated IPv6 frames on both sides never throw, and Blue still gets out and back afterwards', () => {
    const r = seededRandom(6);
    const at = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
    const blueOut = src6(pingOut('blue', 51)!);
    const target = parseIpv6Address('fd99::b');
    const seeds = [
      () => echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, blueOut, 51), () => echo6(ICMPV6_ECHO_REQUEST, HOST_MAC, DC_MAC, HOST, 'fd00:9::10', at(0, 65536)),
      () => ipv6Frame(HOST_MAC, formatMac(ipv6MulticastMac(solicitedNodeMulticast(target))), HOST, formatIpv6(solicitedNodeMulticast(target)),
        buildNeighborSolicitation({ target, options: [{ type: 1, mac: parseMac(HOST_MAC) }] }), 255),
      () => echo6(ICMPV6_ECHO_REQUEST, vm('blue').mac, ROUTER, vm('blue').ip, HOST, at(0, 65536)), () => echo6(ICMPV6_ECHO_REQUEST, vm('red').mac, ROUTER, vm('red').ip, HOST, at(0, 65536)),
    ];
    for (let i = 0; i < 5000; i++) {
      const k = at(0, seeds.length), f = seeds[k]!();
      const b = r() < 0.3 ? f.subarray(0, at(14, f.length)) : f;
      for (let n = at(1, 4); n > 0; n--) b[at(14, b.length)]! ^= 1 << at(0, 8); // header, addresses, ND target and options, lengths, checksums
      if (k < 3) dc.inject('host', b); else ext.inject(k === 3 ? 'blue' : 'red', b);
    }
    clock.advance(7_500_000); // whatever the mutants opened expires
    gw.sweep();
    const out = pingOut('blue', 52)!;
    clear();
    dc.inject('host', echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, src6(out), 52));
    assert.deepEqual(receivers(), ['blue']);
  });

  test('hop limit: Time Exceeded from the gateway, to the VM from its CA and to the datacenter host from the external address', () => {
    clear();
    // Hop limit 2: the router takes one, the gateway finds 1.
    ext.inject('blue', ipv6Frame(vm('blue').mac, ROUTER, vm('blue').ip, HOST, buildIcmpv6Echo({ type: 128, id: 61, seq: 1, data: new Uint8Array(8) }), 2));
    assert.deepEqual(receivers(), ['blue']);
    const te = got.get('blue')![0]!;
    assert.deepEqual([parseFrame(te).icmpType, src6(te), dst6(te), checksumOk(te)], [ICMPV6_TIME_EXCEEDED, GW6[5001], 'fd00:b::10', true]);
    clear();
    dc.inject('host', ipv6Frame(HOST_MAC, DC_MAC, HOST, 'fd00:9::10', buildIcmpv6Echo({ type: 128, id: 62, seq: 1, data: new Uint8Array(8) }), 1));
    const back = atHost()[0]!;
    assert.deepEqual([parseFrame(back).icmpType, src6(back), dst6(back), parseFrame(back).dst, checksumOk(back)], [ICMPV6_TIME_EXCEEDED, 'fd99::9', HOST, macToNumber(parseMac(HOST_MAC)), true]);
  });

  test('Packet Too Big: to the VM for the datacenter MTU, to the host for the customer MTU, and the datacenter\'s translated back to the VM', () => {
    // Blue's datacenter MTU is 1280: a 1300-byte packet gets Packet Too Big from the gateway's CA, routed to the VM.
    clear();
    ext.inject('blue', echo6(ICMPV6_ECHO_REQUEST, vm('blue').mac, ROUTER, vm('blue').ip, HOST, 41, 1300 - 48));
    assert.deepEqual(receivers(), ['blue']);
    const ptb = got.get('blue')![0]!;
    assert.deepEqual([parseFrame(ptb).icmpType, src6(ptb), dst6(ptb), (ptb[58]! << 24 | ptb[59]! << 16 | ptb[60]! << 8 | ptb[61]!) >>> 0, checksumOk(ptb)],
      [ICMPV6_PACKET_TOO_BIG, GW6[5001], 'fd00:b::10', BLUE_MTU, true]);
    // From the host, bigger than the customer MTU: Packet Too Big with 1458 from the external address.
    const out = pingOut('blue', 42)!;
    clear();
    dc.inject('host', echo6(ICMPV6_ECHO_REPLY, HOST_MAC, DC_MAC, HOST, src6(out), 42, CUSTOMER_MTU + 10 - 48));
    const back = atHost()[0]!;
    assert.deepEqual([parseFrame(back).icmpType, src6(back), dst6(back), (back[58]! << 24 | back[59]! << 16 | back[60]! << 8 | back[61]!) >>> 0, checksumOk(back)],
      [ICMPV6_PACKET_TOO_BIG, 'fd99::b', HOST, CUSTOMER_MTU, true]);
    // A datacenter router's Packet Too Big about Blue's translated packet: the quoted source becomes Blue's own again.
    clear();
    const quoted = out.subarray(14);
    const err = buildIcmpv6Error({ type: ICMPV6_PACKET_TOO_BIG, code: 0, word: 1280, invoking: quoted });
    dc.inject('host', ipv6Frame(HOST_MAC, DC_MAC, HOST, src6(out), err));
    assert.deepEqual(receivers(), ['blue']);
    const inPtb = got.get('blue')![0]!;
    assert.deepEqual([parseFrame(inPtb).icmpType, dst6(inPtb), formatIpv6(inPtb, 54 + 8 + 8), checksumOk(inPtb)], [ICMPV6_PACKET_TOO_BIG, 'fd00:b::10', 'fd00:b::10', true]);
    assert.ok((drops()['gw-too-big'] ?? 0) >= 2);
  });
});

