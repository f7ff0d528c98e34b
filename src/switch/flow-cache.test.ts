// The microflow cache (flow-cache.ts, switch.ts forwardCached): a flow's later frames hit it;
// each change its decision depends on takes effect on the very next frame (MAC entry moved,
// aged or flushed, port policy, ACLs, extensions, ports removed and added, settings); floods
// are never cached; stateful ACLs and the ARP guard stay exact per frame; and a differential
// run — one random sequence of frames, policy changes and clock steps fed to a switch with the
// cache and to one without — gives the same frames, counters, meters, MAC table, address
// claims and events throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExtendedAcl, PortAcl, PortPolicyPatch } from './index.ts';
import { registerExtension } from './index.ts';
import { buildIpv4, parseIpv4Address, ETHERTYPE_IPV4, IPPROTO_ICMPV6, IPPROTO_UDP } from '../packet/index.ts';
import { BCAST, Bench, ip, mac, udp, tcp, arp, eth, dhcpOffer } from './test-support.ts';

registerExtension({ name: 'test.flow-drop', type: 'filter', description: 'drops every frame', create: () => ({ ingress: () => false }) });

const hits = (b: Bench): number => b.sw.flowCacheStats()!.hits;

/** Ports a and b with static MACs 1 and 2, b learned; the a → b flow cached. */
async function pair(policyA: PortPolicyPatch = {}, policyB: PortPolicyPatch = {}): Promise<Bench> {
  const b = await Bench.create();
  await b.port('a', { mac: mac(1), ...policyA });
  await b.port('b', { mac: mac(2), ...policyB });
  await b.port('c', { mac: mac(3) });
  b.send('b', udp(mac(2), BCAST, ip(2), ip(255), 9, 9));
  b.send('a', udp(mac(1), mac(2), ip(1), ip(2), 1000, 2000));
  b.clear();
  return b;
}

const flow = (): Uint8Array => udp(mac(1), mac(2), ip(1), ip(2), 1000, 2000);

/** The first fragment of a UDP datagram to port 67 (the DHCP guard drops it: RFC 7113). */
function dhcpFirstFragment(srcMac: string, dstMac: string, srcIp: string, dstIp: string): Uint8Array {
  const udpHead = new Uint8Array(16);
  udpHead[1] = 68; udpHead[3] = 67; udpHead[5] = 200; // ports 68 → 67, UDP length 200 (the whole datagram)
  return eth(srcMac, dstMac, { ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: parseIpv4Address(srcIp), dst: parseIpv4Address(dstIp), protocol: IPPROTO_UDP, flags: 0x1, payload: udpHead }) });
}

/** An ICMPv6 message of `type` carried in IPv4 (protocol 58): the guards judge it by its type whatever the IP version. */
function icmpv6InIpv4(srcMac: string, dstMac: string, srcIp: string, dstIp: string, type: number): Uint8Array {
  const icmp = new Uint8Array(type === 134 ? 16 : type === 137 ? 40 : 24); // RA, Redirect: their fixed part, no options
  icmp[0] = type;
  return eth(srcMac, dstMac, { ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: parseIpv4Address(srcIp), dst: parseIpv4Address(dstIp), protocol: IPPROTO_ICMPV6, payload: icmp }) });
}

test('a unicast flow hits the cache after its first frame; counters as without it', async () => {
  const b = await pair();
  const h0 = hits(b);
  for (let i = 0; i < 5; i++) b.send('a', flow());
  assert.equal(hits(b) - h0, 5);
  assert.equal(b.take('b').length, 5);
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.sw.portStats('b').txFrames, 6);
  assert.equal(b.sw.portStats('a').rxFrames, 6);
});

