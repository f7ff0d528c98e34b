// NIC teams (Windows Server 2012 R2 LBFO: New-/Set-/Remove-NetLbfoTeam, Add-/Remove-
// NetLbfoTeamMember) over the host's declared adapters, kept in DIR/teams.json, and each
// adapter's administrative state (Disable-/Enable-NetAdapter, in memory: a daemon start
// enables every adapter, as a reboot brings up a NIC whose cable is in). A team is what an
// External switch binds to in place of an adapter: a BindTarget whose uplink is a team of the
// members' tunnels (src/switch/team-uplink.ts). The rules: members are declared adapters,
// an adapter is in at most one team and then bound to no switch itself, a team's name is no
// adapter's, a team keeps at least one member. Teaming modes: SwitchIndependent, Static and
// Lacp (the far end of each tunnel is another host's team, which runs LACP as a switch would;
// -LacpTimer Fast or Slow, a Windows Server 2016 parameter, says how fast a partner is lost).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { LacpTimer, LoadBalancingAlgorithm, TeamingMode, TeamSettings } from '../switch/index.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { invalid } from './invalid-argument.ts';
import { ADAPTER_NAME, type BindTarget, type NetAdapters } from './net-adapters.ts';

export const TEAMS_FILE = 'teams.json';
/** What Windows shows as the team adapter's InterfaceDescription. */
export const TEAM_DESCRIPTION = 'Microsoft Network Adapter Multiplexor Driver';

export interface NetTeam {
  readonly name: string;
  readonly members: readonly string[];
  readonly teamingMode: TeamingMode;
  readonly algorithm: LoadBalancingAlgorithm;
  /** Absent in a teams.json written before LACP existed: Fast. */
  readonly lacpTimer?: LacpTimer;
}

/** Set-NetLbfoTeam, Add-/Remove-NetLbfoTeamMember: what changes. */
export interface TeamChange {
  readonly teamingMode?: TeamingMode;
  readonly algorithm?: LoadBalancingAlgorithm;
  readonly lacpTimer?: LacpTimer;
  readonly add?: string;
  readonly remove?: string;
}

/** Name of the switch bound to an adapter or team, if any. */
export type BoundTo = (name: string) => string | undefined;

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

export class NetTeams {
  private readonly disabled = new Set<string>();

  private constructor(private readonly path: string, private readonly adapters: NetAdapters, private teams: NetTeam[]) {}

