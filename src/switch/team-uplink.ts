// NIC teaming (Windows Server 2012 R2 LBFO, switch-independent): an External switch's uplink
// made of several UDP tunnels (uplink.ts), the team's members. Every member receives; each
// frame leaves through one *active* member chosen by the load-balancing algorithm:
// - HyperVPort: by the switch port the frame came from, so a VM NIC sticks to one member (its
//   MAC is learned on one path only by the physical network) and VM NICs are spread evenly;
// - TransportPorts and Dynamic: by a hash of the flow (flow-hash.ts). Windows' Dynamic also
//   rebalances flowlets and receives per Hyper-V port; over a UDP tunnel neither changes
//   which member a frame may take, so outbound it is the flow hash here.
// A member is Failed when nothing (frame or keepalive, which every UdpUplinkIo sends each
// second) came from its peer for FAIL_MS, or while its adapter is disabled (socket closed);
// its traffic moves to the other active members and comes back when it does. A port's
// preferred member is kept across a failure for that reason. Depends on port-io, uplink,
// flow-hash.
import { VmhostError } from '../common/errors.ts';
import { flowHash } from './flow-hash.ts';
import type { PortIo, PortIoEvents, SendResult } from './port-io.ts';
import { UdpUplinkIo, type UplinkSettings } from './uplink.ts';

export type LoadBalancingAlgorithm = 'HyperVPort' | 'TransportPorts' | 'Dynamic';

export interface TeamMemberSettings {
  readonly name: string;
  readonly uplink: UplinkSettings;
  /** False while the adapter is disabled (Disable-NetAdapter): its socket stays closed. */
  readonly enabled: boolean;
}

export interface TeamSettings {
  readonly team: string;
  readonly algorithm: LoadBalancingAlgorithm;
  readonly members: readonly TeamMemberSettings[];
}

/** What an External switch's uplink is: one tunnel, or a team of them. */
export type UplinkSpec = UplinkSettings | TeamSettings;

export function isTeamSettings(u: UplinkSpec): u is TeamSettings {
  return 'members' in u;
}

/** Three missed keepalives. */
export const FAIL_MS = 3000;
/** How often member status is re-evaluated: failover takes FAIL_MS plus at most this. */
const CHECK_MS = 250;

export interface TeamMemberStatus {
  readonly name: string;
  readonly status: 'Active' | 'Failed';
  /** Why a member is Failed. */
  readonly reason: 'Disabled' | 'NoKeepalive' | null;
  readonly rxFrames: number;
  readonly rxBytes: number;
  readonly txFrames: number;
  readonly txBytes: number;
}

interface Member {
  settings: TeamMemberSettings;
  io: UdpUplinkIo | null;
  counters: { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number };
}

export class TeamUplinkIo implements PortIo {
  readonly connected = true;
  readonly congested = false;
  private members: Member[] = [];
  private active: Member[] = [];
  private paused = false;
  /** HyperVPort: switch port id → name of the member it prefers. */
  private readonly preferred = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;

  private constructor(private settings: TeamSettings, private readonly ev: PortIoEvents) {
    this.timer = setInterval(() => this.refresh(), CHECK_MS);
    this.timer.unref();
  }

  get endpoint(): string { return `team:${this.settings.team}[${this.settings.members.map((m) => m.name).join(',')}]`; }

  static async open(s: TeamSettings, ev: PortIoEvents): Promise<TeamUplinkIo> {
    const team = new TeamUplinkIo(s, ev);
    try {
      await team.apply(s);
    } catch (e) {
      await team.close();
      throw e;
    }
    return team;
  }

