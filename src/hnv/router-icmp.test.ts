// The router's ICMP errors, built and read back with the packet parsers: Time Exceeded and net
// unreachable from the sender's gateway (.1) and the gateway MAC to the sender, checksums valid,
// the original IP header and payload quoted (at most 576 bytes of IP); none about an ICMP
// error, a later fragment or a multicast source; the token bucket holds back a burst and
// refills with time, each counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ETHERTYPE_IPV4, ICMP_DEST_UNREACHABLE, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, IPPROTO_UDP, buildEthernet, buildIpv4, internetChecksum, parseFrame, parseIcmpv4, parseIpv4Address, parseMac,
} from '../packet/index.ts';
import { ping } from '../switch/test-support.ts';
import { CompiledPolicy } from './compiled.ts';
import { addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, providerAddress } from './policy.ts';
import { GATEWAY_MAC } from './router.ts';
import { IcmpErrors } from './router-icmp.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}';
const VM_MAC = '52:54:00:05:00:0a', GW = '02:15:5d:ff:ff:01';

function compiled(): CompiledPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: '192.168.100.1', InterfaceIndex: 1, PrefixLength: 24 }));
  p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' }));
  p = addLookupRecord(p, lookupRecord({ CustomerAddress: '10.0.0.10', VirtualSubnetID: 5001, MACAddress: VM_MAC, ProviderAddress: '192.168.100.1', Rule: 'TranslationMethodEncap' }));
  return new CompiledPolicy(p);
}

test('Time Exceeded and net unreachable: from the sender\'s gateway to the sender, valid, quoting the packet', () => {
  const p = compiled();
  const icmp = new IcmpErrors(() => 0);
  for (const [kind, type, size] of [['time-exceeded', ICMP_TIME_EXCEEDED, 56], ['net-unreachable', ICMP_DEST_UNREACHABLE, 1400]] as const) {
    const sent = ping(VM_MAC, GW, '10.0.0.10', '172.16.0.1', size);
    const out = icmp.answer(p, 5001, sent, parseFrame(sent), kind);
    assert.ok(out);
    const f = parseFrame(out);
    assert.ok(f.ok, String(f.reason));
    assert.deepEqual([f.src, f.dst, f.ethertype, f.ipProtocol], [GATEWAY_MAC, parseInt(VM_MAC.replace(/:/g, ''), 16), ETHERTYPE_IPV4, IPPROTO_ICMP]);
    assert.deepEqual([f.ipSrc, f.ipDst], [parseIpv4Address('10.0.0.1'), parseIpv4Address('10.0.0.10')]);
    assert.equal(internetChecksum(out, 14, 20), 0, 'IP header checksum');
    const ipLen = (out[16]! << 8) | out[17]!;
    assert.ok(ipLen <= 576 && ipLen === out.length - 14);
    const m = parseIcmpv4(out, 34);
    assert.ok(m.ok);
    assert.deepEqual([m.type, m.code], [type, 0]);
    assert.equal(internetChecksum(out, 34, ipLen - 20), 0, 'ICMP checksum');
    // The quote: the original IP header as sent, then its payload (all of it when small).
    const quoted = out.subarray(42);
    assert.deepEqual([...quoted.subarray(0, 20)], [...sent.subarray(14, 34)]);
    assert.equal(quoted.length, Math.min(sent.length - 14, 576 - 28));
  }
  assert.deepEqual([icmp.sent['time-exceeded'], icmp.sent['net-unreachable']], [1, 1]);
});

test('no error about an ICMP error, a later fragment or a multicast source; a source outside the subnet\'s routes gets none', () => {
  const p = compiled();
  const icmp = new IcmpErrors(() => 0);
  const frame = (src: string, protocol: number, payload: Uint8Array, over: { flags?: number; fragmentOffset?: number } = {}) =>
    buildEthernet({ dst: parseMac(GW), src: parseMac(VM_MAC), ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: parseIpv4Address(src), dst: parseIpv4Address('172.16.0.1'), protocol, payload, ...over }) });
  const unreachable = new Uint8Array(36); unreachable[0] = 3;
  for (const f of [
    frame('10.0.0.10', IPPROTO_ICMP, unreachable),
    frame('10.0.0.10', IPPROTO_UDP, new Uint8Array(16), { flags: 0, fragmentOffset: 8 }),
    frame('224.0.0.5', IPPROTO_UDP, new Uint8Array(16)),
    frame('10.9.0.10', IPPROTO_UDP, new Uint8Array(16)),
  ]) assert.equal(icmp.answer(p, 5001, f, parseFrame(f), 'net-unreachable'), undefined);
  assert.ok(Object.values(icmp.sent).every((n) => n === 0));
});

test('rate limit: a burst of 20, then 10 per second, the rest counted as held back', () => {
  let now = 0;
  const p = compiled();
  const icmp = new IcmpErrors(() => now);
  const sent = ping(VM_MAC, GW, '10.0.0.10', '172.16.0.1');
  const info = parseFrame(sent);
  const burst = Array.from({ length: 30 }, () => icmp.answer(p, 5001, sent, info, 'net-unreachable')).filter(Boolean).length;
  assert.deepEqual([burst, icmp.rateLimited], [20, 10]);
  now = 500; // half a second: 5 more
  const later = Array.from({ length: 10 }, () => icmp.answer(p, 5001, sent, info, 'time-exceeded')).filter(Boolean).length;
  assert.deepEqual([later, icmp.rateLimited, icmp.sent['time-exceeded']], [5, 15, 5]);
});
