// NIC teaming: the Windows Server 2012 R2 LBFO cmdlets admins use before New-VMSwitch
// -NetAdapterName <team>. Teams are made of the host's network adapters (Get-NetAdapter), in
// SwitchIndependent, Static or Lacp mode (with Lacp, the other host's team is the partner).
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const algorithm = { type: 'enum', values: ['TransportPorts', 'IPAddresses', 'MacAddresses', 'HyperVPort', 'Dynamic'] } as const;
const teamingMode = { type: 'enum', values: ['SwitchIndependent', 'Static', 'Lacp'] } as const;
const lacpTimer = { type: 'enum', values: ['Fast', 'Slow'] } as const;
const teamView = { columns: ['Name', 'Members', 'TeamingMode', 'LoadBalancingAlgorithm', 'Status', 'VMSwitchName'].map((c) => ({ label: c, value: c })) };
const memberView = { columns: ['Name', 'Team', 'OperationalStatus', 'FailureReason', 'LacpMuxState', 'ReceivedBytes', 'SentBytes'].map((c) => ({ label: c, value: c })) };
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
    TeamingMode: teamingMode,
    LoadBalancingAlgorithm: algorithm,
    LacpTimer: lacpTimer,
  },
  positional: ['Name', 'TeamMembers'], view: teamView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', '/lbfo-teams', { Name: args.Name, TeamMembers: args.TeamMembers, TeamingMode: args.TeamingMode, LoadBalancingAlgorithm: args.LoadBalancingAlgorithm, LacpTimer: args.LacpTimer });
  },
});

export const setNetLbfoTeam = defineCmdlet({
  name: 'Set-NetLbfoTeam', synopsis: 'Change a team\'s teaming mode, load-balancing algorithm or LACP timer (live, on the switch it carries)',
  params: { Name: { type: 'string', mandatory: true }, TeamingMode: teamingMode, LoadBalancingAlgorithm: algorithm, LacpTimer: lacpTimer },
  positional: ['Name'], view: teamView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('PATCH', team(args.Name), { TeamingMode: args.TeamingMode, LoadBalancingAlgorithm: args.LoadBalancingAlgorithm, LacpTimer: args.LacpTimer });
    return args.PassThru ? r : undefined;
  },
});

export const removeNetLbfoTeam = defineCmdlet({
  name: 'Remove-NetLbfoTeam', synopsis: 'Remove a team that carries no switch',
  params: { Name: { type: 'string', mandatory: true } }, positional: ['Name'],
  async run(args, ctx) { await clientFor(ctx).call('DELETE', team(args.Name)); },
});

export const getNetLbfoTeamMember = defineCmdlet({
  name: 'Get-NetLbfoTeamMember', synopsis: 'List team members: OperationalStatus Active/Failed (disabled, no keepalive for 3 s, LACP partner not agreeing), LACP state and counters',
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
