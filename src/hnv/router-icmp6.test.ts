// The router's ICMPv6 errors and Router Advertisements, built and read back with the packet
// parsers and with tshark as the oracle: Time Exceeded, Destination Unreachable (no route,
// address unreachable) and Packet Too Big from the sender's gateway (::1) and the gateway MAC
// to the sender, checksums valid, the invoking packet quoted within 1280 bytes; none about an
// ICMPv6 error or from ::; the RA answering a Router Solicitation (from the router's
// link-local address, hop limit 255, the subnet's /64 on-link and autonomous, the MTU option,
// the gateway MAC) and none for an invalid RS; an echo to the gateway answered; the IPv4
// fragmentation-needed error beside them. The rate limit they share is router-icmp.test.ts's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ETHERTYPE_IPV6, ICMPV6_ADDRESS_UNREACHABLE, ICMPV6_DEST_UNREACHABLE, ICMPV6_ECHO_REPLY, ICMPV6_NO_ROUTE, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED,
  IPPROTO_ICMPV6, ND_ROUTER_ADVERT, buildEthernet, buildIcmpv6Echo, buildIcmpv6Error, buildIpv6, buildRouterSolicitation, formatIpv6, icmpv6ChecksumOk,
  macToNumber, parseFrame, parseIcmpv6, parseIpv6Address, parseMac, pcapHeader, pcapRecord, setIcmpv6Checksum,
} from '../packet/index.ts';
import { ping } from '../switch/test-support.ts';
import { CompiledPolicy } from './compiled.ts';
import { Policy6, ROUTER_LINK_LOCAL, gatewayEcho6 } from './ipv6.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';
import { GATEWAY_MAC } from './router.ts';
import { solicitedAdvertisement } from './router-adv.ts';
import { IcmpErrors } from './router-icmp.ts';
import type { Icmpv6ErrorKind } from './router-icmp6.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}';
const VM_MAC = '52:54:00:05:00:0a', VM_IP = 'fd00:b::10', VM_IP4 = '10.0.0.10', GW = '02:15:5d:ff:ff:01';
const CUSTOMER_MTU = 1458;

function policy(): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: '192.168.100.1', InterfaceIndex: 1, PrefixLength: 24 }));
  for (const prefix of ['fd00:b::/64', '10.0.0.0/24']) {
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: prefix, NextHop: prefix.includes(':') ? '::' : '0.0.0.0' }));
  }
  for (const ca of [VM_IP, VM_IP4]) p = addLookupRecord(p, lookupRecord({ CustomerAddress: ca, VirtualSubnetID: 5001, MACAddress: VM_MAC, ProviderAddress: '192.168.100.1', Rule: 'TranslationMethodEncap' }));
  return p;
}
const compiled = new CompiledPolicy(policy());
const p6 = new Policy6(compiled, policy());

function ipv6Frame(src: string, dst: string, icmp: Uint8Array, o: { dstMac?: string; hopLimit?: number } = {}): Uint8Array {
  const s = parseIpv6Address(src), d = parseIpv6Address(dst);
  setIcmpv6Checksum(icmp, s, d);
  return buildEthernet({ src: parseMac(VM_MAC), dst: parseMac(o.dstMac ?? GW), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_ICMPV6, hopLimit: o.hopLimit ?? 64, payload: icmp }) });
}
const echo = (dst: string, size = 32, src = VM_IP): Uint8Array => ipv6Frame(src, dst, buildIcmpv6Echo({ type: 128, id: 7, seq: 1, data: new Uint8Array(size) }));

/** An IPv6 ICMPv6 frame from the router to the VM, checked; its message. */
function fromRouter(out: Uint8Array | undefined, src: string, hopLimit = 64): ReturnType<typeof parseIcmpv6> & { ok: true } {
  assert.ok(out);
  const f = parseFrame(out);
  assert.ok(f.ok, String(f.reason));
  assert.deepEqual([f.src, f.ethertype, f.ipProtocol, out[14 + 7]], [GATEWAY_MAC, ETHERTYPE_IPV6, IPPROTO_ICMPV6, hopLimit]);
  assert.equal(formatIpv6(out, f.ipSrcOffset), src);
  assert.ok(icmpv6ChecksumOk(out, 54, out.length - 54, out.subarray(22, 38), out.subarray(38, 54)), 'ICMPv6 checksum');
  const m = parseIcmpv6(out, 54);
  assert.ok(m.ok);
  return m;
}