test('broadcasts, unknown unicast, ARP, tagged frames and non-IP frames are never cached', async () => {
  const b = await pair({}, { vlan: { mode: 'Trunk', allowedVlanIdList: [5], nativeVlanId: 0 } });
  const h0 = hits(b);
  for (let i = 0; i < 3; i++) {
    b.send('a', udp(mac(1), BCAST, ip(1), ip(255), 1, 2));
    b.send('a', udp(mac(1), mac(9), ip(1), ip(9), 1, 2));
    b.send('a', arp('request', mac(1), ip(1), ip(2)));
    b.send('a', eth(mac(1), mac(2)));
    b.send('b', udp(mac(2), mac(1), ip(2), ip(1), 1, 2, undefined, 0));
  }
  assert.equal(hits(b), h0);
  assert.equal(b.take('c').length, 9, 'broadcast, unknown unicast and ARP flood every time');
  assert.equal(b.take('a').length, 3);
});

test('the destination MAC moving to another port, or ageing out, takes effect on the next frame', async () => {
  const b = await pair();
  b.sw.setPortPolicy('c', { guards: { macAddressSpoofing: 'On' } });
  b.send('a', flow());
  assert.equal(b.take('b').length, 1);
  b.send('c', udp(mac(2), BCAST, ip(2), ip(255), 9, 9)); // mac 2 now behind c
  b.clear();
  b.send('a', flow());
  assert.deepEqual(b.receivers(), ['c']);
  b.clear();
  b.clock.advance(301_000); // past the 300 s ageing, no sweep ran
  b.send('a', flow());
  assert.deepEqual(b.receivers(), ['b', 'c'], 'aged out: flooded');
});

test('the source MAC moving away and back, and a flushed port, are re-learned', async () => {
  const b = await pair({ guards: { macAddressSpoofing: 'On' } }, {});
  await b.port('d', { guards: { macAddressSpoofing: 'On' } });
  b.send('a', flow());
  b.send('d', udp(mac(1), mac(2), ip(1), ip(2), 1000, 2000)); // mac 1 moves to d
  assert.equal(b.sw.macTable().find((e) => e.mac === 0x525400000001)?.port, 'd');
  b.send('a', flow()); // and back
  assert.equal(b.sw.macTable().find((e) => e.mac === 0x525400000001)?.port, 'a');
  await b.sw.removePort('b');
  b.clear();
  b.send('a', flow());
  assert.deepEqual(b.receivers(), ['c', 'd'], 'removed destination: flooded to the rest');
});

test('port policy, ACL, extension and settings changes take effect on the next frame', async () => {
  const b = await pair();
  b.send('a', flow());
  b.take('b');
  // VLAN of the destination.
  b.sw.setPortPolicy('b', { vlan: { mode: 'Access', vlanId: 7 } });
  b.send('b', udp(mac(2), BCAST, ip(2), ip(255), 9, 9));
  b.send('a', flow());
  assert.deepEqual(b.take('b'), []);
  b.sw.setPortPolicy('b', { vlan: { mode: 'Untagged' } });
  b.send('b', udp(mac(2), BCAST, ip(2), ip(255), 9, 9));
  b.clear();
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  // An outbound ACL on the source, then an inbound one on the destination.
  const deny: ExtendedAcl = { direction: 'Outbound', action: 'Deny', remoteIPAddress: ip(2), weight: 10 };
  b.sw.setPortPolicy('a', { extendedAcls: [deny] });
  b.send('a', flow());
  assert.deepEqual(b.take('b'), []);
  assert.equal(b.drops('a')['acl-deny'], 1);
  b.sw.setPortPolicy('a', { extendedAcls: [] });
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  b.sw.setPortPolicy('b', { acls: [{ direction: 'Inbound', action: 'Deny', remoteIPAddress: ip(1) }] });
  b.send('a', flow());
  assert.deepEqual(b.take('b'), []);
  assert.equal(b.drops('b')['acl-deny'], 1);
  b.sw.setPortPolicy('b', { acls: [] });
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  // A filter extension, enabled then disabled.
  b.sw.addExtension('test.flow-drop');
  b.send('a', flow());
  assert.deepEqual(b.take('b'), []);
  b.sw.disableExtension('test.flow-drop');
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  // Settings: a shorter ageing makes the destination's entry old at once.
  b.clock.advance(20_000);
  b.sw.setSettings({ macAgeingSeconds: 10 });
  b.send('a', flow());
  assert.deepEqual(b.receivers(), ['b', 'c']);
});