  static async load(dataDir: string, adapters: NetAdapters): Promise<NetTeams> {
    const path = join(dataDir, TEAMS_FILE);
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '[]';
      throw new VmhostError('INVALID_ARGUMENT', `${TEAMS_FILE}: cannot read ${path}: ${e.message}`, { path }, { cause: e });
    });
    let teams: NetTeam[];
    try { teams = JSON.parse(text) as NetTeam[]; } catch (e) { throw invalid(TEAMS_FILE, `${path} is not JSON: ${(e as Error).message}`); }
    return new NetTeams(path, adapters, teams);
  }

  list(): readonly NetTeam[] { return this.teams; }

  get(name: string): NetTeam | undefined { return this.teams.find((t) => same(t.name, name)); }

  mustGet(name: string): NetTeam {
    const t = this.get(name);
    if (!t) throw new VmhostError('NOT_FOUND', `Name: no NIC team '${name}' (teams: ${this.teams.map((x) => x.name).join(', ') || 'none'})`, { team: name });
    return t;
  }

  memberOf(adapter: string): NetTeam | undefined { return this.teams.find((t) => t.members.some((m) => same(m, adapter))); }

  isDisabled(adapter: string): boolean { return this.disabled.has(adapter.toLowerCase()); }

  setDisabled(adapter: string, disabled: boolean): void {
    if (disabled) this.disabled.add(adapter.toLowerCase()); else this.disabled.delete(adapter.toLowerCase());
  }

  /** The switch uplink of a team: its declared members (a member no longer declared is left out), disabled ones closed. */
  uplinkOf(t: NetTeam): TeamSettings {
    const members = t.members.flatMap((m) => {
      const a = this.adapters.adapter(m);
      return a ? [{ name: a.name, uplink: a.uplink, enabled: !this.isDisabled(a.name) }] : [];
    });
    return { team: t.name, mode: t.teamingMode, algorithm: t.algorithm, lacpTimer: t.lacpTimer ?? 'Fast', members };
  }

  /** Teams as bind targets; one with no declared member left is none (its switch comes up degraded). */
  targets(): BindTarget[] {
    return this.teams.map((t) => ({ name: t.name, description: TEAM_DESCRIPTION, uplink: this.uplinkOf(t) })).filter((t) => t.uplink.members.length > 0);
  }

  /** New-NetLbfoTeam: checked, not yet saved (save() after the switch side agreed). */
  checkNew(t: NetTeam, boundTo: BoundTo): void {
    if (!ADAPTER_NAME.test(t.name)) throw invalid('Name', `team name '${t.name}' must be 1–64 letters, digits, spaces, . _ ( ) - (not starting or ending with a space)`);
    if (this.adapters.adapter(t.name)) throw invalid('Name', `'${t.name}' is the name of a network adapter; a team needs a name of its own`);
    if (this.get(t.name)) throw new VmhostError('ALREADY_EXISTS', `Name: a NIC team named '${t.name}' already exists`, { param: 'Name', team: t.name });
    if (t.members.length === 0) throw invalid('TeamMembers', 'a team needs at least one member');
    this.checkMembers(t.members, t.name, boundTo);
  }

  /** Each new member: a declared adapter, named once, in no other team, bound to no switch. */
  checkMembers(members: readonly string[], team: string, boundTo: BoundTo): void {
    members.forEach((m, i) => {
      if (!this.adapters.adapter(m)) {
        throw new VmhostError('NOT_FOUND', `TeamMembers: no network adapter '${m}'; this host has ${this.adapters.list().map((a) => `'${a.name}'`).join(', ') || 'none'}`, { param: 'TeamMembers', adapter: m });
      }
      if (members.findIndex((x) => same(x, m)) !== i) throw invalid('TeamMembers', `'${m}' is named twice`);
      const other = this.memberOf(m);
      if (other) throw new VmhostError('INVALID_STATE', `TeamMembers: network adapter '${m}' is already a member of team '${other.name}'`, { param: 'TeamMembers', adapter: m, team: other.name });
      const sw = boundTo(m);
      if (sw !== undefined) throw new VmhostError('INVALID_STATE', `TeamMembers: network adapter '${m}' is bound to the External switch '${sw}'; a team member carries no switch of its own`, { param: 'TeamMembers', adapter: m, switch: sw, team });
    });
  }

  /** Set-NetLbfoTeam, Add-/Remove-NetLbfoTeamMember: the team as it would be (save() makes it so). */
  changed(name: string, change: TeamChange, boundTo: BoundTo): NetTeam {
    const t = this.mustGet(name);
    let members = t.members;
    if (change.add !== undefined) {
      this.checkMembers([change.add], t.name, boundTo);
      members = [...members, this.adapters.adapter(change.add)!.name];
    }
    if (change.remove !== undefined) {
      const gone = members.find((m) => same(m, change.remove!));
      if (!gone) throw new VmhostError('NOT_FOUND', `Name: network adapter '${change.remove}' is not a member of team '${t.name}' (members: ${members.join(', ')})`, { param: 'Name', team: t.name, adapter: change.remove });
      if (members.length === 1) throw new VmhostError('INVALID_STATE', `Name: '${gone}' is the last member of team '${t.name}'; a team keeps at least one (Remove-NetLbfoTeam removes the team)`, { param: 'Name', team: t.name });
      members = members.filter((m) => m !== gone);
    }
    return {
      ...t, members, teamingMode: change.teamingMode ?? t.teamingMode, algorithm: change.algorithm ?? t.algorithm,
      lacpTimer: change.lacpTimer ?? t.lacpTimer ?? 'Fast',
    };
  }

  /** Replaces (or adds) the team and writes teams.json; `null` removes it. */
  async save(name: string, t: NetTeam | null): Promise<void> {
    const i = this.teams.findIndex((x) => same(x.name, name));
    const next = [...this.teams];
    if (!t) next.splice(i, 1); else if (i < 0) next.push(t); else next[i] = t;
    await writeFileAtomic(this.path, `${JSON.stringify(next, null, 2)}\n`);
    this.teams = next;
  }
}