test('ICMPv6 errors: from the sender\'s gateway ::1 to the sender, valid, quoting the packet within 1280 bytes', () => {
  const icmp = new IcmpErrors(() => 0);
  const cases: [Icmpv6ErrorKind, number, number, number, number][] = [
    ['time-exceeded6', ICMPV6_TIME_EXCEEDED, 0, 0, 32],
    ['no-route6', ICMPV6_DEST_UNREACHABLE, ICMPV6_NO_ROUTE, 0, 1400],
    ['address-unreachable6', ICMPV6_DEST_UNREACHABLE, ICMPV6_ADDRESS_UNREACHABLE, 0, 32],
    ['packet-too-big6', ICMPV6_PACKET_TOO_BIG, 0, CUSTOMER_MTU, 1450],
  ];
  for (const [kind, type, code, word, size] of cases) {
    const sent = echo('fd00:9::1', size);
    const out = icmp.answer6(p6, 5001, sent, parseFrame(sent), kind, CUSTOMER_MTU);
    const m = fromRouter(out, 'fd00:b::1');
    assert.deepEqual([m.type, m.code, m.word, parseFrame(out!).dst], [type, code, word, macToNumber(parseMac(VM_MAC))], kind);
    assert.ok(out!.length - 14 <= 1280, 'at most the minimum MTU');
    const quoted = out!.subarray(62);
    assert.equal(quoted.length, Math.min(sent.length - 14, 1280 - 48));
    assert.deepEqual([...quoted], [...sent.subarray(14, 14 + quoted.length)]);
  }
  assert.deepEqual([icmp.sent['time-exceeded6'], icmp.sent['no-route6'], icmp.sent['address-unreachable6'], icmp.sent['packet-too-big6']], [1, 1, 1, 1]);
});

test('no ICMPv6 error about an error, from ::, to multicast (but Packet Too Big), or from outside the subnet\'s prefixes', () => {
  const icmp = new IcmpErrors(() => 0);
  const error = ipv6Frame(VM_IP, 'fd00:9::1', buildIcmpv6Error({ type: ICMPV6_DEST_UNREACHABLE, code: 0, invoking: new Uint8Array(48) }));
  for (const f of [error, echo('fd00:9::1', 32, '::'), echo('ff0e::1'), echo('fd00:9::1', 32, 'fd00:7::5')]) {
    assert.equal(icmp.answer6(p6, 5001, f, parseFrame(f), 'no-route6'), undefined);
  }
  const toGroup = echo('ff0e::1');
  assert.ok(icmp.answer6(p6, 5001, toGroup, parseFrame(toGroup), 'packet-too-big6', CUSTOMER_MTU), 'RFC 4443 §2.4(e.2): Packet Too Big even to a multicast destination');
});

test('a Router Solicitation gets the router\'s RA: link-local source, hop limit 255, the /64 on-link and autonomous, MTU, gateway MAC', () => {
  const lla = 'fe80::5054:ff:fe05:a';
  const rs = ipv6Frame(lla, 'ff02::2', buildRouterSolicitation({ options: [{ type: 1, mac: parseMac(VM_MAC) }] }), { dstMac: '33:33:00:00:00:02', hopLimit: 255 });
  const out = solicitedAdvertisement(p6, 5001, rs, parseFrame(rs), CUSTOMER_MTU);
  const m = fromRouter(out, formatIpv6(ROUTER_LINK_LOCAL), 255);
  assert.equal(formatIpv6(ROUTER_LINK_LOCAL), 'fe80::15:5dff:feff:ff01');
  assert.deepEqual([m.type, m.code, m.routerLifetime, m.curHopLimit, m.mtu, m.sourceLinkAddr], [ND_ROUTER_ADVERT, 0, 1800, 64, CUSTOMER_MTU, GATEWAY_MAC]);
  assert.equal(formatIpv6(out!, 38), lla, 'to the soliciting address');
  assert.equal(m.prefixes.length, 1);
  const pi = m.prefixes[0]!;
  assert.deepEqual([formatIpv6(out!, pi.prefixOffset), pi.prefixLength, pi.onLink, pi.autonomous], ['fd00:b::', 64, true, true]);
  // From ::, to all-nodes; an RS with hop limit 64, or from :: with a link-layer option, is invalid (RFC 4861 §6.1.1).
  const dad = ipv6Frame('::', 'ff02::2', buildRouterSolicitation({}), { dstMac: '33:33:00:00:00:02', hopLimit: 255 });
  const all = solicitedAdvertisement(p6, 5001, dad, parseFrame(dad), CUSTOMER_MTU)!;
  assert.deepEqual([formatIpv6(all, 38), parseFrame(all).dst], ['ff02::1', 0x3333_0000_0001]);
  for (const bad of [
    ipv6Frame(lla, 'ff02::2', buildRouterSolicitation({}), { dstMac: '33:33:00:00:00:02', hopLimit: 64 }),
    ipv6Frame('::', 'ff02::2', buildRouterSolicitation({ options: [{ type: 1, mac: parseMac(VM_MAC) }] }), { dstMac: '33:33:00:00:00:02', hopLimit: 255 }),
  ]) assert.equal(solicitedAdvertisement(p6, 5001, bad, parseFrame(bad), CUSTOMER_MTU), undefined);
  assert.equal(solicitedAdvertisement(p6, 6001, rs, parseFrame(rs), CUSTOMER_MTU), undefined, 'no IPv6 prefix in 6001: no router to advertise');
});