test('a removed port and a new one under its id: frames go to the new one once it is learned', async () => {
  const b = await pair();
  b.send('a', flow()); b.send('a', flow());
  await b.sw.removePort('b');
  await b.port('b', { mac: mac(2) });
  b.send('b', udp(mac(2), BCAST, ip(2), ip(255), 9, 9));
  b.clear();
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  assert.equal(b.sw.portStats('b').txFrames, 2);
});

test('Meter ACLs count every frame of a cached flow, both sides; a stateful ACL is checked per frame', async () => {
  const meter: PortAcl = { direction: 'Both', action: 'Meter', remoteIPAddress: '10.0.0.0/24' };
  const b = await pair({ acls: [meter] }, { acls: [meter] });
  const h0 = hits(b);
  for (let i = 0; i < 4; i++) b.send('a', flow());
  assert.ok(hits(b) - h0 >= 3);
  const len = flow().length;
  assert.deepEqual(b.sw.meterCounters('a')[0], { remoteAddress: '10.0.0.0/24', inboundFrames: 1, inboundBytes: 60, outboundFrames: 5, outboundBytes: 5 * len });
  assert.equal(b.sw.meterCounters('b')[0]!.inboundFrames, 5);

  // b allows outbound TCP statefully and denies all inbound TCP: a's answer passes only within the flow.
  const s = await pair({}, {
    extendedAcls: [
      { direction: 'Outbound', action: 'Allow', protocol: 'TCP', weight: 10, stateful: true, idleSessionTimeout: 60 },
      { direction: 'Inbound', action: 'Deny', protocol: 'TCP', weight: 1 },
    ],
  });
  const answer = (): Uint8Array => tcp(mac(1), mac(2), ip(1), ip(2), 80, 5555, 0x10);
  s.send('a', answer()); s.send('a', answer());
  assert.deepEqual(s.take('b'), [], 'no flow yet');
  s.send('b', tcp(mac(2), mac(1), ip(2), ip(1), 5555, 80, 0x02));
  s.send('a', answer()); s.send('a', answer());
  assert.equal(s.take('b').length, 2);
  s.clock.advance(61_000);
  s.send('a', answer());
  assert.deepEqual(s.take('b'), [], 'the flow lapsed: denied again');
  assert.equal(s.drops('b')['acl-deny'], 3);
});

test('ARP guard: a cached flow whose source address the port may no longer claim is dropped on its next frame', async () => {
  const b = await pair({ guards: { arpGuard: 'On' } });
  b.sw.setSettings({ maxLearnedAddressesPerPort: 1 });
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  assert.deepEqual(b.sw.portAddresses('a'), [ip(1)]);
  // The port's one learned address lapses and a newer one takes its place in the quota: the old one may not be used again.
  b.clock.advance(301_000);
  b.send('a', udp(mac(1), BCAST, ip(5), ip(255), 1, 2));
  assert.deepEqual(b.sw.portAddresses('a'), [ip(5)]);
  b.send('b', udp(mac(2), BCAST, ip(2), ip(255), 9, 9)); // b's MAC entry young again: the cached flow stays good
  b.clear();
  const h0 = hits(b);
  b.send('a', flow());
  assert.equal(hits(b), h0 + 1, 'a cache hit');
  assert.deepEqual(b.take('b'), []);
  assert.equal(b.drops('a')['address-quota'], 1);
});

