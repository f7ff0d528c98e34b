// IPv6 customer addresses through the NVGRE data path, between two real switches joined by the
// UDP provider network (as datapath.test.ts), every frame built and read back with the packet
// parsers: a Neighbor Solicitation for a CA is answered from its lookup record (a valid NA,
// checksum and all, nothing on the provider side), the subnet's gateway ::1 with the Router
// flag, a VM's own address (and a DAD probe from ::) with nothing; an unknown CA is dropped and
// counted; an echo request to a CA on the other host is encapsulated and delivered there
// unchanged; one to GATEWAY_MAC is routed to the other subnet of the routing domain, on this
// host and across hosts, with the hop limit one less, and refused without a route, without a
// record or with hop limit 1, each counted and answered with the ICMPv6 error; a Router
// Solicitation gets the router's RA on the VM's own port, a VM's RA is dropped (never reaches
// the subnet), an echo to the gateway is answered, a packet too big to encapsulate gets Packet
// Too Big with the customer MTU.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ETHERTYPE_IPV6, ICMPV6_ECHO_REPLY, IPPROTO_ICMPV6, ND_NEIGHBOR_ADVERT, ND_ROUTER_ADVERT, buildEthernet, buildIcmpv6Echo, buildIpv6, buildNeighborSolicitation,
  buildRouterAdvertisement, buildRouterSolicitation, formatIpv6,
  icmpv6ChecksumOk, macToNumber, parseFrame, parseIpv6Address, parseMac, setIcmpv6Checksum,
} from '../packet/index.ts';
import { VirtualSwitch, UPLINK_PORT_ID } from '../switch/index.ts';
import { udpJoinedSwitches, until } from '../switch/test-support.ts';
import { CUSTOMER_MTU, GATEWAY_MAC, HNV_EXTENSION, type HnvExtensionConfig } from './index.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}';
const PA_A = '192.168.100.1', PA_B = '192.168.100.2';
const GW = '02:15:5d:ff:ff:01';

interface Vm { port: string; host: 'a' | 'b'; vsid: number; ip: string; mac: string }
const VMS: Vm[] = [
  { port: 'blueA', host: 'a', vsid: 5001, ip: 'fd00:b::10', mac: '52:54:00:05:00:0a' },
  { port: 'blueB', host: 'b', vsid: 5001, ip: 'fd00:b::11', mac: '52:54:00:05:00:0b' },
  { port: 'blueA2', host: 'a', vsid: 5002, ip: 'fd00:b:1::10', mac: '52:54:00:05:01:0a' },
];
const vm = (port: string): Vm => VMS.find((v) => v.port === port)!;

function policyOf(pa: string): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: pa, InterfaceIndex: 1, PrefixLength: 24 }));
  for (const [vsid, prefix] of [[5001, 'fd00:b::/64'], [5002, 'fd00:b:1::/64']] as const) {
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: '::' }));
  }
  for (const v of VMS) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: v.ip, VirtualSubnetID: v.vsid, MACAddress: v.mac, ProviderAddress: v.host === 'a' ? PA_A : PA_B, Rule: 'TranslationMethodEncap' }));
  }
  return p;
}

function ipv6Frame(srcMac: string, dstMac: string, src: string, dst: string, icmp: Uint8Array, hopLimit = 64): Uint8Array {
  const s = parseIpv6Address(src), d = parseIpv6Address(dst);
  setIcmpv6Checksum(icmp, s, d);
  return buildEthernet({ src: parseMac(srcMac), dst: parseMac(dstMac), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_ICMPV6, hopLimit, payload: icmp }) });
}