test('an echo request to the gateway ::1 or the router\'s link-local address is answered', () => {
  for (const [dst, src] of [['fd00:b::1', VM_IP], [formatIpv6(ROUTER_LINK_LOCAL), 'fe80::5054:ff:fe05:a']] as const) {
    const sent = echo(dst, 32, src);
    const m = fromRouter(gatewayEcho6(p6, 5001, sent, parseFrame(sent)), dst);
    assert.deepEqual([m.type, m.word], [ICMPV6_ECHO_REPLY, (7 << 16) | 1]);
  }
  const other = echo('fd00:b::11');
  assert.equal(gatewayEcho6(p6, 5001, other, parseFrame(other)), undefined);
});

const hasTshark = (() => {
  try { execFileSync('tshark', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

test('tshark decodes the RA, the ICMPv6 errors and fragmentation needed as valid, checksums good', { skip: hasTshark || process.env.CI === 'true' ? false : 'tshark not installed' }, () => {
  const icmp = new IcmpErrors(() => 0);
  const rs = ipv6Frame('fe80::5054:ff:fe05:a', 'ff02::2', buildRouterSolicitation({}), { dstMac: '33:33:00:00:00:02', hopLimit: 255 });
  const big = echo('fd00:b::11', 1450);
  const big4 = ping(VM_MAC, '52:54:00:05:00:0b', VM_IP4, '10.0.0.11', 1480);
  const frames = [
    solicitedAdvertisement(p6, 5001, rs, parseFrame(rs), CUSTOMER_MTU)!,
    ...(['time-exceeded6', 'no-route6', 'address-unreachable6', 'packet-too-big6'] as const).map((k) => icmp.answer6(p6, 5001, big, parseFrame(big), k, CUSTOMER_MTU)!),
    icmp.answer(compiled, 5001, big4, parseFrame(big4), 'frag-needed', CUSTOMER_MTU)!,
  ];
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-icmp6-'));
  try {
    const file = join(dir, 'router.pcap');
    writeFileSync(file, Buffer.concat([pcapHeader(), ...frames.map((f, i) => pcapRecord(f, 1_700_000_000_000_000_000n + BigInt(i) * 1000n))]));
    const fields = ['icmpv6.type', 'icmpv6.code', 'icmpv6.checksum.status', 'icmpv6.mtu', 'icmpv6.opt.mtu', 'icmpv6.opt.prefix', 'icmpv6.opt.prefix.flag.l', 'icmpv6.opt.prefix.flag.a', 'icmp.type', 'icmp.code', 'icmp.checksum.status', 'icmp.mtu', '_ws.malformed'];
    const out = execFileSync('tshark', ['-r', file, '-o', 'ip.check_checksum:TRUE', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
    const rows = out.replace(/\n$/, '').split('\n').map((l) => Object.fromEntries(l.split('\t').map((v, i) => [fields[i]!, v])));
    assert.equal(rows.length, 6, out);
    assert.deepEqual([rows[0]!['icmpv6.type'], rows[0]!['icmpv6.opt.mtu'], rows[0]!['icmpv6.opt.prefix'], rows[0]!['icmpv6.opt.prefix.flag.l'], rows[0]!['icmpv6.opt.prefix.flag.a']], ['134', '1458', 'fd00:b::', '1', '1']);
    // The quoted packet is decoded too: the outer message comes first in each field.
    assert.deepEqual(rows.slice(1, 5).map((r) => [r['icmpv6.type']!.split(',')[0], r['icmpv6.code']!.split(',')[0]]), [['3', '0'], ['1', '0'], ['1', '3'], ['2', '0']]);
    assert.equal(rows[4]!['icmpv6.mtu'], '1458');
    assert.deepEqual([rows[5]!['icmp.type']!.split(',')[0], rows[5]!['icmp.code']!.split(',')[0], rows[5]!['icmp.mtu']], ['3', '4', '1458']);
    for (const r of rows.slice(0, 5)) assert.equal(r['icmpv6.checksum.status']!.split(',')[0], '1', 'tshark: ICMPv6 checksum good (1)');
    assert.equal(rows[5]!['icmp.checksum.status']!.split(',')[0], '1', 'tshark: ICMP checksum good (1)');
    assert.ok(rows.every((r) => r['_ws.malformed'] === ''), out);
    const expert = execFileSync('tshark', ['-r', file, '-q', '-z', 'expert,warn'], { encoding: 'utf8' });
    assert.doesNotMatch(expert, /Malformed|Errors \(/, expert);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
