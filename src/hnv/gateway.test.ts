// The multitenant gateway between a real External switch running vmhost.hnv (tenant side, host
// A; its uplink the UDP tunnel to host B's External switch, the provider network) and a real
// Internal switch (the "datacenter") whose host vNIC is an in-process port answering ARP: Blue (RDID
// with VSIDs 5001, 5002) and Red (6001) both have VM 10.0.0.10 and a default customer route to
// the gateway's CA 10.0.0.254; both are NATed to the one external address 192.168.200.10;
// Green (7001, 10.5.0.0/24) is served in forwarding mode.
// Proves: Blue's ping leaves NATed (checksums right) and the reply reaches Blue's VM only; Red
// with the same CA and echo id gets its own translation; Red cannot reach Blue through the
// gateway (another domain's prefix, the external address, an unsolicited packet from the
// datacenter: refused and counted); a Blue VM on host B reaches the datacenter through A's
// gateway over NVGRE and gets its reply (B accepts it from the gateway's PA); UDP and TCP flows
// translated both ways; forwarding mode routes Green unchanged both ways; 5,000 mutated frames
// never throw; entries expire on the gateway's clock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../common/prng.ts';
import {
  ARP_REQUEST, ETHERTYPE_ARP, IPPROTO_ICMP, buildIcmpv4Echo, buildIpv4, formatIpv4, internetChecksum, l4Checksum, macToNumber,
  parseFrame, parseIpv4Address, parseMac,
} from '../packet/index.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { Clock, arp, eth, tcp, udp, until } from '../switch/test-support.ts';
import { GATEWAY_MAC, type HnvGateway } from './index.ts';
import { gatewayBed, type GatewayBed } from './gateway-test-bed.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}', RED = '{22222222-0000-0000-0000-000000000002}', GREEN = '{33333333-0000-0000-0000-000000000003}';
const PA_A = '192.168.100.1', PA_B = '192.168.100.2';
const GW_CA = '10.0.0.254', GREEN_GW_CA = '10.5.0.254', EXTERNAL = '192.168.200.10', GREEN_EXTERNAL = '192.168.200.20', HOST = '192.168.200.1';
const HOST_MAC = '52:54:00:c8:00:01', DC_MAC = '02:15:5d:fe:00:00';
const ROUTER = '02:15:5d:ff:ff:01';
const TCP_SYN = 0x02, TCP_ACK = 0x10, TCP_RST = 0x04;

interface Vm { port: string; host: 'a' | 'b'; vsid: number; ip: string; mac: string }
const VMS: Vm[] = [
  { port: 'blue', host: 'a', vsid: 5001, ip: '10.0.0.10', mac: '52:54:00:05:00:0a' },
  { port: 'blue2', host: 'a', vsid: 5002, ip: '10.0.1.10', mac: '52:54:00:05:01:0a' },
  { port: 'red', host: 'a', vsid: 6001, ip: '10.0.0.10', mac: '52:54:00:06:00:0a' },
  { port: 'blueB', host: 'b', vsid: 5001, ip: '10.0.0.11', mac: '52:54:00:05:00:0b' },
  { port: 'green', host: 'a', vsid: 7001, ip: '10.5.0.10', mac: '52:54:00:07:00:0a' },
];
const vm = (port: string): Vm => VMS.find((v) => v.port === port)!;
const GW_MAC: Record<number, string> = { 5001: '02:15:5d:fe:00:01', 6001: '02:15:5d:fe:00:02', 7001: '02:15:5d:fe:00:03' };
/** The served domains: Blue and Red NATed to one external address, Green forwarded (routed unchanged). */
const DOMAINS = [
  { routingDomainId: BLUE, mode: 'Nat', virtualSubnetId: 5001, customerAddress: GW_CA, macAddress: GW_MAC[5001]!, externalAddress: EXTERNAL },
  { routingDomainId: RED, mode: 'Nat', virtualSubnetId: 6001, customerAddress: GW_CA, macAddress: GW_MAC[6001]!, externalAddress: EXTERNAL },
  { routingDomainId: GREEN, mode: 'Forwarding', virtualSubnetId: 7001, customerAddress: GREEN_GW_CA, macAddress: GW_MAC[7001]!, externalAddress: GREEN_EXTERNAL },
] as const;

