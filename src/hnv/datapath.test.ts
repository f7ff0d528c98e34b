// The NVGRE data path and distributed router between two real switches in this process whose
// External uplinks are the UDP tunnel on 127.0.0.1 (the provider network), VMs as in-process
// ports: tenants Blue (VSID 5001, plus 5002 in the same routing domain) and Red (6001) share
// 10.0.0.0/24 and even a MAC; each reaches only its own VMs across hosts; ARP is answered from
// the lookup records without a frame on the uplink; the gateway routes Blue 5001 → 5002 on one
// host and across hosts; refusals (no record, no route, PA mismatch, unknown VSID, MTU) are
// counted by reason, and no route / TTL run out answered with ICMP errors to the sender; the uplink capture decodes in tshark as GRE with key 5001 << 8 | FlowID.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeNvgre, encodeNvgre, formatIpv4, internetChecksum, macToNumber, parseFrame, parseIpv4Address, parseMac } from '../packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../switch/index.ts';
import { BCAST, arp, ping, udpJoinedSwitches, until } from '../switch/test-support.ts';
import { CUSTOMER_MTU, GATEWAY_MAC, HNV_EXTENSION, paMac, type HnvExtensionConfig } from './index.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const BLUE = '{11111111-0000-0000-0000-000000000001}', RED = '{22222222-0000-0000-0000-000000000002}';
const PA_A = '192.168.100.1', PA_B = '192.168.100.2';
const GW = '02:15:5d:ff:ff:01';

/** A VM: its port, host, subnet, address and MAC (Blue and Red A share 10.0.0.10 and Blue/Red B even a MAC). */
interface Vm { port: string; host: 'a' | 'b'; vsid: number; ip: string; mac: string }
const VMS: Vm[] = [
  { port: 'blueA', host: 'a', vsid: 5001, ip: '10.0.0.10', mac: '52:54:00:05:00:0a' },
  { port: 'blueB', host: 'b', vsid: 5001, ip: '10.0.0.11', mac: '52:54:00:00:00:0b' },
  { port: 'blueA2', host: 'a', vsid: 5002, ip: '10.0.1.10', mac: '52:54:00:05:01:0a' },
  { port: 'redA', host: 'a', vsid: 6001, ip: '10.0.0.10', mac: '52:54:00:06:00:0a' },
  { port: 'redB', host: 'b', vsid: 6001, ip: '10.0.0.11', mac: '52:54:00:00:00:0b' },
];
const vm = (port: string): Vm => VMS.find((v) => v.port === port)!;

function policyOf(pa: string): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: pa, InterfaceIndex: 1, PrefixLength: 24 }));
  for (const [rdid, vsid, prefix] of [[BLUE, 5001, '10.0.0.0/24'], [BLUE, 5002, '10.0.1.0/24'], [RED, 6001, '10.0.0.0/24']] as const) {
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: '0.0.0.0' }));
  }
  for (const v of VMS) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: v.ip, VirtualSubnetID: v.vsid, MACAddress: v.mac, ProviderAddress: v.host === 'a' ? PA_A : PA_B, Rule: 'TranslationMethodEncap' }));
  }
  return p;
}


