// The LBFO cmdlets (New-/Get-/Set-/Remove-NetLbfoTeam, Get-/Add-/Remove-NetLbfoTeamMember) and
// Disable-/Enable-NetAdapter, where the teams (net-teams.ts) meet the switches: a change to a
// team, or to an adapter, that carries an External switch reaches the switch's live uplink
// first (VirtualSwitch.setTeam / setUplink), and is saved only once the switch took it.
// Member status, counters and LACP state come from the switch's team uplink; a team that
// carries no switch opens no socket, so its members are Active unless disabled (an Lacp
// team's too: there is nothing to negotiate until a switch uses it).
import { VmhostError } from '../common/index.ts';
import type { LacpTimer, LoadBalancingAlgorithm, TeamingMode, TeamMemberStatus, VirtualSwitch } from '../switch/index.ts';
import type { NetAdapters } from './net-adapters.ts';
import type { BoundTo, NetTeam, NetTeams, TeamChange } from './net-teams.ts';

export interface LbfoHost {
  /** Name of the switch bound to an adapter or a team. */
  readonly boundTo: BoundTo;
  /** That switch itself. */
  boundSwitch(name: string): VirtualSwitch | undefined;
  event(level: 'Information' | 'Warning', code: string, message: string): void;
}

export interface NewTeamParams {
  Name: string;
  TeamMembers: string[];
  TeamingMode?: TeamingMode;
  LoadBalancingAlgorithm?: LoadBalancingAlgorithm;
  LacpTimer?: LacpTimer;
}

export interface SetTeamParams {
  TeamingMode?: TeamingMode;
  LoadBalancingAlgorithm?: LoadBalancingAlgorithm;
  LacpTimer?: LacpTimer;
}

type MemberStatus = Omit<TeamMemberStatus, 'name' | 'reason'> & { reason: TeamMemberStatus['reason'] | 'NotDeclared' };

export class Lbfo {
  constructor(private readonly teams: NetTeams, private readonly adapters: NetAdapters, private readonly host: LbfoHost) {}

  async newTeam(p: NewTeamParams): Promise<Record<string, unknown>> {
    // Hyper-V's default for a team that carries VMs (Windows' own default is Dynamic, TransportPorts before 2012 R2).
    const t: NetTeam = {
      name: p.Name, members: p.TeamMembers.map((m) => this.adapters.adapter(m)?.name ?? m), teamingMode: p.TeamingMode ?? 'SwitchIndependent',
      algorithm: p.LoadBalancingAlgorithm ?? 'HyperVPort', lacpTimer: p.LacpTimer ?? 'Fast',
    };
    this.teams.checkNew(t, this.host.boundTo);
    await this.teams.save(t.name, t);
    this.host.event('Information', 'NET_TEAM_CREATED', `NIC team '${t.name}' created (${t.members.join(', ')}; ${t.teamingMode}, ${t.algorithm})`);
    return this.teamView(t);
  }

  setTeam(name: string, p: SetTeamParams): Promise<Record<string, unknown>> {
    const c: TeamChange = { teamingMode: p.TeamingMode, algorithm: p.LoadBalancingAlgorithm, lacpTimer: p.LacpTimer };
    const what = [p.TeamingMode && `teaming mode ${p.TeamingMode}`, p.LoadBalancingAlgorithm && `load balancing ${p.LoadBalancingAlgorithm}`, p.LacpTimer && `LACP timer ${p.LacpTimer}`];
    return this.change(name, c, what.filter(Boolean).join(', ') || 'unchanged');
  }

  addMember(team: string, member: string): Promise<Record<string, unknown>> {
    return this.change(team, { add: member }, `member '${member}' added`);
  }

  removeMember(team: string, member: string): Promise<Record<string, unknown>> {
    return this.change(team, { remove: member }, `member '${member}' removed`);
  }

  async removeTeam(name: string): Promise<void> {
    const t = this.teams.mustGet(name);
    const sw = this.host.boundTo(t.name);
    if (sw !== undefined) {
      throw new VmhostError('INVALID_STATE', `Name: team '${t.name}' carries the External switch '${sw}'; Remove-VMSwitch '${sw}' or Set-VMSwitch '${sw}' -SwitchType Private first`, { param: 'Name', team: t.name, switch: sw });
    }
    await this.teams.save(t.name, null);
    this.host.event('Information', 'NET_TEAM_REMOVED', `NIC team '${t.name}' removed`);
  }

