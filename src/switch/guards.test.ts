// Port guards, each on and off: MAC spoofing, DHCP guard, router guard, ARP/ND spoofing
// (the ownership rule of ip-owners.ts: configured, first seen, ageing), and their events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildEthernet, buildIpv6, buildUdp, buildRouterAdvertisement, buildNeighborAdvertisement, setIcmpv6Checksum, parseMac, parseIpv6Address,
  ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPPROTO_UDP,
} from '../packet/index.ts';
import { BCAST, Bench, arp, dhcpOffer, eth, ip, mac, ping, udp } from './test-support.ts';

function icmpv6Frame(srcMac: string, srcIp: string, dstIp: string, msg: Uint8Array): Uint8Array {
  const s = parseIpv6Address(srcIp), d = parseIpv6Address(dstIp);
  const body = setIcmpv6Checksum(msg, s, d);
  return buildEthernet({ src: parseMac(srcMac), dst: parseMac('33:33:00:00:00:01'), ethertype: ETHERTYPE_IPV6,
    payload: buildIpv6({ src: s, dst: d, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: body }) });
}

test('MacAddressSpoofing Off drops foreign source MACs (and forged ARP sender MACs); On lets them through and learns them', async () => {
  const b = await Bench.create();
  await b.port('a', { mac: mac(1) });
  await b.port('b', { mac: mac(2) });
  b.send('a', eth(mac(1), BCAST));
  b.send('a', eth(mac(9), BCAST));
  b.send('a', arp('request', mac(9), ip(1), ip(2), { src: mac(1) }));
  assert.equal(b.take('b').length, 1);
  assert.equal(b.drops('a')['mac-spoofing'], 2);
  assert.deepEqual(b.events.at(-1), { type: 'guard-drop', switch: 'test', port: 'a', reason: 'mac-spoofing' });
  b.sw.setPortPolicy('a', { guards: { macAddressSpoofing: 'On' } });
  b.send('a', eth(mac(9), BCAST));
  assert.equal(b.take('b').length, 1);
  b.send('b', eth(mac(2), mac(9)));
  assert.equal(b.take('a').length, 1, 'the spoofed MAC was learned on a');
  await b.sw.close();
});

test('without a configured MAC the first source MAC becomes the port MAC', async () => {
  const b = await Bench.create();
  await b.port('a');
  await b.port('b');
  b.send('a', eth(mac(5), BCAST));
  b.send('a', eth(mac(6), BCAST));
  assert.equal(b.take('b').length, 1);
  assert.equal(b.sw.port('a').mac, 0x525400000005);
  await b.sw.close();
});

test('DhcpGuard drops server messages from a guarded port only; client messages pass', async () => {
  const b = await Bench.create();
  await b.port('rogue', { mac: mac(1) });
  await b.port('victim', { mac: mac(2) });
  b.send('rogue', dhcpOffer(mac(1), ip(1), mac(2)));
  assert.equal(b.take('victim').length, 1, 'guard off: the offer passes');
  b.sw.setPortPolicy('rogue', { guards: { dhcpGuard: 'On' } });
  b.send('rogue', dhcpOffer(mac(1), ip(1), mac(2)));
  assert.equal(b.take('victim').length, 0);
  assert.equal(b.drops('rogue')['dhcp-guard'], 1);
  // From another source port too, and DHCPv6 ADVERTISE (547 → 546).
  b.send('rogue', udp(mac(1), BCAST, ip(1), '255.255.255.255', 1234, 68, dhcpOffer(mac(1), ip(1), mac(2)).subarray(42)));
  const s6 = parseIpv6Address('fe80::1'), d6 = parseIpv6Address('ff02::1:2');
  const adv = buildUdp({ srcPort: 547, dstPort: 546, payload: new Uint8Array([2, 0, 0, 1]), src: s6, dst: d6 });
  b.send('rogue', buildEthernet({ src: parseMac(mac(1)), dst: parseMac('33:33:00:01:00:02'), ethertype: ETHERTYPE_IPV6,
    payload: buildIpv6({ src: s6, dst: d6, nextHeader: IPPROTO_UDP, payload: adv }) }));
  assert.equal(b.take('victim').length, 0);
  assert.equal(b.drops('rogue')['dhcp-guard'], 3);
  b.sw.setPortPolicy('victim', { guards: { dhcpGuard: 'On' } });
  b.send('victim', ping(mac(2), mac(1), ip(2), ip(1)));
  assert.equal(b.take('rogue').length, 1);
  await b.sw.close();
});

