// LACP (IEEE 802.1AX-2008 §5.4, formerly 802.3ad) for one NIC team: per member the Receive,
// Periodic Transmission, Mux (coupled control) and Transmit machines, and the Selection logic
// over the team's aggregators. Pure: time is the `now` (ms) each call is given, frames go
// in as parsed LACPDUs and come out as LacpduFields — team-uplink.ts does the I/O and the
// clock, lacp.test.ts drives it with a fake one.
//
// What a member may do follows from the machines: it carries the team's frames only when its
// Mux is COLLECTING_DISTRIBUTING *and* the partner's last LACPDU says Synchronization and
// Collecting (the partner agrees to take them); it hands received frames to the switch only
// while it is itself Collecting. A partner that goes silent is Expired after the timeout
// (3 × the periodic interval it asked for: 3 s with the Fast timer, 90 s with Slow), which
// takes the member out of distribution at once, then Defaulted after a further short timeout,
// which unselects it. Members facing different partners (another system or key) form one
// aggregator per partner (§5.4.14: a Link Aggregation Group per partner system and key, its
// aggregator named by its lowest member port); the team uses one, the aggregator with the most
// members (a tie keeps the one in use, else the lowest), and the members of the others are
// Standby: selected, their Mux held in WAITING, so their partner never sees them in sync and
// neither side sends on them. A member whose partner changes is unselected, detaches and
// selects the aggregator of its new partner. Left out: churn detection and the Marker protocol
// (the distributors move a flow only where order cannot suffer, see team-distribution.ts).
// Depends on packet.
import {
  LACP_ACTIVITY, LACP_AGGREGATION, LACP_COLLECTING, LACP_DEFAULTED, LACP_DISTRIBUTING, LACP_EXPIRED, LACP_SYNCHRONIZATION, LACP_TIMEOUT,
  type LacpInfo, type Lacpdu, type LacpduFields,
} from '../packet/index.ts';

/** §5.4.4 constants. */
export const FAST_PERIODIC_MS = 1000;
export const SLOW_PERIODIC_MS = 30_000;
export const SHORT_TIMEOUT_MS = 3 * FAST_PERIODIC_MS;
export const LONG_TIMEOUT_MS = 3 * SLOW_PERIODIC_MS;
export const AGGREGATE_WAIT_MS = 2000;
/** The Transmit machine sends at most this many LACPDUs per FAST_PERIODIC_MS. */
const TX_LIMIT = 3;

export type LacpTimer = 'Fast' | 'Slow';
export type RxState = 'PortDisabled' | 'Expired' | 'Defaulted' | 'Current';
export type MuxState = 'Detached' | 'Waiting' | 'Attached' | 'CollectingDistributing';

export interface LacpActor {
  readonly systemPriority: number;
  readonly system: Uint8Array;
  /** The team's operational key: the same on every member. */
  readonly key: number;
  /** Active sends LACPDUs unasked; Passive answers an Active partner only. */
  readonly active: boolean;
  /** Fast: the partner is asked to send every second and is timed out after 3 s; Slow: 30 s and 90 s. */
  readonly timer: LacpTimer;
}

export interface LacpPortStatus {
  readonly port: number;
  readonly rx: RxState;
  readonly mux: MuxState;
  readonly selected: boolean;
  /** Selected into an aggregator the team does not use (§5.4.14 STANDBY): its Mux waits. */
  readonly standby: boolean;
  /** The aggregator it selected (the lowest member port of its group), 0 when Unselected. */
  readonly aggregator: number;
  readonly actorState: number;
  readonly partner: LacpInfo;
  /** Carries the team's outgoing frames. */
  readonly distributing: boolean;
  /** Hands received frames to the switch. */
  readonly collecting: boolean;
}

/** Partner_Admin values: what a port assumes when it has heard no LACPDU (no partner at all). */
const ADMIN_PARTNER: LacpInfo = { systemPriority: 0, system: new Uint8Array(6), key: 0, portPriority: 0, port: 0, state: 0 };
const PORT_PRIORITY = 255;

