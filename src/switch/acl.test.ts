// Port ACLs: extended ACL weight ordering and directions, prefixes/protocol/ports, stateful
// flows with idle timeout, 2012 ACLs (most specific wins) and Meter counters exact to the byte,
// deny events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN } from '../packet/index.ts';
import { Bench, ip, mac, ping, tcp, udp } from './test-support.ts';

async function pair(): Promise<Bench> {
  const b = await Bench.create();
  await b.port('vm', { mac: mac(1) });
  await b.port('peer', { mac: mac(2) });
  await b.port('other', { mac: mac(3) });
  b.send('peer', ping(mac(2), mac(1), ip(2), ip(1)));
  b.send('other', ping(mac(3), mac(1), ip(3), ip(1)));
  b.send('vm', ping(mac(1), mac(2), ip(1), ip(2)));
  b.clear();
  return b;
}

test('extended ACLs: higher weight first, direction, prefixes, protocol and ports', async () => {
  const b = await pair();
  b.sw.setPortPolicy('vm', {
    extendedAcls: [
      { direction: 'Outbound', action: 'Deny', remoteIPAddress: '10.0.0.0/24', weight: 1 },
      { direction: 'Outbound', action: 'Allow', remoteIPAddress: `${ip(2)}/32`, protocol: 'UDP', remotePort: '50-60', weight: 10 },
      { direction: 'Inbound', action: 'Deny', protocol: 'ICMP', localIPAddress: ip(1), weight: 5 },
    ],
  });
  b.send('vm', udp(mac(1), mac(2), ip(1), ip(2), 1000, 53));
  b.send('vm', udp(mac(1), mac(2), ip(1), ip(2), 1000, 61));
  b.send('vm', udp(mac(1), mac(3), ip(1), ip(3), 1000, 53));
  b.send('vm', ping(mac(1), mac(2), ip(1), ip(2)));
  assert.equal(b.take('peer').length, 1, 'only UDP to .2 ports 50–60 (weight 10 beats the weight-1 deny)');
  assert.equal(b.take('other').length, 0);
  assert.equal(b.drops('vm')['acl-deny'], 3);
  b.send('peer', ping(mac(2), mac(1), ip(2), ip(1)));
  b.send('peer', udp(mac(2), mac(1), ip(2), ip(1), 53, 1000));
  assert.equal(b.take('vm').length, 1, 'inbound ICMP denied, UDP allowed');
  assert.equal(b.drops('vm')['acl-deny'], 4);
  const ev = b.events.filter((e) => (e as { type: string }).type === 'acl-deny');
  assert.equal(ev.length, 4);
  assert.deepEqual((ev.at(-1) as { direction: string }).direction, 'Inbound');
  // ARP and other non-IP frames are not subject to extended ACLs.
  assert.throws(() => b.sw.setPortPolicy('vm', { extendedAcls: [{ direction: 'Outbound', action: 'Allow', weight: 1 }, { direction: 'Outbound', action: 'Deny', weight: 1 }] }), /weight 1/);
  await b.sw.close();
});

test('stateful ACL: an allowed outbound flow lets its return traffic in until it idles out', async () => {
  const b = await pair();
  b.sw.setPortPolicy('vm', {
    extendedAcls: [
      { direction: 'Outbound', action: 'Allow', remoteIPAddress: ip(2), protocol: 'TCP', remotePort: 80, weight: 10, stateful: true, idleSessionTimeout: 60 },
      { direction: 'Outbound', action: 'Deny', protocol: 'TCP', weight: 1 },
      { direction: 'Inbound', action: 'Deny', protocol: 'TCP', weight: 1 },
    ],
  });
  b.send('peer', tcp(mac(2), mac(1), ip(2), ip(1), 80, 40000, TCP_SYN | TCP_ACK));
  assert.equal(b.take('vm').length, 0, 'unsolicited inbound dropped');
  b.send('vm', tcp(mac(1), mac(2), ip(1), ip(2), 40000, 80, TCP_SYN));
  assert.equal(b.take('peer').length, 1);
  b.send('peer', tcp(mac(2), mac(1), ip(2), ip(1), 80, 40000, TCP_SYN | TCP_ACK));
  assert.equal(b.take('vm').length, 1, 'the return flow passes the inbound deny');
  b.send('vm', tcp(mac(1), mac(3), ip(1), ip(3), 40001, 80, TCP_SYN));
  assert.equal(b.take('other').length, 0, 'outbound TCP elsewhere denied');
  b.clock.advance(59_000);
  b.send('peer', tcp(mac(2), mac(1), ip(2), ip(1), 80, 40000, TCP_ACK));
  assert.equal(b.take('vm').length, 1, 'traffic keeps the flow alive');
  b.clock.advance(61_000);
  b.send('peer', tcp(mac(2), mac(1), ip(2), ip(1), 80, 40000, TCP_ACK));
  assert.equal(b.take('vm').length, 0, 'after the idle timeout the flow is gone');
  b.send('peer', tcp(mac(2), mac(1), ip(2), ip(1), 80, 40001, TCP_SYN | TCP_ACK));
  assert.equal(b.take('vm').length, 0, 'another port pair never had a flow');
  assert.equal(b.drops('vm')['acl-deny'], 4);
  await b.sw.close();
});

