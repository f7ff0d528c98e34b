// LACP and Static teams on real UDP sockets (127.0.0.1): two switches whose uplinks are
// two-member teams facing each other member by member. Lacp: both sides reach
// Collecting/Distributing, frames cross, no LACPDU ever reaches a switch; an Lacp team facing
// a team that does not speak LACP never carries a frame (LacpNegotiationIssue). Static: all
// members carry at once, flows spread by hash (per-member counters). A three-member Lacp team
// whose members face two partners (two members one switch's team, one another's) forms two
// aggregators and carries on the larger only, the other member Standby.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualSwitch, type TeamSettings } from './index.ts';
import { BCAST, ip, mac, udp, until } from './test-support.ts';

const lo = (localPort: number, remotePort: number) => ({ localAddress: '127.0.0.1', localPort, remoteAddress: '127.0.0.1', remotePort });

async function pair(modeA: TeamSettings['mode'], modeB: TeamSettings['mode']) {
  const base = 40000 + Math.floor(Math.random() * 20000);
  const team = (side: 0 | 1, mode: TeamSettings['mode']): TeamSettings => ({
    team: 'T', mode, algorithm: 'TransportPorts', lacpTimer: 'Fast',
    members: [{ name: 'NIC1', uplink: side === 0 ? lo(base, base + 1) : lo(base + 1, base), enabled: true }, { name: 'NIC2', uplink: side === 0 ? lo(base + 2, base + 3) : lo(base + 3, base + 2), enabled: true }],
  });
  const a = await VirtualSwitch.create({ name: 'a', type: 'External', uplink: team(0, modeA) });
  const b = await VirtualSwitch.create({ name: 'b', type: 'External', uplink: team(1, modeB) });
  const got = { a: 0, b: 0 };
  await a.addPort({ id: 'pa', sink: () => { got.a++; }, policy: { mac: mac(1) } });
  await b.addPort({ id: 'pb', sink: () => { got.b++; }, policy: { mac: mac(2) } });
  const status = (sw: VirtualSwitch) => sw.teamStatus()!.map((m) => m.status);
  return { a, b, got, status, close: async () => { await a.close(); await b.close(); } };
}

test('Lacp/Lacp: both teams reach Collecting/Distributing, frames cross, LACPDUs stay out of the switches', { timeout: 20_000 }, async () => {
  const p = await pair('Lacp', 'Lacp');
  try {
    const t0 = performance.now();
    await until(() => [...p.status(p.a), ...p.status(p.b)].every((s) => s === 'Active'), 10_000);
    console.log(`# LACP team formed in ${Math.round(performance.now() - t0)} ms (2 s aggregate wait)`);
    for (const m of [...p.a.teamStatus()!, ...p.b.teamStatus()!]) {
      assert.equal(m.lacp!.mux, 'CollectingDistributing');
      assert.equal(m.lacp!.actorState, 'Activity,Timeout,Aggregation,Synchronization,Collecting,Distributing');
      assert.equal(m.lacp!.partnerState, 'Activity,Timeout,Aggregation,Synchronization,Collecting,Distributing');
      assert.ok(m.lacp!.lacpdusReceived >= 2);
    }
    for (let sport = 1000; sport < 1040; sport++) p.a.inject('pa', udp(mac(1), BCAST, ip(1), ip(2), sport, 53));
    await until(() => p.got.b === 40);
    const tx = p.a.teamStatus()!.map((m) => m.txFrames);
    assert.ok(tx.every((n) => n >= 5), `40 flows over both members: ${tx.join(' / ')}`);
    assert.equal(p.a.stats().ports.uplink!.rxFrames, 0, 'no LACPDU reached switch a');
    assert.equal(p.b.stats().ports.uplink!.rxFrames, 40, 'switch b got the data frames only');
  } finally { await p.close(); }
});