function policy(pa: string): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: pa, InterfaceIndex: 1, PrefixLength: 24 }));
  const routes = [[BLUE, 5001, '10.0.0.0/24', '0.0.0.0'], [BLUE, 5002, '10.0.1.0/24', '0.0.0.0'], [BLUE, 5001, '0.0.0.0/0', GW_CA], [BLUE, 5002, '0.0.0.0/0', GW_CA],
    [RED, 6001, '10.0.0.0/24', '0.0.0.0'], [RED, 6001, '0.0.0.0/0', GW_CA], [GREEN, 7001, '10.5.0.0/24', '0.0.0.0'], [GREEN, 7001, '0.0.0.0/0', GREEN_GW_CA]] as const;
  for (const [rdid, vsid, prefix, hop] of routes) p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: hop }));
  for (const v of VMS) p = addLookupRecord(p, lookupRecord({ CustomerAddress: v.ip, VirtualSubnetID: v.vsid, MACAddress: v.mac, ProviderAddress: v.host === 'a' ? PA_A : PA_B, Rule: 'TranslationMethodEncap' }));
  for (const d of DOMAINS) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: d.customerAddress, VirtualSubnetID: d.virtualSubnetId, MACAddress: d.macAddress, ProviderAddress: PA_A, Rule: 'TranslationMethodEncap', VMName: 'vmhost-gateway' }));
  }
  return p;
}


function echo(type: 0 | 8, srcMac: string, dstMac: string, src: string, dst: string, id: number, ttl = 64): Uint8Array {
  const s = parseIpv4Address(src), d = parseIpv4Address(dst);
  const payload = buildIpv4({ src: s, dst: d, protocol: IPPROTO_ICMP, ttl, payload: buildIcmpv4Echo({ type, id, seq: 1, data: new Uint8Array(32) }) });
  return eth(srcMac, dstMac, { ethertype: 0x0800, payload });
}

/** IPv4 header checksum and the L4 checksum (ICMP plain, TCP/UDP with the pseudo-header) both verify. */
function checksumsOk(f: Uint8Array): boolean {
  const ihl = (f[14]! & 0x0f) * 4, total = (f[16]! << 8) | f[17]!, proto = f[23]!;
  const l4 = 14 + ihl, len = total - ihl;
  if (internetChecksum(f, 14, ihl) !== 0) return false;
  if (proto === IPPROTO_ICMP) return internetChecksum(f, l4, len) === 0;
  return l4Checksum(f, l4, len, f.subarray(26, 30), f.subarray(30, 34), proto) === 0;
}

const icmpId = (f: Uint8Array): number => (f[38]! << 8) | f[39]!;

