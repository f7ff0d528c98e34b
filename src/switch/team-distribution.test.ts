// The load-balancing algorithms on a fake clock: the address hash's levels and fallbacks
// (4-tuple → 2-tuple → MAC; IP fragments of one datagram alike), each level's spread and
// stickiness, HyperVPort's per-port placement across a failure, and Dynamic's flowlets —
// a busy flow never moves however idle the other member is, a flow idle for FLOWLET_GAP_MS
// moves to the least-loaded member, one idle a millisecond less does not, and a member
// leaving the pool moves its flows at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ETHERTYPE_IPV4, IPPROTO_UDP, IPV4_FLAG_MF, buildIpv4, parseIpv4Address } from '../packet/index.ts';
import { addressHash } from './flow-hash.ts';
import { FLOWLET_GAP_MS, distribution } from './team-distribution.ts';
import { BCAST, arp, eth, ip, mac, ping as icmp, udp } from './test-support.ts';

const POOL = ['NIC1', 'NIC2'];
const flow = (sport: number, srcIp = ip(1), dstIp = ip(9), srcMac = mac(1)) => udp(srcMac, mac(9), srcIp, dstIp, sport, 53);

test('address hash: 4-tuple, else 2-tuple, else MACs; fragments of one datagram hash alike', () => {
  assert.notEqual(addressHash(flow(1000), 'TransportPorts'), addressHash(flow(1001), 'TransportPorts'), 'ports count at TransportPorts');
  assert.equal(addressHash(flow(1000), 'IPAddresses'), addressHash(flow(1001), 'IPAddresses'), 'not at IPAddresses');
  assert.equal(addressHash(flow(1000, ip(1)), 'MacAddresses'), addressHash(flow(1001, ip(2), ip(3)), 'MacAddresses'), 'MacAddresses: MACs only');
  assert.notEqual(addressHash(flow(1000, ip(1)), 'IPAddresses'), addressHash(flow(1000, ip(2)), 'IPAddresses'));
  assert.notEqual(addressHash(flow(1000, ip(1), ip(9), mac(1)), 'MacAddresses'), addressHash(flow(1000, ip(1), ip(9), mac(2)), 'MacAddresses'));
  // Fallbacks: ICMP has no ports (2-tuple), ARP is not IP (MACs).
  const ping = icmp(mac(1), mac(9), ip(1), ip(9));
  assert.equal(addressHash(ping, 'TransportPorts'), addressHash(ping, 'IPAddresses'));
  assert.equal(addressHash(ping, 'TransportPorts'), addressHash(flow(5), 'IPAddresses'), 'same IP pair, same 2-tuple');
  const a = arp('request', mac(1), ip(1), ip(9));
  assert.equal(addressHash(a, 'TransportPorts'), addressHash(a, 'MacAddresses'));
  assert.equal(addressHash(a, 'IPAddresses'), addressHash(eth(mac(1), BCAST), 'MacAddresses'));
  // A first fragment carries the ports, a later one does not: both go by the 2-tuple.
  const frag = (flags: number, offset: number) => eth(mac(1), mac(9), {
    ethertype: ETHERTYPE_IPV4,
    payload: buildIpv4({ src: parseIpv4Address(ip(1)), dst: parseIpv4Address(ip(9)), protocol: IPPROTO_UDP, flags, fragmentOffset: offset, id: 7, payload: new Uint8Array(64).fill(3) }),
  });
  const first = addressHash(frag(IPV4_FLAG_MF, 0), 'TransportPorts');
  assert.equal(first, addressHash(frag(0, 8), 'TransportPorts'));
  assert.equal(first, addressHash(flow(1000), 'IPAddresses'));
});

