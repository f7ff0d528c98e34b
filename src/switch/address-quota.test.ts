// Quotas on the ARP/ND guard's learned addresses (ip-owners.ts rule 4): one guest cycling
// source addresses fills only its own quota, a later VM's address is still owned and
// protected, and a full table fails closed for guarded ports ('address-quota').
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildEthernet, buildIpv6, buildUdp, buildNeighborAdvertisement, setIcmpv6Checksum, parseMac, parseIpv6Address,
  ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPPROTO_UDP,
} from '../packet/index.ts';
import { VmhostError } from '../common/errors.ts';
import { completeSettings } from './settings.ts';
import { BCAST, Bench, arp, ip, mac, udp } from './test-support.ts';

function udp6(srcMac: string, srcIp: string): Uint8Array {
  const s = parseIpv6Address(srcIp), d = parseIpv6Address('2001:db8::ffff');
  const u = buildUdp({ srcPort: 5000, dstPort: 5001, payload: new Uint8Array(16), src: s, dst: d });
  return buildEthernet({ src: parseMac(srcMac), dst: parseMac(BCAST), ethertype: ETHERTYPE_IPV6,
    payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_UDP, payload: u }) });
}

function na(srcMac: string, srcIp: string, target: string): Uint8Array {
  const s = parseIpv6Address(srcIp), d = parseIpv6Address('ff02::1');
  const body = setIcmpv6Checksum(buildNeighborAdvertisement({ target: parseIpv6Address(target), flags: 0x20 }), s, d);
  return buildEthernet({ src: parseMac(srcMac), dst: parseMac('33:33:00:00:00:01'), ethertype: ETHERTYPE_IPV6,
    payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: body }) });
}

test('a guarded port cycling IPv6 sources fills only its own quota; a later VM’s address is still owned and protected', async () => {
  const b = await Bench.create({ maxLearnedAddressesPerPort: 4, maxLearnedAddresses: 16, macAgeingSeconds: 300 });
  await b.port('attacker', { mac: mac(3), guards: { arpGuard: 'On' } });
  await b.port('peer', { mac: mac(1) });
  for (let i = 1; i <= 10; i++) b.send('attacker', udp6(mac(3), `2001:db8::${i}`));
  assert.equal(b.take('peer').length, 4);
  assert.equal(b.drops('attacker')['address-quota'], 6);
  assert.equal(b.sw.portAddresses('attacker').length, 4);
  // Its own addresses keep working.
  b.send('attacker', udp6(mac(3), '2001:db8::1'));
  assert.equal(b.take('peer').length, 1);

  await b.port('victim', { mac: mac(2) });
  b.send('victim', udp6(mac(2), '2001:db8::100'));
  assert.deepEqual(b.sw.portAddresses('victim'), ['2001:db8::100']);
  b.clear();
  b.send('attacker', na(mac(3), '2001:db8::1', '2001:db8::100'));
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.drops('attacker')['nd-spoofing'], 1);

  // Claims unused for the ageing time free the quota (without waiting for the sweep).
  b.clock.advance(301_000);
  b.send('attacker', udp6(mac(3), '2001:db8::20'));
  assert.equal(b.take('peer').length, 1);
  assert.deepEqual(b.sw.portAddresses('attacker'), ['2001:db8::20']);
  await b.sw.close();
});

test('a full table fails closed for guarded ports and only stops learning for the others', async () => {
  const b = await Bench.create({ maxLearnedAddressesPerPort: 2, maxLearnedAddresses: 4 });
  await b.port('a', { mac: mac(1) });
  await b.port('b', { mac: mac(2) });
  await b.port('c', { mac: mac(3) });
  await b.port('g', { mac: mac(4), guards: { arpGuard: 'On' }, ipAddresses: [ip(40)] });
  for (const [port, m, n] of [['a', 1, 10], ['a', 1, 11], ['b', 2, 20], ['b', 2, 21]] as const) b.send(port, udp(mac(m), BCAST, ip(n), ip(99), 1, 2));
  b.clear();
  // c is unguarded: its frame passes, its address is simply not learned.
  b.send('c', udp(mac(3), BCAST, ip(30), ip(99), 1, 2));
  assert.equal(b.take('a').length, 1);
  assert.deepEqual(b.sw.portAddresses('c'), []);
  b.clear();
  // g is guarded: an address it cannot own is one it may not use, whether in IPv4 or ARP.
  b.send('g', udp(mac(4), BCAST, ip(41), ip(99), 1, 2));
  b.send('g', arp('request', mac(4), ip(41), ip(10)));
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.drops('g')['address-quota'], 2);
  // Configured addresses count against no quota.
  b.send('g', udp(mac(4), BCAST, ip(40), ip(99), 1, 2));
  assert.deepEqual(b.receivers(), ['a', 'b', 'c']);
  b.clear();
  // A removed port frees its claims.
  await b.sw.removePort('a');
  b.send('g', udp(mac(4), BCAST, ip(41), ip(99), 1, 2));
  assert.equal(b.take('b').length, 1);
  assert.deepEqual(b.sw.portAddresses('g').sort(), [ip(40), ip(41)]);
  await b.sw.close();
});

test('the quotas are validated switch settings, changed live by setSettings', async () => {
  const code = (f: () => unknown): string | undefined => { try { f(); } catch (e) { return e instanceof VmhostError ? e.code : 'other'; } return undefined; };
  assert.equal(code(() => completeSettings({ name: 's', type: 'Private', maxLearnedAddressesPerPort: 0 })), 'SWITCH_BAD_SETTINGS');
  assert.equal(code(() => completeSettings({ name: 's', type: 'Private', maxLearnedAddresses: 1.5 })), 'SWITCH_BAD_SETTINGS');
  assert.equal(code(() => completeSettings({ name: 's', type: 'Private', maxLearnedAddresses: 8, maxLearnedAddressesPerPort: 9 })), 'SWITCH_BAD_SETTINGS');
  const d = completeSettings({ name: 's', type: 'Private' });
  assert.equal(d.maxLearnedAddressesPerPort, 1024);
  assert.equal(d.maxLearnedAddresses, 65536);

  const b = await Bench.create();
  await b.port('g', { mac: mac(4), guards: { arpGuard: 'On' } });
  await b.port('peer', { mac: mac(1) });
  b.send('g', udp6(mac(4), '2001:db8::1'));
  b.sw.setSettings({ maxLearnedAddressesPerPort: 1 });
  b.send('g', udp6(mac(4), '2001:db8::2'));
  assert.equal(b.take('peer').length, 1);
  assert.equal(b.drops('g')['address-quota'], 1);
  assert.equal(b.sw.toConfig().settings.maxLearnedAddressesPerPort, 1);
  await b.sw.close();
});
