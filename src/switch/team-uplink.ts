// NIC teaming (Windows Server 2012 R2 LBFO): an External switch's uplink made of several UDP
// tunnels (uplink.ts), the team's members. Each frame from the switch leaves through one member
// that may carry traffic, chosen by the load-balancing algorithm (team-distribution.ts). Which
// members may carry depends on the teaming mode:
// - SwitchIndependent and Static: every member whose peer was heard (frame or keepalive,
//   which every UdpUplinkIo sends each second) within FAIL_MS and whose adapter is enabled —
//   the keepalive is the tunnel's link state. Static is the switch-dependent mode without
//   negotiation: the far end must treat the members as one link, nothing checks that it does.
// - Lacp: the members the LACP machines (lacp.ts) put in Collecting/Distributing with the
//   partner's agreement; the link state is the adapter's (its socket open), partner loss is
//   LACP's timeout (3 s with -LacpTimer Fast, 90 s with Slow). LACPDUs are the team's own:
//   never handed to the switch, and a member hands frames to the switch only while it is
//   collecting.
// Slow Protocols frames (LACPDUs, Markers) never pass between the switch and the members, either way.
// This file is the I/O around the pure parts: sockets, the clock, counters. Depends on
// port-io, uplink, lacp, team-distribution, flow-hash.
import { VmhostError } from '../common/errors.ts';
import { ETHERTYPE_SLOW, encodeLacpdu, formatLacpState, formatLacpSystem, isLacpFrame, parseLacpdu } from '../packet/index.ts';
import { stringHash } from './flow-hash.ts';
import { LacpTeam, type LacpTimer, type MuxState } from './lacp.ts';
import { frameOf, type PortIo, type PortIoEvents, type SendResult } from './port-io.ts';
import { distribution, type Distribution, type LoadBalancingAlgorithm } from './team-distribution.ts';
import { UdpUplinkIo, type UplinkSettings } from './uplink.ts';

export type { LoadBalancingAlgorithm } from './team-distribution.ts';
export type TeamingMode = 'SwitchIndependent' | 'Static' | 'Lacp';

export interface TeamMemberSettings {
  readonly name: string;
  readonly uplink: UplinkSettings;
  /** False while the adapter is disabled (Disable-NetAdapter): its socket stays closed. */
  readonly enabled: boolean;
}

export interface TeamSettings {
  readonly team: string;
  /** SwitchIndependent when absent (a team saved before the other modes existed). */
  readonly mode?: TeamingMode;
  readonly algorithm: LoadBalancingAlgorithm;
  /** Lacp only: Fast when absent. */
  readonly lacpTimer?: LacpTimer;
  readonly members: readonly TeamMemberSettings[];
}

/** What an External switch's uplink is: one tunnel, or a team of them. */
export type UplinkSpec = UplinkSettings | TeamSettings;

export function isTeamSettings(u: UplinkSpec): u is TeamSettings {
  return 'members' in u;
}

/** Three missed keepalives. */
export const FAIL_MS = 3000;
/** How often member status and the LACP timers are re-evaluated. */
const CHECK_MS = 100;

export interface TeamMemberLacp {
  readonly mux: MuxState;
  readonly actorState: string;
  /** The partner's system (priority,MAC), key and port; empty while it has none. */
  readonly partner: string;
  readonly partnerState: string;
  /** The aggregator it selected (the lowest member port facing the same partner), 0 when none; several when members face several partners. */
  readonly aggregator: number;
  /** Selected into an aggregator the team does not use (not the one with the most members). */
  readonly standby: boolean;
  readonly lacpdusSent: number;
  readonly lacpdusReceived: number;
}

export interface TeamMemberStatus {
  readonly name: string;
  readonly status: 'Active' | 'Failed';
  /** Why a member is Failed. */
  readonly reason: 'Disabled' | 'NoKeepalive' | 'LacpNegotiationIssue' | null;
  readonly rxFrames: number;
  readonly rxBytes: number;
  readonly txFrames: number;
  readonly txBytes: number;
  readonly lacp?: TeamMemberLacp;
}