test('Lacp facing a team without LACP: never carries (LacpNegotiationIssue); Static carries at once, by hash', { timeout: 20_000 }, async () => {
  const p = await pair('Lacp', 'Static');
  try {
    await until(() => p.status(p.b).every((s) => s === 'Active'), 3000);
    await new Promise((r) => setTimeout(r, 3000)); // well past the aggregate wait: nothing to agree with
    assert.deepEqual(p.a.teamStatus()!.map((m) => [m.status, m.reason, m.lacp!.mux]), [['Failed', 'LacpNegotiationIssue', 'Detached'], ['Failed', 'LacpNegotiationIssue', 'Detached']]);
    p.a.inject('pa', udp(mac(1), BCAST, ip(1), ip(2), 1, 53));
    assert.deepEqual(p.a.teamStatus()!.map((m) => m.txFrames), [0, 0], 'the Lacp side sends nothing');
    for (let sport = 1000; sport < 1040; sport++) p.b.inject('pb', udp(mac(2), BCAST, ip(2), ip(1), sport, 53));
    await until(() => p.b.teamStatus()!.reduce((n, m) => n + m.txFrames, 0) === 40);
    const tx = p.b.teamStatus()!.map((m) => m.txFrames);
    assert.ok(tx.every((n) => n >= 5), `Static: 40 flows over both members: ${tx.join(' / ')}`);
    assert.equal(p.b.stats().ports.uplink!.rxFrames, 0, 'the Static side drops the LACPDUs it gets: they are not frames for its switch');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(p.got.a, 0, 'and the Lacp side, not collecting, hands nothing to its switch');
  } finally { await p.close(); }
});

test('Lacp members facing two partners: two aggregators, the larger carries, the other member Standby', { timeout: 20_000 }, async () => {
  const base = 40000 + Math.floor(Math.random() * 20000);
  const member = (name: string, local: number, remote: number) => ({ name, uplink: lo(base + local, base + remote), enabled: true });
  const team = (members: TeamSettings['members']): TeamSettings => ({ team: 'T', mode: 'Lacp', algorithm: 'TransportPorts', lacpTimer: 'Fast', members });
  const a = await VirtualSwitch.create({ name: 'a', type: 'External', uplink: team([member('NIC1', 0, 10), member('NIC2', 1, 11), member('NIC3', 2, 20)]) });
  const b = await VirtualSwitch.create({ name: 'b', type: 'External', uplink: team([member('NIC1', 10, 0), member('NIC2', 11, 1)]) });
  const c = await VirtualSwitch.create({ name: 'c', type: 'External', uplink: team([member('NIC1', 20, 2)]) });
  try {
    const got = { b: 0, c: 0 };
    await a.addPort({ id: 'pa', sink: () => {}, policy: { mac: mac(1) } });
    await b.addPort({ id: 'pb', sink: () => { got.b++; }, policy: { mac: mac(2) } });
    await c.addPort({ id: 'pc', sink: () => { got.c++; }, policy: { mac: mac(3) } });
    await until(() => b.teamStatus()!.every((m) => m.status === 'Active') && a.teamStatus()![2]!.lacp!.standby, 10_000);
    const view = a.teamStatus()!.map((m) => [m.status, m.lacp!.aggregator, m.lacp!.standby, m.lacp!.mux]);
    assert.deepEqual(view, [['Active', 1, false, 'CollectingDistributing'], ['Active', 1, false, 'CollectingDistributing'], ['Failed', 3, true, 'Waiting']]);
    assert.deepEqual(c.teamStatus()!.map((m) => m.status), ['Failed'], 'c never hears a in sync on its link');
    for (let sport = 1000; sport < 1040; sport++) a.inject('pa', udp(mac(1), BCAST, ip(1), ip(2), sport, 53));
    await until(() => got.b === 40);
    assert.deepEqual([a.teamStatus()![2]!.txFrames, got.c], [0, 0], 'nothing on the Standby member');
  } finally { await Promise.all([a.close(), b.close(), c.close()]); }
});