test('frames the guards judge beyond the key never ride a cached flow: ICMPv6 RA in IPv4, a DHCP offer, a fragment', async () => {
  const b = await pair({ guards: { routerGuard: 'On', dhcpGuard: 'On' } });
  b.send('a', flow()); b.send('a', flow());
  assert.equal(b.take('b').length, 2);
  b.send('a', icmpv6InIpv4(mac(1), mac(2), ip(1), ip(2), 134));
  b.send('a', dhcpOffer(mac(1), ip(1), mac(2), mac(2)));
  b.send('a', dhcpFirstFragment(mac(1), mac(2), ip(1), ip(2)));
  assert.deepEqual(b.take('b'), []);
  assert.deepEqual(b.drops('a'), { 'router-guard': 1, 'dhcp-guard': 2 });
});

/** A seeded PRNG (mulberry32): the differential run is the same every time. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One random run through a switch with the cache and one without, compared every 50 steps.
 * `acls`: policies with ACLs among the changes (then flows are mostly keyed on the 5-tuple);
 * without, every flow is keyed on L2 fields only, where a frame that differs beyond the key
 * meets a cached flow most often.
 */
async function differential(seed: number, acls: boolean): Promise<void> {
  const PORTS = ['p0', 'p1', 'p2', 'p3'];
  const on = await Bench.create({ macAgeingSeconds: 5, maxLearnedAddressesPerPort: 3 });
  const off = await Bench.create({ macAgeingSeconds: 5, maxLearnedAddressesPerPort: 3 }, false, false);
  for (const b of [on, off]) for (const [i, p] of PORTS.entries()) await b.port(p, i === 3 ? {} : { mac: mac(i + 1) });
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const macs = [mac(1), mac(2), mac(3), mac(4), mac(5)];
  const reset: PortPolicyPatch = { extendedAcls: [], acls: [], guards: { macAddressSpoofing: 'Off', arpGuard: 'Off', dhcpGuard: 'Off', routerGuard: 'Off' } };
  const choices: PortPolicyPatch[] = [
    reset,
    { guards: { macAddressSpoofing: 'On' } },
    { guards: { arpGuard: 'On' } },
    { guards: { dhcpGuard: 'On' } },
    { guards: { routerGuard: 'On' } },
    { acls: [{ direction: 'Both', action: 'Meter', remoteIPAddress: '10.0.0.0/29' }, { direction: 'Inbound', action: 'Meter', remoteMacAddress: mac(2) }] },
    { acls: [{ direction: 'Outbound', action: 'Deny', remoteIPAddress: ip(3) }] },
    { extendedAcls: [{ direction: 'Inbound', action: 'Deny', protocol: 'UDP', localPort: 7, weight: 5 }] },
    { extendedAcls: [{ direction: 'Outbound', action: 'Allow', protocol: 'UDP', weight: 9, stateful: true, idleSessionTimeout: 2 }, { direction: 'Inbound', action: 'Deny', protocol: 'UDP', weight: 1 }] },
  ];
  const policies = choices.filter((p) => acls || (p.acls === undefined && p.extendedAcls === undefined) || p === reset);
  policies.push(
    { vlan: { mode: 'Access', vlanId: 4 } },
    { vlan: { mode: 'Untagged' } },
    { mirroring: 'Source' },
    { mirroring: 'None' },
    { virtualSubnetId: 5000 },
    { virtualSubnetId: 0 },
  );
  let removed: string | null = null;
  /** Frames sent before, resent: a flow's later frames are what the cache is for. */
  const pool: [string, Uint8Array][] = [];
  const live = (): string[] => PORTS.filter((p) => p !== removed);
  for (let step = 0; step < 20000; step++) {
    const x = r();
    const both = (f: (b: Bench) => void): void => { f(on); f(off); };
    if (x < 0.6 && pool.length > 0) {
      const [src, frame] = pick(pool);
      if (src !== removed) both((b) => b.send(src, Uint8Array.prototype.slice.call(frame)));
    } else if (x < 0.9) {
      const src = pick(live());
      const srcMac = r() < 0.9 ? macs[PORTS.indexOf(src)] ?? pick(macs) : pick(macs);
      const y = r();
      const dstMac = y < 0.85 ? pick(macs) : y < 0.95 ? BCAST : mac(0x33);
      const sip = r() < 0.9 ? ip(1 + PORTS.indexOf(src)) : ip(1 + Math.floor(r() * 8));
      const dip = ip(1 + Math.floor(r() * 5));
      const z = r();
      let frame = z < 0.7 ? udp(srcMac, dstMac, sip, dip, pick([7, 1000, 2000]), pick([7, 1000, 2000]), new Uint8Array(Math.floor(r() * 64)))
        : z < 0.8 ? tcp(srcMac, dstMac, sip, dip, 1000, 80, 0x10)
          : z < 0.88 ? arp('reply', srcMac, sip, dip, { dst: dstMac })
            : z < 0.9 ? dhcpOffer(srcMac, sip, dstMac, dstMac)
              : z < 0.91 ? dhcpFirstFragment(srcMac, dstMac, sip, dip)
              : z < 0.93 ? icmpv6InIpv4(srcMac, dstMac, sip, dip, pick([128, 134, 135, 137]))
              : z < 0.97 ? eth(srcMac, dstMac)
                : udp(srcMac, dstMac, sip, dip, 1, 2, undefined, 4);
      // Now and then a malformed one: cut short, or its IPv4 total length beyond the frame.
      const w = r();
      if (w < 0.03) frame = frame.subarray(0, 14 + Math.floor(r() * (frame.length - 14)));
      else if (w < 0.05 && frame.length > 18) frame[17] = 0xff;
      both((b) => b.send(src, Uint8Array.prototype.slice.call(frame)));
      if (pool.length < 24) pool.push([src, frame]); else pool[Math.floor(r() * 24)] = [src, frame];
    } else if (x < 0.94) {
      const ms = Math.floor(r() * 3000);
      both((b) => b.clock.advance(ms));
    } else if (x < 0.98) {
      const p = pick(live()), pol = pick(policies);
      both((b) => b.sw.setPortPolicy(p, pol));
    } else if (x < 0.99) {
      if (removed === null) { const p = pick(PORTS); removed = p; for (const b of [on, off]) await b.sw.removePort(p); } else {
        const p = removed; removed = null;
        for (const b of [on, off]) await b.port(p, { mac: mac(PORTS.indexOf(p) + 1) });
      }
    } else if (x < 0.995) {
      const enable = r() < 0.5;
      const has = on.sw.extensions().length > 0;
      both((b) => { if (enable && !has) b.sw.addExtension('vmhost.flow-sampler'); else if (!enable && has) b.sw.removeExtension('vmhost.flow-sampler'); });
    } else {
      const s = pick([1, 5, 30]);
      both((b) => b.sw.setSettings({ macAgeingSeconds: s }));
    }
    if (step % 50 === 0 || step === 19999) {
      for (const p of live()) {
        assert.deepEqual(on.take(p).map((f) => Buffer.from(f).toString('hex')), off.take(p).map((f) => Buffer.from(f).toString('hex')), `frames to ${p} by step ${step}`);
        assert.deepEqual(on.sw.portStats(p), off.sw.portStats(p), `counters of ${p} at step ${step}`);
        assert.deepEqual(on.sw.meterCounters(p), off.sw.meterCounters(p), `meters of ${p} at step ${step}`);
        assert.deepEqual(on.sw.portAddresses(p), off.sw.portAddresses(p), `address claims of ${p} at step ${step}`);
      }
      assert.deepEqual(on.sw.macTable(), off.sw.macTable(), `MAC table at step ${step}`);
      assert.deepEqual(on.events, off.events, `events by step ${step}`);
      assert.deepEqual(on.sw.stats(), off.sw.stats());
    }
  }
  const st = on.sw.flowCacheStats()!;
  assert.ok(st.hits > 400, `the cache was used (${st.hits} hits, ${st.misses} misses)`);
  await on.sw.close(); await off.sw.close();
}

test('differential: the same random frames and changes through a switch with the cache and one without', async () => {
  await differential(17, true);
  await differential(23, false);
});