test('RouterGuard drops RAs and Redirects; other ICMPv6 passes', async () => {
  const b = await Bench.create();
  await b.port('r', { mac: mac(1) });
  await b.port('h', { mac: mac(2) });
  const ra = icmpv6Frame(mac(1), 'fe80::1', 'ff02::1', buildRouterAdvertisement({ routerLifetime: 1800 }));
  b.send('r', ra);
  assert.equal(b.take('h').length, 1);
  b.sw.setPortPolicy('r', { guards: { routerGuard: 'On' } });
  b.send('r', ra);
  assert.equal(b.take('h').length, 0);
  assert.equal(b.drops('r')['router-guard'], 1);
  await b.sw.close();
});

test('ARP guard: ownership by first use or configuration; forged replies/gratuitous ARPs dropped; ageing frees an address', async () => {
  const b = await Bench.create({ macAgeingSeconds: 300 });
  await b.port('victim', { mac: mac(2) });
  await b.port('attacker', { mac: mac(3), guards: { arpGuard: 'On' } });
  await b.port('peer', { mac: mac(1), ipAddresses: [ip(1)] });
  b.send('victim', arp('request', mac(2), ip(2), ip(1)));
  b.clear();
  b.send('attacker', arp('reply', mac(3), ip(2), ip(1), { dst: mac(1), tha: mac(1) }));
  b.send('attacker', arp('request', mac(3), ip(2), ip(2)));
  b.send('attacker', arp('request', mac(3), ip(1), ip(1)));
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.drops('attacker')['arp-spoofing'], 3, 'learned (victim) and configured (peer) addresses both protected');
  assert.deepEqual(b.sw.portAddresses('victim'), [ip(2)]);
  // The attacker's own address and ARP probes (sender 0.0.0.0) are fine.
  b.send('attacker', arp('request', mac(3), ip(3), ip(1)));
  b.send('attacker', arp('request', mac(3), '0.0.0.0', ip(9)));
  assert.equal(b.take('peer').length, 2);
  // An address unused for the ageing time may be taken over (it moved).
  b.clock.advance(301_000);
  b.send('attacker', arp('request', mac(3), ip(2), ip(2)));
  assert.equal(b.take('peer').length, 1);
  assert.equal(b.drops('attacker')['arp-spoofing'], 3);
  // Configured addresses never age.
  b.send('attacker', arp('request', mac(3), ip(1), ip(1)));
  assert.equal(b.drops('attacker')['arp-spoofing'], 4);
  // Guard off: the forgery passes.
  b.sw.setPortPolicy('attacker', { guards: { arpGuard: 'Off' } });
  b.clear();
  b.send('attacker', arp('request', mac(3), ip(1), ip(1)));
  assert.deepEqual(b.receivers(), ['peer', 'victim']);
  await b.sw.close();
});

test('ND guard: an NA for another port’s IPv6 address is dropped', async () => {
  const b = await Bench.create();
  await b.port('victim', { mac: mac(2), ipAddresses: ['fe80::2'] });
  await b.port('attacker', { mac: mac(3), guards: { arpGuard: 'On' } });
  const na = (target: string): Uint8Array => icmpv6Frame(mac(3), 'fe80::3', 'ff02::1',
    buildNeighborAdvertisement({ target: parseIpv6Address(target), flags: 0x20, options: [{ type: 2, mac: parseMac(mac(3)) }] }));
  b.send('attacker', na('fe80::2'));
  assert.equal(b.take('victim').length, 0);
  assert.equal(b.drops('attacker')['nd-spoofing'], 1);
  assert.deepEqual(b.sw.portAddresses('victim'), ['fe80::2']);
  b.send('attacker', na('fe80::3'));
  assert.equal(b.take('victim').length, 1);
  await b.sw.close();
});