  /**
   * Set-NetLbfoTeam, Add-/Remove-NetLbfoTeamMember, Disable-/Enable-NetAdapter: members that
   * stay keep their socket and counters; new or re-enabled ones are bound before any socket
   * closes, so a failed bind (SWITCH_UPLINK) changes nothing.
   */
  async apply(s: TeamSettings): Promise<void> {
    if (s.members.length === 0) throw new VmhostError('SWITCH_UPLINK', `team ${s.team} has no member`, { op: 'team', team: s.team });
    const old = new Map(this.members.map((m) => [m.settings.name, m]));
    const opened: UdpUplinkIo[] = [];
    const next: Member[] = [];
    try {
      for (const ms of s.members) {
        const prev = old.get(ms.name);
        const keep = prev?.io && ms.enabled && sameEndpoints(prev.settings.uplink, ms.uplink) ? prev.io : null;
        const m: Member = { settings: ms, io: keep, counters: prev?.counters ?? { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0 } };
        if (ms.enabled && !keep) {
          m.io = await UdpUplinkIo.open(ms.uplink, this.memberEvents(m));
          opened.push(m.io);
          if (this.paused) m.io.pause();
        }
        next.push(m);
      }
    } catch (e) {
      await Promise.all(opened.map((io) => io.close()));
      throw e;
    }
    const kept = new Set(next.map((m) => m.io));
    const closing = this.members.filter((m) => m.io && !kept.has(m.io)).map((m) => m.io!.close());
    this.settings = s;
    this.members = next;
    const names = new Set(s.members.map((m) => m.name));
    for (const [port, member] of this.preferred) if (!names.has(member)) this.preferred.delete(port);
    this.refresh();
    await Promise.all(closing);
  }

  status(): TeamMemberStatus[] {
    return this.members.map((m) => ({
      name: m.settings.name,
      status: this.active.includes(m) ? 'Active' : 'Failed',
      reason: this.active.includes(m) ? null : m.io ? 'NoKeepalive' : 'Disabled',
      ...m.counters,
    }));
  }

  send(frame: Uint8Array, sourcePort?: string): SendResult {
    const m = this.pick(frame, sourcePort);
    if (!m?.io) return 'not-connected';
    m.io.send(frame);
    m.counters.txFrames++;
    m.counters.txBytes += frame.length;
    return 'ok';
  }

  whenDrained(cb: () => void): void { cb(); }

  pause(): void {
    this.paused = true;
    for (const m of this.members) m.io?.pause();
  }

  resume(): void {
    this.paused = false;
    for (const m of this.members) m.io?.resume();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const ios = this.members.flatMap((m) => (m.io ? [m.io] : []));
    this.members = [];
    this.active = [];
    await Promise.all(ios.map((io) => io.close()));
  }

  /** With no active member, any open one: a frame sent into a possibly dead link beats a certain drop. */
  private pick(frame: Uint8Array, sourcePort: string | undefined): Member | undefined {
    const pool = this.active.length > 0 ? this.active : this.members.filter((m) => m.io);
    if (pool.length <= 1) return pool[0];
    if (this.settings.algorithm === 'HyperVPort' && sourcePort !== undefined) {
      const name = this.preferred.get(sourcePort) ?? this.assign(sourcePort);
      return pool.find((m) => m.settings.name === name) ?? pool[stringHash(sourcePort) % pool.length];
    }
    return pool[flowHash(frame) % pool.length];
  }

  /** A new port prefers the member fewest ports prefer (failed ones too: the port goes there when it recovers). */
  private assign(port: string): string {
    const load = new Map(this.members.map((m) => [m.settings.name, 0]));
    for (const name of this.preferred.values()) load.set(name, (load.get(name) ?? 0) + 1);
    let best = this.members[0]!.settings.name;
    for (const [name, n] of load) if (n < load.get(best)!) best = name;
    this.preferred.set(port, best);
    return best;
  }

  private refresh(): void {
    const now = performance.now();
    this.active = this.members.filter((m) => m.io !== null && now - m.io.lastHeard < FAIL_MS);
  }

  private memberEvents(m: Member): PortIoEvents {
    return {
      onFrame: (f) => {
        m.counters.rxFrames++;
        m.counters.rxBytes += f.length;
        this.ev.onFrame(f);
      },
      onError: (reason) => this.ev.onError(reason),
    };
  }
}

function sameEndpoints(a: UplinkSettings, b: UplinkSettings): boolean {
  return a.localAddress === b.localAddress && a.localPort === b.localPort && a.remoteAddress === b.remoteAddress && a.remotePort === b.remotePort;
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