describe('the multitenant gateway: NAT from two routing domains with one CA onto the datacenter switch', () => {
  const clock = new Clock();
  let bed: GatewayBed, got: Map<string, Uint8Array[]>, ext: VirtualSwitch, extB: VirtualSwitch, dc: VirtualSwitch, gw: HnvGateway;

  before(async () => {
    // The host's vNIC answers ARP for its address and records the rest.
    bed = await gatewayBed({
      vms: VMS, hostMac: HOST_MAC, datacenterMac: DC_MAC, policies: [policy(PA_A), policy(PA_B)], domains: DOMAINS, now: clock.now,
      answer: (sw, _f, i) => {
        if (i.ethertype !== ETHERTYPE_ARP) return true;
        if (i.arpOp === ARP_REQUEST && formatIpv4(i.arpTpa) === HOST) sw.inject('host', arp('reply', HOST_MAC, HOST, formatIpv4(i.arpSpa), { dst: DC_MAC, tha: DC_MAC }));
        return false;
      },
    });
    ({ got, ext, extB, dc, gw } = bed);
  });
  after(async () => { await bed?.close(); });

  const clear = (): void => bed.clear();
  const receivers = (): string[] => bed.receivers();
  const drops = (): Record<string, number> => bed.drops();
  /** The VM pings HOST through its default gateway (the router's MAC); returns what the host got. */
  const pingOut = (from: string, id: number): Uint8Array => {
    clear();
    ext.inject(from, echo(8, vm(from).mac, ROUTER, vm(from).ip, HOST, id));
    assert.deepEqual(receivers(), ['host']);
    return got.get('host')![0]!;
  };
  const replyIn = (to: Uint8Array): void => {
    clear();
    dc.inject('host', echo(0, HOST_MAC, DC_MAC, HOST, EXTERNAL, icmpId(to)));
  };

  test("Blue's ping leaves NATed on the datacenter switch; the reply reaches Blue's VM only", () => {
    const out = pingOut('blue', 7);
    const o = parseFrame(out);
    assert.deepEqual([formatIpv4(o.ipSrc), formatIpv4(o.ipDst), o.src, o.dst, o.ttl], [EXTERNAL, HOST, macToNumber(parseMac(DC_MAC)), macToNumber(parseMac(HOST_MAC)), 62]);
    assert.ok(checksumsOk(out), 'IP and ICMP checksums updated');
    replyIn(out);
    assert.deepEqual(receivers(), ['blue']);
    const r = parseFrame(got.get('blue')![0]!);
    assert.deepEqual([formatIpv4(r.ipSrc), formatIpv4(r.ipDst), icmpId(got.get('blue')![0]!), r.icmpType, r.src], [HOST, vm('blue').ip, 7, 0, GATEWAY_MAC]);
    assert.ok(checksumsOk(got.get('blue')![0]!));
  });

  test('Red, with the same CA and echo id, gets its own translation; each reply goes to its own tenant', () => {
    const blue = pingOut('blue', 9), red = pingOut('red', 9);
    assert.equal(formatIpv4(parseFrame(red).ipSrc), EXTERNAL);
    assert.notEqual(icmpId(red), icmpId(blue), 'one external address, two echo ids');
    replyIn(red);
    assert.deepEqual(receivers(), ['red']);
    replyIn(blue);
    assert.deepEqual(receivers(), ['blue']);
    const t = (gw.status() as { translations: { routingDomainId: string; customer: string }[] }).translations;
    assert.ok(t.some((e) => e.routingDomainId === BLUE && e.customer === '10.0.0.10:9') && t.some((e) => e.routingDomainId === RED && e.customer === '10.0.0.10:9'));
  });

  test('Red cannot reach Blue through the gateway; nothing unsolicited enters from the datacenter', () => {
    clear();
    const before = { ...drops() };
    // Blue's other subnet: out to the datacenter (NATed, the address might be the datacenter's), where nobody has it.
    ext.inject('red', echo(8, vm('red').mac, ROUTER, vm('red').ip, vm('blue2').ip, 1));
    ext.inject('red', echo(8, vm('red').mac, ROUTER, vm('red').ip, EXTERNAL, 1)); // where Blue's flows are NATed
    ext.inject('red', echo(8, vm('red').mac, ROUTER, vm('red').ip, vm('green').ip, 1)); // a forwarding-mode domain's CA
    dc.inject('host', echo(8, HOST_MAC, DC_MAC, HOST, EXTERNAL, 1)); // no flow opened it
    dc.inject('host', echo(0, HOST_MAC, DC_MAC, HOST, EXTERNAL, 60000)); // a reply no entry names
    dc.inject('host', echo(8, HOST_MAC, DC_MAC, HOST, vm('blue2').ip, 1)); // Blue's CA: Blue is NATed, not forwarded
    assert.deepEqual(receivers(), []);
    const d = drops();
    const delta = (k: string): number => (d[k] ?? 0) - (before[k] ?? 0);
    assert.deepEqual([delta('gw-cross-domain'), delta('gw-hairpin'), delta('gw-no-translation'), delta('gw-no-route')], [1, 1, 2, 1]);
    clock.advance(1001);
    gw.sweep();
    assert.equal(drops()['gw-arp-unresolved'], 1, "Red's packet to 10.0.1.10 waited for an ARP answer nobody gave");
  });

  test('a Blue VM on host B reaches the datacenter through the gateway on A over NVGRE, and the reply comes back to it', async () => {
    clear();
    extB.inject('blueB', echo(8, vm('blueB').mac, ROUTER, vm('blueB').ip, HOST, 21));
    await until(() => got.get('host')!.length > 0);
    const out = got.get('host')![0]!;
    assert.equal(formatIpv4(parseFrame(out).ipSrc), EXTERNAL);
    replyIn(out);
    await until(() => got.get('blueB')!.length > 0);
    assert.deepEqual(receivers(), ['blueB'], "B's router sent it to the gateway's PA; A's router routed the reply to B, which accepted it from the gateway's PA");
    assert.equal(formatIpv4(parseFrame(got.get('blueB')![0]!).ipSrc), HOST);
  });

  test('UDP and TCP flows are translated both ways with their checksums; a RST closes the TCP entry', () => {
    clear();
    const host = (f: Uint8Array): ReturnType<typeof parseFrame> => parseFrame(f);
    ext.inject('blue2', udp(vm('blue2').mac, ROUTER, vm('blue2').ip, HOST, 5353, 53, new Uint8Array(40).fill(7)));
    const u = got.get('host')![0]!;
    const uo = host(u);
    assert.deepEqual([formatIpv4(uo.ipSrc), uo.dstPort], [EXTERNAL, 53]);
    assert.ok(checksumsOk(u), 'UDP checksum follows the address and port change');
    clear();
    dc.inject('host', udp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 53, uo.srcPort, new Uint8Array(40).fill(8)));
    assert.deepEqual(receivers(), ['blue2'], "Blue's second subnet, reached by the router behind the gateway");
    const ui = host(got.get('blue2')![0]!);
    assert.deepEqual([formatIpv4(ui.ipDst), ui.dstPort, ui.srcPort], [vm('blue2').ip, 5353, 53]);
    assert.ok(checksumsOk(got.get('blue2')![0]!));

    clear();
    ext.inject('blue', tcp(vm('blue').mac, ROUTER, vm('blue').ip, HOST, 40000, 22, TCP_SYN));
    const t = got.get('host')![0]!;
    const to = host(t);
    assert.ok(checksumsOk(t) && formatIpv4(to.ipSrc) === EXTERNAL);
    clear();
    dc.inject('host', tcp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 22, to.srcPort, TCP_SYN | TCP_ACK));
    assert.deepEqual(receivers(), ['blue']);
    const ti = host(got.get('blue')![0]!);
    assert.deepEqual([ti.dstPort, ti.tcpFlags], [40000, TCP_SYN | TCP_ACK]);
    assert.ok(checksumsOk(got.get('blue')![0]!));
    ext.inject('blue', tcp(vm('blue').mac, ROUTER, vm('blue').ip, HOST, 40000, 22, TCP_RST));
    clock.advance(241_000);
    clear();
    dc.inject('host', tcp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 22, to.srcPort, TCP_ACK));
    assert.deepEqual(receivers(), [], 'a reset flow lasts 4 minutes, not 2 hours');
  });

  test('forwarding mode: Green goes out unchanged and the datacenter reaches it by its CA; NAT domains stay closed', () => {
    const out = pingOut('green', 5);
    const o = parseFrame(out);
    assert.deepEqual([formatIpv4(o.ipSrc), icmpId(out), o.ttl], [vm('green').ip, 5, 62]);
    clear();
    dc.inject('host', echo(0, HOST_MAC, DC_MAC, HOST, vm('green').ip, 5));
    dc.inject('host', echo(8, HOST_MAC, DC_MAC, HOST, vm('green').ip, 6)); // routed, not translated: no flow needed
    assert.deepEqual(receivers(), ['green']);
    assert.equal(got.get('green')!.length, 2);
    clear();
    const before = drops()['gw-cross-domain'] ?? 0;
    ext.inject('blue', echo(8, vm('blue').mac, ROUTER, vm('blue').ip, vm('green').ip, 1));
    ext.inject('green', echo(8, vm('green').mac, ROUTER, vm('green').ip, vm('blue2').ip, 1)); // out, NATed Blue never sees it
    assert.deepEqual(receivers(), [], 'Green and Blue do not meet through the gateway either way');
    assert.equal(drops()['gw-cross-domain'], before + 1);
  });

  test('5,000 mutated frames on both sides never throw, and the gateway still translates afterwards', () => {
    const r = seededRandom(15);
    const at = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
    const seeds = [
      () => echo(0, HOST_MAC, DC_MAC, HOST, EXTERNAL, at(1024, 1100)), () => udp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 53, at(1024, 1100)),
      () => tcp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 22, at(1024, 1100), TCP_ACK), () => echo(8, vm('blue').mac, ROUTER, vm('blue').ip, HOST, at(0, 65536)),
      () => udp(vm('red').mac, ROUTER, vm('red').ip, HOST, at(0, 65536), 53),
    ];
    for (let i = 0; i < 5000; i++) {
      const k = at(0, seeds.length), f = seeds[k]!();
      const b = r() < 0.3 ? f.subarray(0, at(14, f.length)) : f;
      for (let n = at(1, 4); n > 0; n--) b[at(14, b.length)]! ^= 1 << at(0, 8); // IP header, ports, ICMP type/id, lengths, checksums
      if (k < 3) dc.inject('host', b); else ext.inject(k === 3 ? 'blue' : 'red', b);
    }
    clock.advance(7_500_000); // whatever the mutants opened expires
    gw.sweep();
    const out = pingOut('blue', 33);
    replyIn(out);
    assert.deepEqual(receivers(), ['blue']);
  });

  test('idle entries expire: ICMP after 60 s, UDP after 120 s', () => {
    const ping = pingOut('blue', 11);
    clear();
    ext.inject('blue', udp(vm('blue').mac, ROUTER, vm('blue').ip, HOST, 6000, 53));
    const u = parseFrame(got.get('host')![0]!);
    clock.advance(61_000);
    replyIn(ping);
    assert.deepEqual(receivers(), [], 'the echo entry is gone');
    dc.inject('host', udp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 53, u.srcPort));
    assert.deepEqual(receivers(), ['blue'], 'the UDP entry is not');
    clock.advance(121_000);
    assert.ok(gw.sweep() >= 1);
    const left = (gw.status() as { translations: unknown[] }).translations;
    assert.deepEqual(left, []);
    clear();
    dc.inject('host', udp(HOST_MAC, DC_MAC, HOST, EXTERNAL, 53, u.srcPort));
    assert.deepEqual(receivers(), []);
  });
});
