// NIC teaming: the Windows Server 2012 R2 LBFO cmdlets admins use before New-VMSwitch
// -NetAdapterName <team>. Teams are made of the host's network adapters (Get-NetAdapter);
// only switch-independent teaming exists (the far end of a UDP tunnel is another host).
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const algorithm = { type: 'enum', values: ['HyperVPort', 'TransportPorts', 'Dynamic'] } as const;
const teamView = { columns: ['Name', 'Members', 'TeamingMode', 'LoadBalancingAlgorithm', 'Status', 'VMSwitchName'].map((c) => ({ label: c, value: c })) };
const memberView = { columns: ['Name', 'Team', 'OperationalStatus', 'FailureReason', 'ReceivedBytes', 'SentBytes'].map((c) => ({ label: c, value: c })) };
const team = (name: string): string => `/lbfo-teams/${encodeURIComponent(name)}`;

export const getNetLbfoTeam = defineCmdlet({
  name: 'Get-NetLbfoTeam', synopsis: 'List NIC teams: members, load balancing, status (Up, Degraded, Down)',
  params: { Name: { type: 'string' } }, positional: ['Name'], view: teamView,
  async run(args, ctx) { return clientFor(ctx).call('GET', args.Name === undefined ? '/lbfo-teams' : team(args.Name)); },
});

export const newNetLbfoTeam = defineCmdlet({
  name: 'New-NetLbfoTeam', synopsis: 'Team network adapters; New-VMSwitch -NetAdapterName <team> binds a switch to the team',
  params: {
    Name: { type: 'string', mandatory: true },
    TeamMembers: { type: 'string', array: true, mandatory: true },
    TeamingMode: { type: 'enum', values: ['SwitchIndependent'] },
    LoadBalancingAlgorithm: algorithm,
  },
  positional: ['Name', 'TeamMembers'], view: teamView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', '/lbfo-teams', { Name: args.Name, TeamMembers: args.TeamMembers, TeamingMode: args.TeamingMode, LoadBalancingAlgorithm: args.LoadBalancingAlgorithm });
  },
});

export const setNetLbfoTeam = defineCmdlet({
  name: 'Set-NetLbfoTeam', synopsis: 'Change a team\'s load-balancing algorithm (live, on the switch it carries)',
  params: { Name: { type: 'string', mandatory: true }, LoadBalancingAlgorithm: { ...algorithm, mandatory: true } },
  positional: ['Name'], view: teamView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('PATCH', team(args.Name), { LoadBalancingAlgorithm: args.LoadBalancingAlgorithm });
    return args.PassThru ? r : undefined;
  },
});

export const removeNetLbfoTeam = defineCmdlet({
  name: 'Remove-NetLbfoTeam', synopsis: 'Remove a team that carries no switch',
  params: { Name: { type: 'string', mandatory: true } }, positional: ['Name'],
  async run(args, ctx) { await clientFor(ctx).call('DELETE', team(args.Name)); },
});

export const getNetLbfoTeamMember = defineCmdlet({
  name: 'Get-NetLbfoTeamMember', synopsis: 'List team members: OperationalStatus Active/Failed (no keepalive for 3 s, disabled) and counters',
  params: { Team: { type: 'string' }, Name: { type: 'string' } }, positional: ['Name'], view: memberView,
  async run(args, ctx) {
    const all = await clientFor(ctx).call<Record<string, unknown>[]>('GET', `/lbfo-team-members${args.Team === undefined ? '' : `?Team=${encodeURIComponent(args.Team)}`}`);
    return args.Name === undefined ? all : all.filter((m) => String(m.Name).toLowerCase() === args.Name!.toLowerCase());
  },
});

export const addNetLbfoTeamMember = defineCmdlet({
  name: 'Add-NetLbfoTeamMember', synopsis: 'Add a network adapter to a team',
  params: { Name: { type: 'string', mandatory: true }, Team: { type: 'string', mandatory: true } }, positional: ['Name', 'Team'], view: teamView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('POST', `${team(args.Team)}/members`, { Name: args.Name });
    return args.PassThru ? r : undefined;
  },
});

export const removeNetLbfoTeamMember = defineCmdlet({
  name: 'Remove-NetLbfoTeamMember', synopsis: 'Take a network adapter out of its team (never the last member)',
  params: { Name: { type: 'string', mandatory: true }, Team: { type: 'string', mandatory: true } }, positional: ['Name', 'Team'], view: teamView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('DELETE', `${team(args.Team)}/members/${encodeURIComponent(args.Name)}`);
    return args.PassThru ? r : undefined;
  },
});
