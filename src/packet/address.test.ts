import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import {
  parseMac, formatMac, macToNumber, macFromNumber, isMulticastMac, isBroadcastMac, BROADCAST_MAC,
  parseIpv4, formatIpv4, ipv4InPrefix, isIpv4Multicast, isIpv4Broadcast, ipv4MulticastMac,
  parseIpv6, formatIpv6, ipv6InPrefix, ipv6Key, isIpv6Multicast, solicitedNodeMulticast, isSolicitedNodeMulticast, ipv6MulticastMac,
  parseCidr, formatCidr,
} from './address.ts';

test('MAC parse/format in the three spellings, as a number and back', () => {
  for (const s of ['00:15:5d:01:02:03', '00-15-5D-01-02-03', '00155D010203']) assert.equal(formatMac(parseMac(s)), '00:15:5d:01:02:03');
  const n = macToNumber(parseMac('fe:dc:ba:98:76:54'));
  assert.equal(n, 0xfedcba987654);
  assert.equal(formatMac(macFromNumber(n)), 'fe:dc:ba:98:76:54');
  assert.ok(isMulticastMac(macToNumber(parseMac('01:00:5e:00:00:01'))));
  assert.ok(!isMulticastMac(n) && !isMulticastMac(macToNumber(parseMac('00:15:5d:01:02:03'))));
  assert.ok(isBroadcastMac(BROADCAST_MAC) && isMulticastMac(BROADCAST_MAC));
  for (const bad of ['00:15:5d:01:02', '00:15-5d:01:02:03', 'zz155d010203', '']) {
    assert.throws(() => parseMac(bad), (e) => isVmhostError(e, 'PACKET_BAD_ADDRESS'));
  }
});

test('IPv4 parse/format, prefixes, multicast and broadcast', () => {
  assert.equal(parseIpv4('192.168.1.200'), 0xc0a801c8);
  assert.equal(formatIpv4(0xc0a801c8), '192.168.1.200');
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4.5', 'a.b.c.d']) assert.throws(() => parseIpv4(bad));
  assert.ok(ipv4InPrefix(parseIpv4('10.1.2.3'), parseIpv4('10.0.0.0'), 8));
  assert.ok(!ipv4InPrefix(parseIpv4('11.1.2.3'), parseIpv4('10.0.0.0'), 8));
  assert.ok(ipv4InPrefix(parseIpv4('11.1.2.3'), parseIpv4('10.0.0.0'), 0));
  assert.ok(ipv4InPrefix(parseIpv4('10.0.0.1'), parseIpv4('10.0.0.1'), 32));
  assert.ok(isIpv4Multicast(parseIpv4('224.0.0.251')) && !isIpv4Multicast(parseIpv4('192.0.2.1')));
  assert.ok(isIpv4Broadcast(0xffffffff));
  assert.ok(isIpv4Broadcast(parseIpv4('192.168.1.255'), parseIpv4('192.168.1.0'), 24));
  assert.ok(!isIpv4Broadcast(parseIpv4('192.168.1.254'), parseIpv4('192.168.1.0'), 24));
  assert.equal(formatMac(ipv4MulticastMac(parseIpv4('239.129.1.2'))), '01:00:5e:01:01:02');
});

test('IPv6 parse/format with RFC 5952 compression', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero word is not compressed
    ['::', '::'], ['::1', '::1'], ['1::', '1::'], ['fe80::215:5dff:fe00:a', 'fe80::215:5dff:fe00:a'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['2001:DB8:0:0:0:0:2:1', '2001:db8::2:1'], ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ];
  for (const [i, o] of cases) assert.equal(formatIpv6(parseIpv6(i)), o, i);
  for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', ':::', 'g::1', '1:2:3:4:5:6:7:8::']) {
    assert.throws(() => parseIpv6(bad), (e) => isVmhostError(e, 'PACKET_BAD_ADDRESS'), bad);
  }
});

test('IPv6 prefixes, multicast, solicited-node', () => {
  const a = parseIpv6('2001:db8:abcd:12::1');
  assert.ok(ipv6InPrefix(a, 0, parseIpv6('2001:db8::'), 32));
  assert.ok(ipv6InPrefix(a, 0, parseIpv6('2001:db8:abcd::'), 48));
  assert.ok(!ipv6InPrefix(a, 0, parseIpv6('2001:db8:abcd::'), 64));
  assert.ok(ipv6InPrefix(a, 0, parseIpv6('2001:db8:abcd:10::'), 61));
  assert.ok(!ipv6InPrefix(a, 0, parseIpv6('2001:db8:abcd:10::'), 63));
  assert.ok(isIpv6Multicast(parseIpv6('ff02::1')) && !isIpv6Multicast(a));
  const framed = new Uint8Array(20); framed.set(a, 4);
  assert.equal(ipv6Key(framed, 4), ipv6Key(a)); assert.notEqual(ipv6Key(a), ipv6Key(parseIpv6('2001:db8:abcd:12::2')));
  const snm = solicitedNodeMulticast(parseIpv6('fe80::2aa:ff:fe28:9c5a'));
  assert.equal(formatIpv6(snm), 'ff02::1:ff28:9c5a'); // RFC 4291 §2.7.1 example form
  assert.ok(isSolicitedNodeMulticast(snm) && !isSolicitedNodeMulticast(parseIpv6('ff02::1')));
  assert.equal(formatMac(ipv6MulticastMac(snm)), '33:33:ff:28:9c:5a');
});

test('CIDR parse/format', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { version: 4, address: 0x0a000000, prefixLength: 8 });
  assert.equal(formatCidr(parseCidr('2001:db8::/32')), '2001:db8::/32');
  assert.equal(parseCidr('10.1.1.1').prefixLength, 32);
  assert.equal(parseCidr('::1').prefixLength, 128);
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/x', '10.0.0.0/']) assert.throws(() => parseCidr(bad));
});
