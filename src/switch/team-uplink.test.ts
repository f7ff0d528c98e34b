// NIC teaming on real UDP sockets (127.0.0.1): a switch whose uplink is a team of two members,
// each facing its own peer switch. HyperVPort keeps each VM port on one member and spreads
// ports over both; TransportPorts spreads flows and keeps each flow on one member; keepalives
// keep a silent link Active and never reach a switch as frames; a member whose peer goes
// silent is Failed after ~3 s and its traffic moves, then comes back; a disabled member is
// Failed at once; a one-member team works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualSwitch, type TeamSettings } from './index.ts';
import { BCAST, eth, ip, mac, udp, until } from './test-support.ts';

const lo = (localPort: number, remotePort: number) => ({ localAddress: '127.0.0.1', localPort, remoteAddress: '127.0.0.1', remotePort });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rig() {
  const base = 40000 + Math.floor(Math.random() * 20000);
  const team = (algorithm: TeamSettings['algorithm'], enabled = [true, true]): TeamSettings => ({
    team: 'Team1', algorithm, members: [{ name: 'NIC1', uplink: lo(base, base + 1), enabled: enabled[0]! }, { name: 'NIC2', uplink: lo(base + 2, base + 3), enabled: enabled[1]! }],
  });
  const sw = await VirtualSwitch.create({ name: 'ext', type: 'External', uplink: team('HyperVPort') });
  /** Source MACs of the frames each peer received, in order. */
  const seen: Record<'p1' | 'p2', string[]> = { p1: [], p2: [] };
  const peer = async (n: 1 | 2) => {
    const p = await VirtualSwitch.create({ name: `p${n}`, type: 'External', uplink: lo(base + 2 * n - 1, base + 2 * n - 2) });
    await p.addPort({ id: 'x', sink: (f) => { seen[`p${n}`].push([...f.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':')); } });
    return p;
  };
  const peers = [await peer(1), await peer(2)];
  await sw.addPort({ id: 'a', sink: () => undefined, policy: { mac: mac(1) } });
  await sw.addPort({ id: 'b', sink: () => undefined, policy: { mac: mac(2) } });
  const status = () => Object.fromEntries(sw.teamStatus()!.map((m) => [m.name, m.status]));
  const close = async () => { for (const s of [sw, ...peers]) await s.close(); };
  return { sw, peers, seen, team, peer, status, close };
}

test('HyperVPort: each port sticks to one member, ports spread over both; keepalives are not frames', async () => {
  const r = await rig();
  try {
    for (let i = 0; i < 5; i++) { r.sw.inject('a', eth(mac(1), BCAST)); r.sw.inject('b', eth(mac(2), BCAST)); }
    await until(() => r.seen.p1.length + r.seen.p2.length === 10);
    assert.equal(new Set(r.seen.p1).size, 1, `one port's frames on member 1: ${r.seen.p1.join(' ')}`);
    assert.equal(new Set(r.seen.p2).size, 1, 'the other port\'s on member 2');
    assert.notEqual(r.seen.p1[0], r.seen.p2[0]);
    const tx = r.sw.teamStatus()!.map((m) => m.txFrames);
    assert.deepEqual(tx, [5, 5], 'per-member counters');

    await sleep(1500); // keepalives both ways, no frame
    assert.deepEqual(r.status(), { NIC1: 'Active', NIC2: 'Active' });
    assert.equal(r.sw.stats().ports.uplink!.rxFrames, 0, 'no keepalive reached the team\'s switch');
    for (const p of r.peers) assert.equal(p.stats().ports.uplink!.rxFrames, 5, 'the peers received frames only');
    assert.deepEqual(r.sw.teamStatus()!.map((m) => m.rxFrames), [0, 0]);
  } finally { await r.close(); }
});

test('TransportPorts: flows spread over both members, each flow on one', async () => {
  const r = await rig();
  try {
    await r.sw.setTeam(r.team('TransportPorts'));
    assert.equal((r.sw.settings.uplink as TeamSettings).algorithm, 'TransportPorts');
    for (let sport = 1000; sport < 1040; sport++) r.sw.inject('a', udp(mac(1), BCAST, ip(1), ip(9), sport, 53));
    await until(() => r.seen.p1.length + r.seen.p2.length === 40);
    assert.ok(r.seen.p1.length >= 5 && r.seen.p2.length >= 5, `40 flows over both members: ${r.seen.p1.length} / ${r.seen.p2.length}`);
    const before = { ...r.seen, p1: r.seen.p1.length, p2: r.seen.p2.length };
    for (let i = 0; i < 10; i++) r.sw.inject('a', udp(mac(1), BCAST, ip(1), ip(9), 1007, 53));
    await until(() => r.seen.p1.length + r.seen.p2.length === 50);
    assert.ok(r.seen.p1.length - before.p1 === 10 || r.seen.p2.length - before.p2 === 10, 'one flow, one member');
  } finally { await r.close(); }
});

test('failover: a silent member is Failed within ~3 s, its port moves, and comes back when the peer does', { timeout: 20_000 }, async () => {
  const r = await rig();
  try {
    r.sw.inject('a', eth(mac(1), BCAST));
    await until(() => r.seen.p1.length + r.seen.p2.length === 1);
    const home = r.seen.p1.length === 1 ? 0 : 1;
    const key = home === 0 ? 'p1' : 'p2';
    const other = home === 0 ? 'p2' : 'p1';
    const t0 = performance.now();
    await r.peers[home]!.close(); // the cable is pulled at the far end: no more keepalives
    await until(() => r.status()[`NIC${home + 1}`] === 'Failed', 5000);
    const took = performance.now() - t0;
    console.log(`# member failed ${Math.round(took)} ms after its peer went silent`);
    assert.ok(took >= 2000 && took < 4500, `failed after ${took} ms`);
    assert.equal(r.sw.teamStatus()![home]!.reason, 'NoKeepalive');
    r.sw.inject('a', eth(mac(1), BCAST));
    await until(() => r.seen[other].length === 1);

    r.peers[home] = await r.peer((home + 1) as 1 | 2); // plugged back in
    await until(() => r.status()[`NIC${home + 1}`] === 'Active', 2500);
    r.seen[key].length = 0;
    r.sw.inject('a', eth(mac(1), BCAST));
    await until(() => r.seen[key].length === 1);
    assert.equal(r.seen[other].length, 1, 'the port is back on its own member');
  } finally { await r.close(); }
});

test('a disabled member is Failed at once and carries nothing; a one-member team works', async () => {
  const r = await rig();
  try {
    await r.sw.setTeam(r.team('HyperVPort', [false, true]));
    assert.deepEqual(r.status(), { NIC1: 'Failed', NIC2: 'Active' });
    assert.equal(r.sw.teamStatus()![0]!.reason, 'Disabled');
    for (let i = 0; i < 4; i++) { r.sw.inject('a', eth(mac(1), BCAST)); r.sw.inject('b', eth(mac(2), BCAST)); }
    await until(() => r.seen.p2.length === 8);
    assert.equal(r.seen.p1.length, 0);

    const one = r.team('Dynamic');
    await r.sw.setTeam({ ...one, members: one.members.slice(0, 1) });
    assert.deepEqual(r.status(), { NIC1: 'Active' });
    r.sw.inject('b', eth(mac(2), BCAST));
    await until(() => r.seen.p1.length === 1);
    await assert.rejects(r.sw.setTeam({ ...one, members: [] }), (e: Error & { code?: string }) => e.code === 'SWITCH_UPLINK');
  } finally { await r.close(); }
});