  /** Disable-/Enable-NetAdapter: the adapter's socket closes or opens again, in its team or under its own switch. */
  async setAdapterEnabled(name: string, enabled: boolean): Promise<void> {
    const a = this.adapters.adapter(name);
    if (!a) throw new VmhostError('NOT_FOUND', `Name: no network adapter '${name}'; this host has ${this.adapters.list().map((x) => `'${x.name}'`).join(', ') || 'none'}`, { param: 'Name', adapter: name });
    if (this.teams.isDisabled(a.name) === !enabled) return;
    this.teams.setDisabled(a.name, !enabled);
    try {
      const team = this.teams.memberOf(a.name);
      const sw = this.host.boundSwitch(team?.name ?? a.name);
      if (sw && team) await sw.setTeam(this.teams.uplinkOf(team));
      else if (sw) await sw.setUplink('External', enabled ? a.uplink : undefined);
    } catch (e) {
      this.teams.setDisabled(a.name, enabled);
      throw e;
    }
    this.host.event(enabled ? 'Information' : 'Warning', enabled ? 'NET_ADAPTER_ENABLED' : 'NET_ADAPTER_DISABLED', `Network adapter '${a.name}' ${enabled ? 'enabled' : 'disabled'}`);
  }

  /** New-/Set-VMSwitch -NetAdapterName: a team member or a disabled adapter carries no switch. */
  checkBindable(name: string): void {
    const team = this.teams.memberOf(name);
    if (team) throw new VmhostError('INVALID_STATE', `NetAdapterName: network adapter '${name}' is a member of team '${team.name}'; bind the switch to the team (-NetAdapterName '${team.name}')`, { param: 'NetAdapterName', adapter: name, team: team.name });
    if (this.teams.isDisabled(name)) throw new VmhostError('INVALID_STATE', `NetAdapterName: network adapter '${name}' is disabled (Enable-NetAdapter '${name}')`, { param: 'NetAdapterName', adapter: name });
  }

  isDisabled(adapter: string): boolean { return this.teams.isDisabled(adapter); }

  /** Get-NetLbfoTeam. */
  listTeams(name?: string): Record<string, unknown>[] {
    return (name === undefined ? this.teams.list() : [this.teams.mustGet(name)]).map((t) => this.teamView(t));
  }

  /** Get-NetLbfoTeamMember, of one team or all. */
  listMembers(team?: string): Record<string, unknown>[] {
    return (team === undefined ? this.teams.list() : [this.teams.mustGet(team)]).flatMap((t) => {
      const st = this.memberStatus(t);
      return t.members.map((m, i) => {
        const s = st[i]!;
        return {
          Name: m, Team: t.name, AdministrativeMode: 'Active', OperationalStatus: s.status, FailureReason: s.reason ?? 'NoFailure',
          ReceivedFrames: s.rxFrames, ReceivedBytes: s.rxBytes, SentFrames: s.txFrames, SentBytes: s.txBytes,
          ...(s.lacp ? {
            LacpMuxState: s.lacp.mux, LacpActorState: s.lacp.actorState, LacpPartner: s.lacp.partner, LacpPartnerState: s.lacp.partnerState,
            LacpAggregator: s.lacp.aggregator, LacpStandby: s.lacp.standby,
            LacpdusSent: s.lacp.lacpdusSent, LacpdusReceived: s.lacp.lacpdusReceived,
          } : {}),
        };
      });
    });
  }

  /** Get-NetLbfoTeam's Status: Up when every member is Active, Down when none is. */
  private teamStatus(t: NetTeam): 'Up' | 'Degraded' | 'Down' {
    const active = this.memberStatus(t).filter((m) => m.status === 'Active').length;
    return active === t.members.length ? 'Up' : active === 0 ? 'Down' : 'Degraded';
  }

  private teamView(t: NetTeam): Record<string, unknown> {
    return {
      Name: t.name, Members: t.members, TeamingMode: t.teamingMode, LoadBalancingAlgorithm: t.algorithm, LacpTimer: t.lacpTimer ?? 'Fast',
      Status: this.teamStatus(t), VMSwitchName: this.host.boundTo(t.name) ?? null,
    };
  }

  /** In `t.members` order. */
  private memberStatus(t: NetTeam): MemberStatus[] {
    const live = this.host.boundSwitch(t.name)?.teamStatus();
    return t.members.map((m) => {
      const s = live?.find((x) => x.name === m);
      if (s) return s;
      const zero = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0 };
      if (!this.adapters.adapter(m)) return { status: 'Failed', reason: 'NotDeclared', ...zero };
      return this.teams.isDisabled(m) ? { status: 'Failed', reason: 'Disabled', ...zero } : { status: 'Active', reason: null, ...zero };
    });
  }

  private async change(name: string, c: TeamChange, what: string): Promise<Record<string, unknown>> {
    const next = this.teams.changed(name, c, this.host.boundTo);
    await this.host.boundSwitch(next.name)?.setTeam(this.teams.uplinkOf(next));
    await this.teams.save(next.name, next);
    this.host.event('Information', 'NET_TEAM_CHANGED', `NIC team '${next.name}': ${what}`);
    return this.teamView(next);
  }
}