class Port {
  actorState: number;
  partner: LacpInfo = ADMIN_PARTNER;
  rx: RxState = 'PortDisabled';
  mux: MuxState = 'Detached';
  selected = false;
  standby = false;
  /** The group (partner system priority, system and key) it selected; '' when Unselected. */
  group = '';
  aggregator = 0;
  enabled = false;
  ntt = false;
  currentWhile = Infinity;
  waitWhile = Infinity;
  periodicAt = Infinity;
  periodMs = 0;
  readonly sent: number[] = [];

  constructor(readonly port: number, actor: LacpActor) {
    this.actorState = (actor.active ? LACP_ACTIVITY : 0) | (actor.timer === 'Fast' ? LACP_TIMEOUT : 0) | LACP_AGGREGATION | LACP_DEFAULTED;
  }

  get distributing(): boolean {
    return this.mux === 'CollectingDistributing' && (this.partner.state & (LACP_SYNCHRONIZATION | LACP_COLLECTING)) === (LACP_SYNCHRONIZATION | LACP_COLLECTING);
  }
}

const sameId = (a: Omit<LacpInfo, 'state'>, b: Omit<LacpInfo, 'state'>): boolean =>
  a.port === b.port && a.portPriority === b.portPriority && a.key === b.key && a.systemPriority === b.systemPriority && sameSystem(a.system, b.system);
const sameSystem = (a: Uint8Array, b: Uint8Array): boolean => a.every((x, i) => x === b[i]);
/** A port's Link Aggregation Group: its partner's system and key (the actor's are the team's). */
const groupOf = (p: Port): string => `${p.partner.systemPriority}/${p.partner.system.join(':')}/${p.partner.key}`;
const has = (state: number, bits: number): boolean => (state & bits) === bits;

export class LacpTeam {
  private readonly ports: Port[];
  /** The group whose aggregator carries the team's frames; '' for none. */
  private active = '';

  /** `ports`: the members' LACP port numbers (1-based, unique in the team). */
  constructor(private readonly actor: LacpActor, ports: readonly number[]) {
    this.ports = ports.map((n) => new Port(n, actor));
  }

  /** port_enabled: the member's link is up (its tunnel open and its peer heard). */
  setEnabled(i: number, enabled: boolean, now: number): void {
    const p = this.ports[i]!;
    if (p.enabled === enabled) return;
    p.enabled = enabled;
    if (!enabled) this.enterRx(p, 'PortDisabled', now);
    else this.enterRx(p, 'Expired', now);
    this.run(now);
  }

  /** A LACPDU received on member `i`. */
  receive(i: number, pdu: Lacpdu, now: number): void {
    const p = this.ports[i]!;
    if (!p.enabled) return;
    // update_Selected, update_NTT, recordPDU (§5.4.12 RX CURRENT).
    const agg = (s: number): number => s & LACP_AGGREGATION;
    if (!sameId(pdu.actor, p.partner) || agg(pdu.actor.state) !== agg(p.partner.state)) p.selected = false;
    const me = this.actorInfo(p);
    const NTT_BITS = LACP_ACTIVITY | LACP_TIMEOUT | LACP_SYNCHRONIZATION | LACP_AGGREGATION;
    if (!sameId(pdu.partner, me) || (pdu.partner.state & NTT_BITS) !== (p.actorState & NTT_BITS)) p.ntt = true;
    const matched = sameId(pdu.partner, me) && agg(pdu.partner.state) === agg(p.actorState);
    const active = has(pdu.actor.state, LACP_ACTIVITY) || (has(p.actorState, LACP_ACTIVITY) && has(pdu.partner.state, LACP_ACTIVITY));
    const sync = has(pdu.actor.state, LACP_SYNCHRONIZATION) && (matched || !has(pdu.actor.state, LACP_AGGREGATION)) && active;
    p.partner = { ...pdu.actor, state: sync ? pdu.actor.state | LACP_SYNCHRONIZATION : pdu.actor.state & ~LACP_SYNCHRONIZATION };
    p.actorState &= ~(LACP_DEFAULTED | LACP_EXPIRED);
    p.rx = 'Current';
    p.currentWhile = now + (has(p.actorState, LACP_TIMEOUT) ? SHORT_TIMEOUT_MS : LONG_TIMEOUT_MS);
    this.run(now);
  }

