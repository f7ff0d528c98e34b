// NetTeams: the LBFO rules (declared members, one team per adapter, no member bound to a
// switch, no name shared with an adapter, never an empty team), teams.json round trip, and
// the switch uplink a team becomes (undeclared members left out, disabled ones closed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetAdapters, parseNetAdapter } from './net-adapters.ts';
import { NetTeams, type NetTeam } from './net-teams.ts';

const declared = (...names: string[]) => new NetAdapters(names.map((n, i) => parseNetAdapter(`${n}=udp:127.0.0.1:${47100 + 2 * i}->127.0.0.1:${47101 + 2 * i}`)));
const team = (name: string, members: string[]): NetTeam => ({ name, members, teamingMode: 'SwitchIndependent', algorithm: 'HyperVPort', lacpTimer: 'Fast' });

test('NetTeams: rules, teams.json, and the uplink a team becomes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-teams-'));
  try {
    const teams = await NetTeams.load(dir, declared('NIC1', 'NIC2', 'NIC3'));
    const free = () => undefined;
    teams.checkNew(team('Team1', ['NIC1', 'NIC2']), free);
    await teams.save('Team1', team('Team1', ['NIC1', 'NIC2']));
    assert.throws(() => teams.checkNew(team('T2', ['NIC9']), free), /^VmhostError: TeamMembers: no network adapter 'NIC9'; this host has 'NIC1', 'NIC2', 'NIC3'$|TeamMembers: no network adapter 'NIC9'/);
    assert.throws(() => teams.checkNew(team('T2', ['NIC2']), free), /TeamMembers: network adapter 'NIC2' is already a member of team 'Team1'/);
    assert.throws(() => teams.checkNew(team('T2', ['NIC3', 'nic3']), free), /TeamMembers: 'nic3' is named twice/);
    assert.throws(() => teams.checkNew(team('T2', ['NIC3']), (n) => (n === 'NIC3' ? 'Ext' : undefined)), /TeamMembers: network adapter 'NIC3' is bound to the External switch 'Ext'/);
    assert.throws(() => teams.checkNew(team('nic3', ['NIC3']), free), /Name: 'nic3' is the name of a network adapter/);
    assert.throws(() => teams.checkNew(team('TEAM1', ['NIC3']), free), (e: Error & { code?: string }) => e.code === 'ALREADY_EXISTS');
    assert.throws(() => teams.checkNew(team('T2', []), free), /TeamMembers: a team needs at least one member/);
    assert.throws(() => teams.changed('Team1', { remove: 'NIC3' }, free), /'NIC3' is not a member of team 'Team1'/);
    const one = teams.changed('Team1', { remove: 'nic2', algorithm: 'Dynamic' }, free);
    assert.deepEqual([one.members, one.algorithm], [['NIC1'], 'Dynamic']);
    await teams.save('Team1', one);
    assert.throws(() => teams.changed('Team1', { remove: 'NIC1' }, free), /'NIC1' is the last member of team 'Team1'/);
    await teams.save('Team1', teams.changed('Team1', { add: 'NIC2' }, free));
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'teams.json'), 'utf8')), [{ ...team('Team1', ['NIC1', 'NIC2']), algorithm: 'Dynamic' }]);

    // Reloaded with NIC2 no longer declared: the team stays, its uplink leaves NIC2 out.
    const again = await NetTeams.load(dir, declared('NIC1', 'NIC3'));
    assert.deepEqual(again.mustGet('team1').members, ['NIC1', 'NIC2']);
    again.setDisabled('NIC1', true);
    assert.deepEqual(again.uplinkOf(again.mustGet('Team1')).members.map((m) => [m.name, m.enabled]), [['NIC1', false]]);
    const lacp = again.changed('Team1', { teamingMode: 'Lacp', lacpTimer: 'Slow', algorithm: 'TransportPorts' }, free);
    const up = again.uplinkOf(lacp);
    assert.deepEqual([up.mode, up.lacpTimer, up.algorithm], ['Lacp', 'Slow', 'TransportPorts'], 'the mode and timer reach the switch');
    const { lacpTimer: _, ...old } = team('Old', ['NIC1']);
    assert.equal(again.uplinkOf(old).lacpTimer, 'Fast', 'a team saved before LACP: Fast');
    assert.equal(again.targets()[0]!.description, 'Microsoft Network Adapter Multiplexor Driver');
    const gone = await NetTeams.load(dir, declared('NIC3'));
    assert.deepEqual(gone.targets(), [], 'a team with no declared member is nothing to bind to');
    await again.save('Team1', null);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'teams.json'), 'utf8')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
