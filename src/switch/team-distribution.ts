// Which team member sends a frame: the load-balancing algorithms of Windows Server 2012 R2
// LBFO (New-NetLbfoTeam -LoadBalancingAlgorithm). Pure: members are names, time is the `now`
// (ms) given; team-uplink.ts passes the members that may carry traffic at that moment.
// - TransportPorts / IPAddresses / MacAddresses: by the address hash (flow-hash.ts) at that
//   level, with its fallbacks: one flow, one member, as long as the members that may carry
//   stay the same.
// - HyperVPort: by the switch port the frame came from: a VM NIC sticks to one member (its
//   MAC is learned on one path only by the physical network) and new ports go to the member
//   fewest ports prefer. A port keeps its preferred member across that member's failure and
//   goes back to it when it recovers.
// - Dynamic: flowlets. A flow (the TransportPorts hash) stays on its member while its frames
//   keep coming; once it has been idle for FLOWLET_GAP_MS, its next frame starts a new
//   flowlet, placed on the member with the least recent load. Frames sent before a gap have
//   left (or are lost) by the time the flow moves, so moving cannot reorder it — as long as the
//   gap exceeds the difference in delay between members: on this machine's UDP tunnels that is
//   the receiving daemon's event-loop latency, well under 50 ms even loaded.
// Depends on flow-hash.
import { addressHash, stringHash } from './flow-hash.ts';

export type LoadBalancingAlgorithm = 'TransportPorts' | 'IPAddresses' | 'MacAddresses' | 'HyperVPort' | 'Dynamic';
export const LOAD_BALANCING_ALGORITHMS: readonly LoadBalancingAlgorithm[] = ['TransportPorts', 'IPAddresses', 'MacAddresses', 'HyperVPort', 'Dynamic'];

/** Idle time after which a flow may move to another member. */
export const FLOWLET_GAP_MS = 50;
/** Time constant of Dynamic's per-member load (bytes, decaying exponentially). */
const LOAD_TAU_MS = 1000;
/** Dynamic's flow table is swept of idle flows (which would start a new flowlet anyway) beyond this size. */
const MAX_FLOWS = 65_536;

export interface Distribution {
  /** The member (one of `pool`, which is never empty) that sends `frame` of `bytes`. */
  pick(frame: Uint8Array, sourcePort: string | undefined, pool: readonly string[], now: number): string;
  /** The team's members changed: forget what names one that is gone. */
  setMembers(all: readonly string[]): void;
}

class AddressHashDistribution implements Distribution {
  constructor(private readonly level: 'TransportPorts' | 'IPAddresses' | 'MacAddresses') {}
  pick(frame: Uint8Array, _port: string | undefined, pool: readonly string[]): string {
    return pool[addressHash(frame, this.level) % pool.length]!;
  }
  setMembers(): void {}
}

class HyperVPortDistribution implements Distribution {
  /** Switch port id → the member it prefers. */
  private readonly preferred = new Map<string, string>();
  private all: readonly string[] = [];

  pick(frame: Uint8Array, port: string | undefined, pool: readonly string[]): string {
    // A frame that lost its source port (it waited in a fair queue) goes by its flow.
    if (port === undefined) return pool[addressHash(frame, 'TransportPorts') % pool.length]!;
    const name = this.preferred.get(port) ?? this.assign(port);
    return pool.includes(name) ? name : pool[stringHash(port) % pool.length]!;
  }

  setMembers(all: readonly string[]): void {
    this.all = all;
    for (const [port, member] of this.preferred) if (!all.includes(member)) this.preferred.delete(port);
  }

  /** A new port prefers the member fewest ports prefer (failed ones too: the port goes there when it recovers). */
  private assign(port: string): string {
    const load = new Map(this.all.map((m) => [m, 0]));
    for (const m of this.preferred.values()) load.set(m, (load.get(m) ?? 0) + 1);
    let best = this.all[0]!;
    for (const [m, n] of load) if (n < load.get(best)!) best = m;
    this.preferred.set(port, best);
    return best;
  }
}

class DynamicDistribution implements Distribution {
  private readonly flows = new Map<number, { member: string; last: number }>();
  private readonly load = new Map<string, { bytes: number; at: number }>();

  pick(frame: Uint8Array, _port: string | undefined, pool: readonly string[], now: number): string {
    const key = addressHash(frame, 'TransportPorts');
    let flow = this.flows.get(key);
    if (!flow || now - flow.last >= FLOWLET_GAP_MS || !pool.includes(flow.member)) {
      const member = this.leastLoaded(pool, now);
      if (!flow) {
        if (this.flows.size >= MAX_FLOWS) this.sweep(now);
        flow = { member, last: now };
        this.flows.set(key, flow);
      }
      flow.member = member;
    }
    flow.last = now;
    this.add(flow.member, frame.length, now);
    return flow.member;
  }

  setMembers(all: readonly string[]): void {
    for (const m of this.load.keys()) if (!all.includes(m)) this.load.delete(m);
  }

  private decayed(member: string, now: number): number {
    const l = this.load.get(member);
    return l ? l.bytes * Math.exp(-(now - l.at) / LOAD_TAU_MS) : 0;
  }

  private add(member: string, bytes: number, now: number): void {
    this.load.set(member, { bytes: this.decayed(member, now) + bytes, at: now });
  }

  /** Ties go to the first member in pool order. */
  private leastLoaded(pool: readonly string[], now: number): string {
    let best = pool[0]!;
    let bestLoad = this.decayed(best, now);
    for (const m of pool) {
      const l = this.decayed(m, now);
      if (l < bestLoad) { best = m; bestLoad = l; }
    }
    return best;
  }

  private sweep(now: number): void {
    for (const [k, f] of this.flows) if (now - f.last >= FLOWLET_GAP_MS) this.flows.delete(k);
  }
}

export function distribution(a: LoadBalancingAlgorithm): Distribution {
  switch (a) {
    case 'HyperVPort': return new HyperVPortDistribution();
    case 'Dynamic': return new DynamicDistribution();
    default: return new AddressHashDistribution(a);
  }
}
