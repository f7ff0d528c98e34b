// NIC teaming across two hosts, with real guests, through the CLI: each daemon has two
// "physical" adapters (UDP tunnels) pairwise facing the other host's, a team of both
// (New-NetLbfoTeam) and an External switch on the team. Guests on both hosts ping across;
// with HyperVPort the two guests on host A leave through different members (the members'
// SentFrames counters); Disable-NetAdapter of a member on host B is seen on host A as that
// member Failed within a few seconds (no keepalive), the team Degraded, and the ping goes on
// over the other member (the interruption is measured and printed); Enable-NetAdapter brings
// the member back. The switch's binding to the team survives a daemon restart. Bad input
// gets one-line errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, type TestDaemon } from './support/daemon.ts';
import { bootGuestsOnSwitch, type CliTools } from './support/cli-tools.ts';
import { twoCabledHosts } from './support/two-hosts.ts';

const IP = (n: number) => `10.89.0.${n}`;

interface Member { Name: string; Team: string; OperationalStatus: string; FailureReason: string; SentFrames: number; ReceivedFrames: number }
interface Team { Name: string; Members: string[]; LoadBalancingAlgorithm: string; Status: string; VMSwitchName: string | null }

describe('NIC teaming: External switches on teams of two UDP adapters', () => {
  let a: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let stop: (() => Promise<void>) | undefined;
  before(async () => { ({ a, ta, tb, stop } = await twoCabledHosts(2)); });
  after(async () => { await stop?.(); });

  const members = async (t: CliTools) => Object.fromEntries((await t.json<Member[]>('Get-NetLbfoTeamMember', '-Team', 'Team1')).map((m) => [m.Name, m]));

  test('New-NetLbfoTeam, New-VMSwitch -NetAdapterName <team>; bad input is refused in one line', async () => {
    for (const t of [ta, tb]) {
      await t.ok('New-NetLbfoTeam', '-Name', 'Team1', '-TeamMembers', 'NIC1,NIC2', '-TeamingMode', 'SwitchIndependent', '-LoadBalancingAlgorithm', 'HyperVPort');
      await t.ok('New-VMSwitch', '-Name', 'Ext', '-NetAdapterName', 'Team1');
    }
    const team = await ta.json<Team>('Get-NetLbfoTeam', 'Team1');
    assert.deepEqual([team.Members, team.LoadBalancingAlgorithm, team.Status, team.VMSwitchName], [['NIC1', 'NIC2'], 'HyperVPort', 'Up', 'Ext']);
    const sw = await ta.json<Record<string, unknown>>('Get-VMSwitch', 'Ext');
    assert.deepEqual([sw.SwitchType, sw.NetAdapterName, sw.NetAdapterInterfaceDescription, sw.Status], ['External', 'Team1', 'Microsoft Network Adapter Multiplexor Driver', 'OK']);
    const nics = await ta.json<{ Name: string; VMSwitchName: string | null }[]>('Get-NetAdapter');
    assert.deepEqual(nics.map((n) => [n.Name, n.VMSwitchName]), [['NIC1', null], ['NIC2', null], ['Team1', 'Ext']], 'the team\'s adapter carries the switch');

    await Promise.all([
      ta.fails(/^New-NetLbfoTeam: TeamMembers: no network adapter 'Nope'; this host has 'NIC1', 'NIC2'$/, 'New-NetLbfoTeam', 'T2', '-TeamMembers', 'Nope'),
      ta.fails(/TeamMembers: network adapter 'NIC2' is already a member of team 'Team1'/, 'New-NetLbfoTeam', 'T2', '-TeamMembers', 'NIC2'),
      ta.fails(/Name: a NIC team named 'team1' already exists/, 'New-NetLbfoTeam', 'team1', '-TeamMembers', 'NIC1'),
      ta.fails(/Name: 'NIC1' is the name of a network adapter/, 'New-NetLbfoTeam', 'NIC1', '-TeamMembers', 'NIC2'),
      ta.fails(/NetAdapterName: network adapter 'NIC1' is a member of team 'Team1'; bind the switch to the team/, 'New-VMSwitch', 'X', '-NetAdapterName', 'NIC1'),
      ta.fails(/Name: team 'Team1' carries the External switch 'Ext'/, 'Remove-NetLbfoTeam', 'Team1'),
      ta.fails(/Name: no NIC team 'Nope'/, 'Add-NetLbfoTeamMember', 'NIC1', '-Team', 'Nope'),
      ta.fails(/Name: no network adapter 'Nope'/, 'Disable-NetAdapter', 'Nope'),
    ]);
    // The last member of a team is never removed (the team carries a switch here, and an empty team is no team).
    await ta.ok('Remove-NetLbfoTeamMember', '-Name', 'NIC2', '-Team', 'Team1');
    await ta.fails(/Name: 'NIC1' is the last member of team 'Team1'; a team keeps at least one/, 'Remove-NetLbfoTeamMember', '-Name', 'NIC1', '-Team', 'Team1');
    await ta.ok('Add-NetLbfoTeamMember', '-Name', 'NIC2', '-Team', 'Team1');
    assert.deepEqual((await ta.json<Team>('Get-NetLbfoTeam', 'Team1')).Members, ['NIC1', 'NIC2']);
    assert.equal((await ta.json<unknown[]>('Get-NetLbfoTeam')).length, 1, 'no half-made team left behind');
  });

  test('HyperVPort spreads VMs over members; a member pulled on host B fails over on host A and comes back; restart keeps the binding', { timeout: 150_000 }, async () => {
    const t0 = Date.now();
    const took = await bootGuestsOnSwitch([[ta, 'va1', IP(1)], [ta, 'va2', IP(2)], [tb, 'vb', IP(3)]], 'Ext');
    console.log(`# three guests up in ${took} ms`);

    // Which member carries each VM on host A: the one whose SentFrames grows by its 20 pings
    // (the other one carries what the other VM sends meanwhile: IPv6 router solicitations…).
    const memberOf = async (vm: string): Promise<string> => {
      const before = await members(ta);
      const r = await ta.sh(vm, `ping -c 20 -i 0.1 -W 2 ${IP(3)}`);
      assert.equal(r.code, 0, `${vm} pings vb on host B across the team: ${r.out}`);
      const after = await members(ta);
      const grew = Object.keys(after).map((m) => [m, after[m]!.SentFrames - before[m]!.SentFrames] as const);
      console.log(`# ${vm}: SentFrames grew ${grew.map(([m, n]) => `${m} +${n}`).join(', ')}`);
      const [top, other] = [...grew].sort((x, y) => y[1] - x[1]) as [readonly [string, number], readonly [string, number]];
      assert.ok(top[1] >= 20 && other[1] < 10, `${vm}'s frames leave through one member`);
      return top[0];
    };
    const m1 = await memberOf('va1');
    const m2 = await memberOf('va2');
    assert.notEqual(m1, m2, 'HyperVPort: the two VMs of host A use different members');
    assert.ok(Object.values(await members(tb)).every((m) => m.ReceivedFrames >= 20), 'host B received through both members');

    // Pull va1's member on host B; va1 pings vb every 0.2 s throughout.
    const pinging = ta.sh('va1', `ping -c 60 -i 0.2 -W 2 ${IP(3)}`);
    await new Promise((r) => setTimeout(r, 2000));
    await tb.ok('Disable-NetAdapter', '-Name', m1);
    const pulled = Date.now();
    // Polled through the REST route the cmdlet uses: a CLI process per poll would blur the timing by a second.
    const failedOnA = async () => ((await a.api('GET', '/api/v1/lbfo-team-members?Team=Team1')).json as Member[]).find((m) => m.Name === m1)!.OperationalStatus === 'Failed';
    await waitFor(`host A sees ${m1} Failed`, 8000, failedOnA);
    const detected = Date.now() - pulled;
    assert.equal((await tb.json<{ Status: string }>('Get-NetAdapter', m1)).Status, 'Disabled');
    const seen = await members(ta);
    assert.deepEqual([seen[m1]!.FailureReason, seen[m2]!.OperationalStatus], ['NoKeepalive', 'Active']);
    assert.equal((await ta.json<Team>('Get-NetLbfoTeam', 'Team1')).Status, 'Degraded');
    assert.equal((await tb.json<Member[]>('Get-NetLbfoTeamMember', m1))[0]!.FailureReason, 'Disabled');
    const r = await pinging;
    const seqs = [...r.out.matchAll(/seq=(\d+)/g)].map((x) => Number(x[1]));
    let gap = 0;
    for (let i = 1; i < seqs.length; i++) gap = Math.max(gap, seqs[i]! - seqs[i - 1]! - 1);
    console.log(`# ${m1} disabled on host B: host A marked it Failed after ${detected} ms; va1's ping lost ${60 - seqs.length} of 60 (longest gap ${gap} replies = ${(gap * 0.2).toFixed(1)} s interruption)`);
    assert.ok(detected >= 1500 && detected < 6000, `failure detected in ${detected} ms: after missed keepalives, not at once`);
    assert.ok(seqs.includes(59) || seqs.includes(58), 'the ping works again after the failover');
    assert.ok(gap * 0.2 <= 5, `interruption ${gap * 0.2} s`);

    await tb.ok('Enable-NetAdapter', m1);
    await waitFor(`host A sees ${m1} Active again`, 5000, async () => (await members(ta))[m1]!.OperationalStatus === 'Active');
    assert.equal((await ta.json<Team>('Get-NetLbfoTeam', 'Team1')).Status, 'Up');
    assert.equal(await memberOf('va1'), m1, 'va1 is back on its own member');

    // Host A's daemon restarted: the switch binds to Team1 again by name, and the ping crosses.
    await a.kill();
    await a.launch();
    assert.equal((await ta.json<Record<string, unknown>>('Get-VMSwitch', 'Ext')).NetAdapterName, 'Team1');
    assert.ok(await waitFor('va2 pings vb after host A\'s restart', 30_000, async () => (await ta.sh('va2', `ping -c 1 -W 2 ${IP(3)}`)).code === 0));
    await ta.ok('Set-NetLbfoTeam', 'Team1', '-LoadBalancingAlgorithm', 'TransportPorts');
    assert.equal((await ta.json<Team>('Get-NetLbfoTeam', 'Team1')).LoadBalancingAlgorithm, 'TransportPorts');
    assert.equal((await ta.sh('va1', `ping -c 3 -i 0.2 -W 2 ${IP(3)}`)).code, 0, 'ping with TransportPorts');
    console.log(`# whole scenario ${Date.now() - t0} ms`);
  });
});