interface Member {
  settings: TeamMemberSettings;
  io: UdpUplinkIo | null;
  counters: { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number; lacpdusSent: number; lacpdusReceived: number };
}

export class TeamUplinkIo implements PortIo {
  readonly connected = true;
  readonly congested = false;
  private members: Member[] = [];
  /** Names of the members that may carry frames now, in member order. */
  private pool: string[] = [];
  private paused = false;
  private distribution: Distribution;
  private lacp: LacpTeam | null = null;
  private readonly timer: NodeJS.Timeout;

  private constructor(private settings: TeamSettings, private readonly ev: PortIoEvents) {
    this.distribution = distribution(settings.algorithm);
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
   * closes, so a failed bind (SWITCH_UPLINK) changes nothing. The LACP machines start over
   * when the members, the mode or the timer change, and live on across a member's adapter
   * being disabled or enabled (the other members stay aggregated).
   */
  async apply(s: TeamSettings): Promise<void> {
    if (s.members.length === 0) throw new VmhostError('SWITCH_UPLINK', `team ${s.team} has no member`, { op: 'team', team: s.team });
    const old = new Map(this.members.map((m) => [m.settings.name, m]));
    const opened: UdpUplinkIo[] = [];
    const next: Member[] = [];
    try {
      for (const ms of s.members) {
        const prev = old.get(ms.name);
        const keep = prev?.io && ms.enabled && sameEndpoints(prev.settings.uplink, ms.uplink);
        // A kept socket reports to the Member object it was opened with: keep that object too.
        const m: Member = keep ? Object.assign(prev, { settings: ms })
          : { settings: ms, io: null, counters: prev?.counters ?? { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, lacpdusSent: 0, lacpdusReceived: 0 } };
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
    const was = this.settings;
    const sameLacp = this.lacp !== null && was.mode === s.mode && was.lacpTimer === s.lacpTimer && sameNames(was.members, s.members);
    if (was.algorithm !== s.algorithm || !this.members.length) this.distribution = distribution(s.algorithm);
    this.settings = s;
    this.members = next;
    this.distribution.setMembers(next.map((m) => m.settings.name));
    if (s.mode !== 'Lacp') this.lacp = null;
    else if (!sameLacp) this.lacp = new LacpTeam(lacpActor(s), next.map((_, i) => i + 1));
    const now = performance.now();
    next.forEach((m, i) => this.lacp?.setEnabled(i, m.io !== null, now));
    this.refresh();
    await Promise.all(closing);
  }

  status(): TeamMemberStatus[] {
    const lacp = this.lacp?.status();
    return this.members.map((m, i) => {
      const active = this.pool.includes(m.settings.name);
      const l = lacp?.[i];
      const { lacpdusSent, lacpdusReceived, ...counters } = m.counters;
      return {
        name: m.settings.name,
        status: active ? 'Active' : 'Failed',
        reason: active ? null : !m.io ? 'Disabled' : l ? 'LacpNegotiationIssue' : 'NoKeepalive',
        ...counters,
        ...(l ? {
          lacp: {
            mux: l.mux, actorState: formatLacpState(l.actorState), partnerState: formatLacpState(l.partner.state), aggregator: l.aggregator, standby: l.standby, lacpdusSent, lacpdusReceived,
            partner: l.partner.port === 0 ? '' : `${formatLacpSystem(l.partner)} key ${l.partner.key} port ${l.partner.port}`,
          },
        } : {}),
      };
    });
  }

  send(bytes: Uint8Array, start: number, length: number, sourcePort?: string): SendResult {
    const frame = frameOf(bytes, start, length);
    if (isSlowProtocols(frame)) return 'ok'; // a bridge never forwards them
    let pool = this.pool;
    // Without LACP, a frame sent into a possibly dead link beats a certain drop; with it, a
    // member the partner did not agree to is never used.
    if (pool.length === 0 && !this.lacp) pool = this.members.filter((m) => m.io).map((m) => m.settings.name);
    if (pool.length === 0) return 'not-connected';
    const name = pool.length === 1 ? pool[0]! : this.distribution.pick(frame, sourcePort, pool, performance.now());
    const m = this.members.find((x) => x.settings.name === name);
    if (!m?.io) return 'not-connected';
    m.io.send(frame, 0, frame.length);
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
    this.pool = [];
    this.lacp = null;
    await Promise.all(ios.map((io) => io.close()));
  }

  private refresh(): void {
    const now = performance.now();
    if (this.lacp) {
      this.lacp.tick(now);
      this.sendLacpdus(now);
      this.pool = this.members.filter((m, i) => m.io !== null && this.lacp!.distributing(i)).map((m) => m.settings.name);
    } else {
      this.pool = this.members.filter((m) => m.io !== null && now - m.io.lastHeard < FAIL_MS).map((m) => m.settings.name);
    }
  }

  private sendLacpdus(now: number): void {
    for (const [i, f] of this.lacp!.transmit(now)) {
      const m = this.members[i]!;
      if (!m.io) continue;
      const pdu = encodeLacpdu({ src: memberMac(this.settings, i), ...f });
      m.io.send(pdu, 0, pdu.length);
      m.counters.lacpdusSent++;
    }
  }

  private memberEvents(m: Member): PortIoEvents {
    return {
      onFrame: (f) => {
        const i = this.members.indexOf(m);
        if (isSlowProtocols(f)) {
          // Link-local to the team (LACP, Marker): never the switch's, whatever the mode.
          const pdu = isLacpFrame(f) ? parseLacpdu(f) : null;
          if (!this.lacp || !pdu?.ok || i < 0) return;
          m.counters.lacpdusReceived++;
          this.lacp.receive(i, pdu, performance.now());
          this.refresh();
          return;
        }
        if (this.lacp && (i < 0 || !this.lacp.collecting(i))) return;
        m.counters.rxFrames++;
        m.counters.rxBytes += f.length;
        this.ev.onFrame(f);
      },
      onError: (reason) => this.ev.onError(reason),
    };
  }
}

/**
 * The team's LACP system id: a locally administered MAC from the team's name and its members'
 * local endpoints — stable across restarts, different on each host (two hosts never bind the
 * same local address and port).
 */
function lacpActor(s: TeamSettings) {
  return { systemPriority: 32768, system: systemMac(s), key: 1, active: true, timer: s.lacpTimer ?? 'Fast' } as const;
}

function systemMac(s: TeamSettings): Uint8Array {
  const h1 = stringHash(`${s.team}|${s.members.map((m) => `${m.uplink.localAddress}:${m.uplink.localPort}`).join(',')}`);
  const h2 = stringHash(`${h1}`);
  return new Uint8Array([0x02, h1 >>> 24, (h1 >>> 16) & 0xff, (h1 >>> 8) & 0xff, h1 & 0xff, h2 & 0xfe]);
}

/** A member's own MAC, the LACPDU's source: the system's, its last byte plus 2 × (index + 1) (still unicast). */
function memberMac(s: TeamSettings, i: number): Uint8Array {
  const mac = systemMac(s);
  mac[5] = (mac[5]! + 2 * (i + 1)) & 0xff;
  return mac;
}

function isSlowProtocols(f: Uint8Array): boolean {
  return f.length >= 14 && ((f[12]! << 8) | f[13]!) === ETHERTYPE_SLOW;
}

function sameEndpoints(a: UplinkSettings, b: UplinkSettings): boolean {
  return a.localAddress === b.localAddress && a.localPort === b.localPort && a.remoteAddress === b.remoteAddress && a.remotePort === b.remotePort;
}

function sameNames(a: readonly TeamMemberSettings[], b: readonly TeamMemberSettings[]): boolean {
  return a.length === b.length && a.every((m, i) => m.name === b[i]!.name);
}