  /** Timers: call at least every few hundred ms. */
  tick(now: number): void { this.run(now); }

  /** LACPDUs due now, as [member index, fields]; `src` is left to the caller (the member's MAC). */
  transmit(now: number): [number, Omit<LacpduFields, 'src'>][] {
    const out: [number, Omit<LacpduFields, 'src'>][] = [];
    this.ports.forEach((p, i) => {
      if (!p.ntt || !p.enabled || (!has(p.actorState, LACP_ACTIVITY) && !has(p.partner.state, LACP_ACTIVITY))) return;
      while (p.sent.length > 0 && p.sent[0]! <= now - FAST_PERIODIC_MS) p.sent.shift();
      if (p.sent.length >= TX_LIMIT) return; // NTT stays: sent at a later tick
      p.sent.push(now);
      p.ntt = false;
      out.push([i, { actor: this.actorInfo(p), partner: p.partner, collectorMaxDelay: 0 }]);
    });
    return out;
  }

  distributing(i: number): boolean { return this.ports[i]!.distributing; }
  collecting(i: number): boolean { return has(this.ports[i]!.actorState, LACP_COLLECTING); }

  status(): LacpPortStatus[] {
    return this.ports.map((p) => ({
      port: p.port, rx: p.rx, mux: p.mux, selected: p.selected, standby: p.standby, aggregator: p.aggregator,
      actorState: p.actorState, partner: p.partner, distributing: p.distributing, collecting: has(p.actorState, LACP_COLLECTING),
    }));
  }

  private actorInfo(p: Port): LacpInfo {
    return { systemPriority: this.actor.systemPriority, system: this.actor.system, key: this.actor.key, portPriority: PORT_PRIORITY, port: p.port, state: p.actorState };
  }

  private enterRx(p: Port, s: RxState, now: number): void {
    p.rx = s;
    p.partner = { ...p.partner, state: p.partner.state & ~LACP_SYNCHRONIZATION };
    if (s === 'PortDisabled') {
      p.currentWhile = Infinity;
    } else if (s === 'Expired') {
      // Ask the partner for fast LACPDUs while we wait to hear from it again.
      p.partner = { ...p.partner, state: p.partner.state | LACP_TIMEOUT };
      p.currentWhile = now + SHORT_TIMEOUT_MS;
      p.actorState |= LACP_EXPIRED;
    } else if (s === 'Defaulted') {
      if (!sameId(p.partner, ADMIN_PARTNER)) p.selected = false; // update_Default_Selected
      p.partner = ADMIN_PARTNER;
      p.actorState = (p.actorState | LACP_DEFAULTED) & ~LACP_EXPIRED;
      p.currentWhile = Infinity;
    }
  }

  /** Runs every machine until none moves (a state change may enable another's transition). */
  private run(now: number): void {
    for (const p of this.ports) if (p.currentWhile <= now) this.enterRx(p, p.rx === 'Current' ? 'Expired' : 'Defaulted', now);
    for (let round = 0; round < 8; round++) {
      this.select();
      let moved = false;
      for (const p of this.ports) moved = this.mux(p, now) || moved;
      if (!moved) break;
    }
    for (const p of this.ports) this.periodic(p, now);
  }