describe('NVGRE between two switches over the UDP provider network', () => {
  const got = new Map<string, Uint8Array[]>();
  const sw: Record<'a' | 'b', VirtualSwitch> = {} as Record<'a' | 'b', VirtualSwitch>;
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-hnv-'));

  before(async () => {
    [sw.a, sw.b] = await udpJoinedSwitches();
    for (const v of VMS) {
      got.set(v.port, []);
      await sw[v.host].addPort({ id: v.port, policy: { mac: v.mac, virtualSubnetId: v.vsid }, sink: (f) => got.get(v.port)!.push(Uint8Array.prototype.slice.call(f)) });
    }
    for (const [h, pa_] of [['a', PA_A], ['b', PA_B]] as const) {
      const config: HnvExtensionConfig = { policy: policyOf(pa_) };
      sw[h].addExtension(HNV_EXTENSION, { config: config as unknown as Record<string, unknown> });
    }
    sw.a.startCapture(UPLINK_PORT_ID, join(dir, 'uplink.pcap'));
  });
  after(async () => {
    await Promise.all([sw.a?.close(), sw.b?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const clear = (): void => { for (const k of got.keys()) got.set(k, []); };
  const receivers = (): string[] => [...got].filter(([, f]) => f.length > 0).map(([k]) => k).sort();
  const send = (from: string, frame: Uint8Array): void => sw[vm(from).host].inject(from, frame);
  const drops = (host: 'a' | 'b', port: string): Record<string, number> => sw[host].portStats(port).drops;
  const status = (host: 'a' | 'b') => sw[host].extensions()[0]!.status as { encapsulated: number; decapsulated: number; routed: number; drops: Record<string, number>; icmpErrors: Record<string, number> };

  test('ARP for a customer address or the gateway is answered locally from the records', () => {
    clear();
    const txBefore = sw.a.portStats(UPLINK_PORT_ID).txFrames;
    send('blueA', arp('request', vm('blueA').mac, vm('blueA').ip, '10.0.0.11'));
    send('redA', arp('request', vm('redA').mac, vm('redA').ip, '10.0.0.1'));
    assert.deepEqual(receivers(), ['blueA', 'redA']);
    const blue = parseFrame(got.get('blueA')![0]!);
    assert.equal(blue.arpSha, macToNumber(parseMac(vm('blueB').mac)), "Blue's 10.0.0.11 is Blue B's MAC");
    assert.equal(parseFrame(got.get('redA')![0]!).arpSha, GATEWAY_MAC);
    assert.equal(sw.a.portStats(UPLINK_PORT_ID).txFrames, txBefore, 'no ARP crossed to the provider network');
  });

  test('each tenant reaches its own VM on the other host; the other tenant sees nothing', async () => {
    for (const [from, to] of [['blueA', 'blueB'], ['redA', 'redB'], ['redB', 'redA']] as const) {
      clear();
      send(from, ping(vm(from).mac, vm(to).mac, vm(from).ip, vm(to).ip));
      await until(() => got.get(to)!.length > 0);
      assert.deepEqual(receivers(), [to]);
      const inner = parseFrame(got.get(to)![0]!);
      assert.equal(formatIpv4(inner.ipSrc), vm(from).ip);
    }
    assert.ok(status('a').encapsulated >= 2 && status('b').decapsulated >= 2);
  });

  test('the distributed router: Blue 5001 → 5002 on one host and across hosts; TTL and MACs rewritten', async () => {
    clear();
    send('blueA', ping(vm('blueA').mac, GW, vm('blueA').ip, vm('blueA2').ip));
    assert.deepEqual(receivers(), ['blueA2']);
    const r = parseFrame(got.get('blueA2')![0]!);
    assert.deepEqual([r.src, r.dst, r.ttl], [GATEWAY_MAC, macToNumber(parseMac(vm('blueA2').mac)), 63]);
    clear();
    send('blueB', ping(vm('blueB').mac, GW, vm('blueB').ip, vm('blueA2').ip));
    await until(() => got.get('blueA2')!.length > 0);
    assert.deepEqual(receivers(), ['blueA2'], 'routed on B, carried in VSID 5002, accepted on A by the CA in the routing domain');
    clear();
    // Red has no 10.0.1.0/24: its router knows no such route, and says so (ICMP net unreachable from Red's gateway).
    send('redA', ping(vm('redA').mac, GW, vm('redA').ip, vm('blueA2').ip));
    assert.deepEqual(receivers(), ['redA']);
    const u = parseFrame(got.get('redA')![0]!);
    assert.deepEqual([u.src, formatIpv4(u.ipSrc), u.icmpType, u.icmpCode], [GATEWAY_MAC, '10.0.0.1', 3, 0]);
    assert.equal(drops('a', 'redA')['hnv-no-route'], 1);
    clear();
    // TTL 1: not routed on; Time Exceeded back to the sender.
    const last = ping(vm('blueA').mac, GW, vm('blueA').ip, vm('blueA2').ip);
    last[22] = 1; last[24] = 0; last[25] = 0;
    const sum = internetChecksum(last, 14, 20);
    last[24] = sum >>> 8; last[25] = sum & 0xff;
    send('blueA', last);
    assert.deepEqual(receivers(), ['blueA']);
    assert.deepEqual([parseFrame(got.get('blueA')![0]!).icmpType, drops('a', 'blueA')['hnv-ttl-expired']], [11, 1]);
    const icmp = status('a').icmpErrors;
    assert.deepEqual([icmp['time-exceeded'], icmp['net-unreachable'], icmp.rateLimited], [1, 1, 0]);
  });

  test('no lookup record, no route: dropped and counted, never flooded', () => {
    clear();
    const before = sw.a.portStats(UPLINK_PORT_ID).txFrames;
    send('blueA', arp('request', vm('blueA').mac, vm('blueA').ip, '10.0.0.99'));
    send('blueA', ping(vm('blueA').mac, '52:54:00:99:99:99', vm('blueA').ip, '10.0.0.99'));
    send('blueA', ping(vm('blueA').mac, GW, vm('blueA').ip, '10.0.1.99'));
    send('blueA', ping(vm('blueA').mac, GW, vm('blueA').ip, '172.16.0.1'));
    assert.deepEqual(receivers(), ['blueA'], 'only the router\'s errors, back to the sender');
    // Host unreachable for the routed packet to a CA without a record, net unreachable for the one without a route.
    assert.deepEqual(got.get('blueA')!.map((f) => { const u = parseFrame(f); return [u.icmpType, u.icmpCode]; }), [[3, 1], [3, 0]]);
    assert.equal(sw.a.portStats(UPLINK_PORT_ID).txFrames, before);
    assert.deepEqual({ ...drops('a', 'blueA') }, { 'hnv-no-lookup-record': 3, 'hnv-no-route': 1, 'hnv-ttl-expired': 1 });
    assert.equal(status('a').drops['hnv-no-lookup-record'], 3);
  });

  test('decapsulation checks: PA mismatch, unknown VSID, unknown destination, not our PA; MTU on the way out', () => {
    clear();
    const inner = ping(vm('blueA').mac, vm('blueB').mac, vm('blueA').ip, vm('blueB').ip);
    const nvgre = (vsid: number, src: string, dst = PA_B, frame = inner): Uint8Array => {
      const e = encodeNvgre({ outerDst: paMac(parseIpv4Address(dst)), outerSrc: paMac(parseIpv4Address(src)), providerSrc: parseIpv4Address(src), providerDst: parseIpv4Address(dst), vsid, inner: frame });
      assert.ok(e.ok);
      return e.frame;
    };
    sw.b.inject(UPLINK_PORT_ID, nvgre(5001, '192.168.100.77'));
    sw.b.inject(UPLINK_PORT_ID, nvgre(7777, PA_A));
    sw.b.inject(UPLINK_PORT_ID, nvgre(5001, PA_A, PA_B, ping(vm('blueA').mac, '52:54:00:99:99:99', vm('blueA').ip, '10.0.0.99')));
    sw.b.inject(UPLINK_PORT_ID, nvgre(6001, PA_A)); // Blue A's MAC is no Red record
    sw.b.inject(UPLINK_PORT_ID, nvgre(5001, PA_A, '192.168.100.9')); // not for this host: default forwarding, reaches no VM
    assert.deepEqual(receivers(), []);
    assert.deepEqual({ ...drops('b', UPLINK_PORT_ID) }, { 'nvgre-pa-mismatch': 1, 'nvgre-unknown-vsid': 1, 'nvgre-unknown-destination': 1, 'nvgre-no-lookup-record': 1 });
    send('blueA', ping(vm('blueA').mac, vm('blueB').mac, vm('blueA').ip, vm('blueB').ip, 1480));
    assert.equal(drops('a', 'blueA')['nvgre-mtu'], 1, 'a 1514-byte IP packet does not fit the 1500-byte provider MTU with 42 bytes of NVGRE');
    // DF set: the sender is told the MTU that fits (RFC 1191), from its gateway.
    const tooBig = got.get('blueA')!.at(-1)!, t = parseFrame(tooBig);
    assert.deepEqual([t.src, formatIpv4(t.ipSrc), t.icmpType, t.icmpCode, (tooBig[40]! << 8) | tooBig[41]!], [GATEWAY_MAC, '10.0.0.1', 3, 4, CUSTOMER_MTU]);
    assert.equal(internetChecksum(tooBig, 34, tooBig.length - 34), 0, 'ICMP checksum');
  });

  test('broadcasts reach the subnet only: local ports and one copy per remote PA', async () => {
    clear();
    send('redB', ping(vm('redB').mac, BCAST, vm('redB').ip, '10.0.0.255'));
    await until(() => got.get('redA')!.length > 0);
    assert.deepEqual(receivers(), ['redA']);
  });

  test('the uplink capture is GRE with key VSID << 8 | FlowID, decoded by our parser and tshark, nothing malformed', { skip: !haveTshark && process.env.CI !== 'true' && 'tshark not installed' }, () => {
    const r = sw.a.stopCapture(UPLINK_PORT_ID)!;
    assert.ok(r.frames >= 3);
    const t = spawnSync('tshark', ['-r', r.path, '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-e', 'gre.key', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type', '-e', '_ws.malformed'], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    const rows = t.stdout.trim().split('\n').map((l) => l.split('\t'));
    const keys = rows.map((row) => Number(row[0]));
    assert.ok(keys.every((k) => k >>> 8 === 5001 || k >>> 8 === 6001 || k >>> 8 === 5002), t.stdout);
    const blue = rows.find((row) => Number(row[0]) >>> 8 === 5001)!;
    assert.equal(blue[1], `${PA_A},10.0.0.10`, 'outer then inner source');
    assert.equal(blue[2], `${PA_B},10.0.0.11`);
    assert.ok(rows.every((row) => (row[4] ?? '') === ''), 'no malformed frame');
    const expert = spawnSync('tshark', ['-r', r.path, '-q', '-z', 'expert,warn'], { encoding: 'utf8' });
    assert.doesNotMatch(expert.stdout, /Malformed|Errors \(/, expert.stdout);
    assert.equal(decodeNvgre(new Uint8Array(0)).ok, false);
  });
});