test('2012 ACLs: most specific wins, MAC rules, Meter counts bytes per remote address exactly', async () => {
  const b = await pair();
  b.sw.setPortPolicy('vm', {
    acls: [
      { direction: 'Both', action: 'Deny', remoteIPAddress: '10.0.0.0/24' },
      { direction: 'Both', action: 'Allow', remoteIPAddress: `${ip(2)}/32` },
      { direction: 'Outbound', action: 'Deny', remoteMacAddress: mac(3) },
      { direction: 'Both', action: 'Meter', remoteIPAddress: `${ip(2)}/32` },
      { direction: 'Both', action: 'Meter', remoteIPAddress: 'Any' },
    ],
  });
  let outBytes = 0, inBytes = 0;
  for (let i = 0; i < 50; i++) {
    const f = udp(mac(1), mac(2), ip(1), ip(2), 1000, 2000, new Uint8Array(100 + i));
    outBytes += f.length;
    b.send('vm', f);
    const r = udp(mac(2), mac(1), ip(2), ip(1), 2000, 1000, new Uint8Array(7 * i));
    inBytes += r.length;
    b.send('peer', r);
  }
  b.send('vm', udp(mac(1), mac(3), ip(1), ip(3), 1, 2));
  b.send('vm', udp(mac(1), mac(3), ip(1), '192.168.1.1', 1, 2));
  assert.equal(b.take('peer').length, 50);
  assert.equal(b.take('vm').length, 50);
  assert.equal(b.take('other').length, 0, '.3 denied by prefix, the MAC rule denies the rest toward mac(3)');
  assert.equal(b.drops('vm')['acl-deny'], 2);
  const [m2, any] = b.sw.meterCounters('vm');
  assert.deepEqual(m2, { remoteAddress: `${ip(2)}/32`, outboundFrames: 50, outboundBytes: outBytes, inboundFrames: 50, inboundBytes: inBytes });
  assert.equal(any!.outboundBytes, outBytes, 'denied frames are not metered');
  // Counters survive a policy change.
  b.sw.setPortPolicy('vm', { guards: { dhcpGuard: 'On' } });
  assert.equal(b.sw.meterCounters('vm')[0]!.outboundBytes, outBytes);
  await b.sw.close();
});

test('verdict cache: a flow answered from the cache follows every policy change at its next frame; Meter counts every frame', async () => {
  const b = await pair();
  // Enough rules for a cache (acl-verdict-cache.ts); the flow matches only the last Allow.
  const denies = Array.from({ length: 10 }, (_, i) => ({ direction: 'Outbound' as const, action: 'Deny' as const, remoteIPAddress: `192.168.${i}.0/24`, weight: 100 + i }));
  const allow = { direction: 'Outbound' as const, action: 'Allow' as const, remoteIPAddress: '10.0.0.0/8', weight: 1 };
  const meter = { direction: 'Both' as const, action: 'Meter' as const, remoteIPAddress: 'Any' };
  b.sw.setPortPolicy('vm', { extendedAcls: [...denies, allow], acls: [meter] });
  const flow = (): Uint8Array => udp(mac(1), mac(2), ip(1), ip(2), 1000, 53);
  for (let i = 0; i < 20; i++) b.send('vm', flow());
  assert.equal(b.take('peer').length, 20);
  // A Deny of higher weight: the very next frame of the cached flow is denied.
  b.sw.setPortPolicy('vm', { extendedAcls: [...denies, allow, { direction: 'Outbound', action: 'Deny', remoteIPAddress: `${ip(2)}/32`, remotePort: 53, weight: 500 }], acls: [meter] });
  b.send('vm', flow());
  assert.equal(b.take('peer').length, 0);
  assert.equal(b.drops('vm')['acl-deny'], 1);
  // A change elsewhere in the policy (a guard) keeps the rules' verdict.
  b.sw.setPortPolicy('vm', { guards: { dhcpGuard: 'On' } });
  b.send('vm', flow());
  assert.equal(b.drops('vm')['acl-deny'], 2);
  // The Deny gone: allowed again.
  b.sw.setPortPolicy('vm', { extendedAcls: [...denies, allow] });
  for (let i = 0; i < 5; i++) b.send('vm', flow());
  assert.equal(b.take('peer').length, 5);
  assert.equal(b.sw.meterCounters('vm')[0]!.outboundFrames, 25, 'metered: the 20 + 5 allowed frames, each one');
  await b.sw.close();
});