  /**
   * Selection logic, one aggregator per partner: a member that could aggregate selects the
   * group of its partner's system and key (once its Mux has detached from any earlier one); a
   * member that can no longer, or whose partner is no longer its group's, is unselected. The
   * group with the most selected members is the team's active one (a tie keeps the current one,
   * else the group of the lowest port); the members of the others are Standby.
   */
  private select(): void {
    const eligible = (p: Port): boolean => p.enabled && (p.rx === 'Current' || p.rx === 'Expired') && has(p.actorState, LACP_AGGREGATION) && has(p.partner.state, LACP_AGGREGATION);
    const members = new Map<string, Port[]>();
    for (const p of this.ports) {
      if (p.selected && (!eligible(p) || groupOf(p) !== p.group)) p.selected = false;
      else if (!p.selected && eligible(p) && p.mux === 'Detached') { p.selected = true; p.group = groupOf(p); }
      if (!p.selected) { p.group = ''; p.aggregator = 0; p.standby = false; continue; }
      members.set(p.group, [...(members.get(p.group) ?? []), p]);
    }
    let best = members.has(this.active) ? this.active : '';
    for (const [g, ps] of members) if (best === '' || ps.length > members.get(best)!.length) best = g;
    this.active = best;
    for (const [g, ps] of members) {
      const id = Math.min(...ps.map((p) => p.port));
      for (const p of ps) { p.aggregator = id; p.standby = g !== best; }
    }
  }

  /** Mux machine, coupled control (§5.4.15). Returns whether it moved. */
  private mux(p: Port, now: number): boolean {
    const to = (s: MuxState): boolean => {
      p.mux = s;
      // Every state but WAITING changes what the actor says: the partner must hear it.
      if (s !== 'Waiting') p.ntt = true;
      if (s === 'Detached') p.actorState &= ~(LACP_SYNCHRONIZATION | LACP_COLLECTING | LACP_DISTRIBUTING);
      if (s === 'Waiting') p.waitWhile = now + AGGREGATE_WAIT_MS;
      if (s === 'Attached') p.actorState = (p.actorState | LACP_SYNCHRONIZATION) & ~(LACP_COLLECTING | LACP_DISTRIBUTING);
      if (s === 'CollectingDistributing') p.actorState |= LACP_COLLECTING | LACP_DISTRIBUTING;
      return true;
    };
    const partnerSync = has(p.partner.state, LACP_SYNCHRONIZATION);
    switch (p.mux) {
      case 'Detached': return p.selected ? to('Waiting') : false;
      case 'Waiting':
        if (!p.selected) return to('Detached');
        if (p.standby) return false;
        // Ready: every member of its aggregator waiting to attach has waited, so they attach together.
        return this.ports.every((q) => q.group !== p.group || q.mux !== 'Waiting' || q.waitWhile <= now) ? to('Attached') : false;
      case 'Attached':
        if (!p.selected || p.standby) return to('Detached');
        return partnerSync ? to('CollectingDistributing') : false;
      case 'CollectingDistributing':
        return !p.selected || p.standby || !partnerSync ? to('Attached') : false;
    }
  }

  /** Periodic Transmission machine: none when neither side is Active, else at the rate the partner asked for. */
  private periodic(p: Port, now: number): void {
    const period = !p.enabled || (!has(p.actorState, LACP_ACTIVITY) && !has(p.partner.state, LACP_ACTIVITY)) ? 0
      : has(p.partner.state, LACP_TIMEOUT) ? FAST_PERIODIC_MS : SLOW_PERIODIC_MS;
    if (period !== p.periodMs) {
      // Faster than before: send now (PERIODIC_TX), not at the end of the slow period.
      if (period !== 0 && (p.periodMs === 0 || period < p.periodMs)) p.ntt = true;
      p.periodMs = period;
      p.periodicAt = period === 0 ? Infinity : now + period;
    } else if (p.periodicAt <= now) {
      p.ntt = true;
      p.periodicAt = now + period;
    }
  }
}