/** An NS from `from` for `target`, to its solicited-node multicast group (source :: for a DAD probe). */
function solicit(from: Vm, target: string, src = from.ip): Uint8Array {
  const t = parseIpv6Address(target);
  const group = `ff02::1:ff${t[13]!.toString(16).padStart(2, '0')}:${((t[14]! << 8) | t[15]!).toString(16)}`;
  const mcast = `33:33:ff:${[t[13]!, t[14]!, t[15]!].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
  return ipv6Frame(from.mac, mcast, src, group, buildNeighborSolicitation({ target: t, options: src === '::' ? [] : [{ type: 1, mac: parseMac(from.mac) }] }), 255);
}

const echo = (from: Vm, dstMac: string, dst: string, hopLimit = 64): Uint8Array =>
  ipv6Frame(from.mac, dstMac, from.ip, dst, buildIcmpv6Echo({ type: 128, id: 7, seq: 1, data: new Uint8Array(32) }), hopLimit);

describe('IPv6 customer addresses over NVGRE', () => {
  const got = new Map<string, Uint8Array[]>();
  const sw = {} as Record<'a' | 'b', VirtualSwitch>;

  before(async () => {
    [sw.a, sw.b] = await udpJoinedSwitches();
    for (const v of VMS) {
      got.set(v.port, []);
      await sw[v.host].addPort({ id: v.port, policy: { mac: v.mac, virtualSubnetId: v.vsid }, sink: (f) => got.get(v.port)!.push(Uint8Array.prototype.slice.call(f)) });
    }
    for (const [h, pa] of [['a', PA_A], ['b', PA_B]] as const) {
      const config: HnvExtensionConfig = { policy: policyOf(pa) };
      sw[h].addExtension(HNV_EXTENSION, { config: config as unknown as Record<string, unknown> });
    }
  });
  after(async () => { await Promise.all([sw.a?.close(), sw.b?.close()]); });

  const clear = (): void => { for (const k of got.keys()) got.set(k, []); };
  const receivers = (): string[] => [...got].filter(([, f]) => f.length > 0).map(([k]) => k).sort();
  const send = (from: string, frame: Uint8Array): void => sw[vm(from).host].inject(from, frame);
  const drops = (host: 'a' | 'b', port: string): Record<string, number> => sw[host].portStats(port).drops;

  test('Neighbor Solicitation answered from the records: a CA, the gateway ::1 (Router flag); none for its own address or a DAD probe; no record, dropped', () => {
    clear();
    const uplinkBefore = sw.a.portStats(UPLINK_PORT_ID).txFrames;
    const a = vm('blueA');
    for (const [target, mac, router] of [[vm('blueB').ip, vm('blueB').mac, false], ['fd00:b::1', GW, true]] as const) {
      send('blueA', solicit(a, target));
      const out = got.get('blueA')!.pop()!;
      const f = parseFrame(out);
      assert.ok(f.ok, String(f.reason));
      assert.deepEqual([f.ethertype, f.icmpType, f.dst, f.src], [ETHERTYPE_IPV6, ND_NEIGHBOR_ADVERT, macToNumber(parseMac(a.mac)), macToNumber(parseMac(mac))]);
      assert.equal(formatIpv6(out, f.ndTargetOffset), target);
      assert.equal(formatIpv6(out, f.ipSrcOffset), target);
      assert.equal(formatIpv6(out, f.ipDstOffset), a.ip);
      assert.equal(out[14 + 7], 255, 'hop limit 255');
      assert.equal(f.ndTargetLinkAddr, macToNumber(parseMac(mac)), 'target link-layer address option');
      assert.equal((out[14 + 40 + 4]! & 0x80) !== 0, router, 'Router flag only for the gateway');
      assert.ok(icmpv6ChecksumOk(out, 54, out.length - 54, out.subarray(22, 38), out.subarray(38, 54)));
    }
    send('blueA', solicit(a, a.ip));
    send('blueA', solicit(a, vm('blueB').ip, '::'));
    assert.deepEqual(receivers(), []);
    send('blueA', solicit(a, 'fd00:b::99'));
    assert.deepEqual(receivers(), []);
    assert.equal(drops('a', 'blueA')['hnv-no-lookup-record'], 1);
    assert.equal(sw.a.portStats(UPLINK_PORT_ID).txFrames, uplinkBefore, 'no NS crossed to the provider network');
  });

  test('echo to a CA on the other host: encapsulated, delivered unchanged there', async () => {
    clear();
    const frame = echo(vm('blueA'), vm('blueB').mac, vm('blueB').ip);
    send('blueA', frame);
    await until(() => got.get('blueB')!.length > 0);
    assert.deepEqual(receivers(), ['blueB']);
    assert.deepEqual([...got.get('blueB')![0]!], [...frame]);
  });

  test('the router: 5001 → 5002 on one host and across hosts, hop limit one less; no route, no record, hop limit 1: counted', async () => {
    clear();
    send('blueA', echo(vm('blueA'), GW, vm('blueA2').ip));
    assert.deepEqual(receivers(), ['blueA2']);
    const r = parseFrame(got.get('blueA2')![0]!);
    assert.deepEqual([r.src, r.dst, r.ttl, formatIpv6(got.get('blueA2')![0]!, r.ipDstOffset)], [GATEWAY_MAC, macToNumber(parseMac(vm('blueA2').mac)), 63, vm('blueA2').ip]);
    clear();
    send('blueB', echo(vm('blueB'), GW, vm('blueA2').ip));
    await until(() => got.get('blueA2')!.length > 0);
    assert.deepEqual(receivers(), ['blueA2'], 'routed on B, carried in 5002, accepted on A by the source CA in the routing domain');
    clear();
    send('blueA', echo(vm('blueA'), GW, 'fd00:9::1'));
    send('blueA', echo(vm('blueA'), GW, 'fd00:b:1::99'));
    send('blueA', echo(vm('blueA'), GW, vm('blueA2').ip, 1));
    assert.deepEqual(receivers(), ['blueA'], 'only the ICMPv6 errors, back to the sender');
    const errors = got.get('blueA')!.map((f) => { const e = parseFrame(f); return [formatIpv6(f, e.ipSrcOffset), e.icmpType, e.icmpCode]; });
    assert.deepEqual(errors, [['fd00:b::1', 1, 0], ['fd00:b::1', 1, 3], ['fd00:b::1', 3, 0]], 'no route, address unreachable, time exceeded');
    const d = drops('a', 'blueA');
    assert.deepEqual([d['hnv-no-route'], d['hnv-no-lookup-record'], d['hnv-ttl-expired']], [1, 2, 1]);
  });

  test('Router Solicitation → RA on the VM\'s port only; a VM\'s RA dropped; echo to the gateway; Packet Too Big', async () => {
    clear();
    const a = vm('blueA');
    const uplinkBefore = sw.a.portStats(UPLINK_PORT_ID).txFrames;
    send('blueA', ipv6Frame(a.mac, '33:33:00:00:00:02', 'fe80::5054:ff:fe05:a', 'ff02::2', buildRouterSolicitation({ options: [{ type: 1, mac: parseMac(a.mac) }] }), 255));
    assert.deepEqual(receivers(), ['blueA']);
    const ra = parseFrame(got.get('blueA')![0]!);
    assert.deepEqual([ra.icmpType, ra.src, formatIpv6(got.get('blueA')![0]!, ra.ipSrcOffset)], [ND_ROUTER_ADVERT, GATEWAY_MAC, 'fe80::15:5dff:feff:ff01']);
    clear();
    send('blueA', ipv6Frame(a.mac, '33:33:00:00:00:01', 'fe80::5054:ff:fe05:a', 'ff02::1', buildRouterAdvertisement({}), 255));
    assert.deepEqual(receivers(), [], 'a VM\'s RA reaches nobody');
    assert.equal(drops('a', 'blueA')['hnv-router-guard'], 1);
    assert.equal(sw.a.portStats(UPLINK_PORT_ID).txFrames, uplinkBefore, 'nor the provider network');
    send('blueA', echo(a, GW, 'fd00:b::1'));
    assert.deepEqual([parseFrame(got.get('blueA')![0]!).icmpType, receivers()], [ICMPV6_ECHO_REPLY, ['blueA']]);
    clear();
    const big = ipv6Frame(a.mac, vm('blueB').mac, a.ip, vm('blueB').ip, buildIcmpv6Echo({ type: 128, id: 7, seq: 2, data: new Uint8Array(1450) }));
    send('blueA', big);
    assert.deepEqual(receivers(), ['blueA']);
    const ptb = got.get('blueA')![0]!;
    const m = parseFrame(ptb);
    assert.deepEqual([m.icmpType, (ptb[58]! << 24 | ptb[59]! << 16 | ptb[60]! << 8 | ptb[61]!), drops('a', 'blueA')['nvgre-mtu']], [2, CUSTOMER_MTU, 1]);
  });
});