test('TransportPorts / IPAddresses / MacAddresses: one flow one member, many flows over both', () => {
  for (const level of ['TransportPorts', 'IPAddresses', 'MacAddresses'] as const) {
    const d = distribution(level);
    d.setMembers(POOL);
    const vary = (n: number) => (level === 'TransportPorts' ? flow(1000 + n) : level === 'IPAddresses' ? flow(1000, ip(n + 10)) : flow(1000, ip(1), ip(9), mac(n + 10)));
    const picks = Array.from({ length: 64 }, (_, n) => d.pick(vary(n), undefined, POOL, 0));
    const on1 = picks.filter((p) => p === 'NIC1').length;
    assert.ok(on1 >= 16 && on1 <= 48, `${level}: 64 flows, ${on1} on NIC1`);
    for (let n = 0; n < 64; n++) assert.equal(d.pick(vary(n), undefined, POOL, 1000 + n), picks[n], `${level}: flow ${n} stays`);
    assert.equal(d.pick(vary(3), undefined, ['NIC2'], 0), 'NIC2', 'only the members in the pool');
  }
});

test('HyperVPort: ports spread evenly, keep their member, go elsewhere while it is out and come back', () => {
  const d = distribution('HyperVPort');
  d.setMembers(POOL);
  const home = ['a', 'b', 'c', 'd'].map((p) => d.pick(flow(1), p, POOL, 0));
  assert.deepEqual(home, ['NIC1', 'NIC2', 'NIC1', 'NIC2']);
  for (let n = 0; n < 20; n++) assert.equal(d.pick(flow(n), 'a', POOL, 0), 'NIC1', 'every flow of a port on its member');
  assert.equal(d.pick(flow(1), 'a', ['NIC2'], 0), 'NIC2', 'NIC1 failed');
  assert.equal(d.pick(flow(1), 'a', POOL, 0), 'NIC1', 'back home');
  d.setMembers(['NIC2', 'NIC3']);
  assert.equal(d.pick(flow(1), 'a', ['NIC2', 'NIC3'], 0), 'NIC3', 'NIC1 left the team: port a is placed again, on the emptier member');
});

test(`Dynamic: a flow moves only after ${FLOWLET_GAP_MS} ms idle, to the least-loaded member; a failed member's flows move at once`, () => {
  const d = distribution('Dynamic');
  d.setMembers(POOL);
  const big = flow(7000), other = flow(7001);
  // Two flows starting together land on different members.
  let now = 0;
  const homeBig = d.pick(big, undefined, POOL, now);
  const homeOther = d.pick(other, undefined, POOL, now);
  assert.notEqual(homeBig, homeOther);
  // `other` stops; `big` sends every gap-1 ms for 5 s: never moves, though its member is busier.
  for (now = 1; now < 5000; now += FLOWLET_GAP_MS - 1) assert.equal(d.pick(big, undefined, POOL, now), homeBig, `no move without a gap (t=${now})`);
  // A gap of exactly FLOWLET_GAP_MS: the next frame starts a flowlet on the idle member.
  now += FLOWLET_GAP_MS;
  const moved = d.pick(big, undefined, POOL, now);
  assert.equal(moved, homeOther, 'moved at the gap to the least-loaded member');
  for (let i = 0; i < 50; i++) assert.equal(d.pick(big, undefined, POOL, ++now), moved, 'and stays there while busy');
  // Its member leaves the pool (failed): it moves with no gap.
  assert.equal(d.pick(big, undefined, [homeBig], ++now), homeBig);
});

test('Dynamic: many flows with gaps keep both members loaded', () => {
  const d = distribution('Dynamic');
  d.setMembers(POOL);
  const bytes = new Map(POOL.map((m) => [m, 0]));
  let now = 0;
  for (let round = 0; round < 40; round++) {
    for (let f = 0; f < 8; f++) {
      const frame = flow(9000 + f);
      for (let i = 0; i < (f + 1) * 5; i++) { const m = d.pick(frame, undefined, POOL, now); bytes.set(m, bytes.get(m)! + frame.length); }
    }
    now += FLOWLET_GAP_MS * 2;
  }
  const [b1, b2] = POOL.map((m) => bytes.get(m)!) as [number, number];
  assert.ok(Math.min(b1, b2) / Math.max(b1, b2) > 0.7, `bytes per member ${b1} / ${b2}`);
});
