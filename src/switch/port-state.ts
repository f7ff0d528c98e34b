// A port's runtime state: its I/O, its policy compiled for the per-frame path (VLAN view,
// guards, ACLs, shapers), counters and capture. Rebuilt in place when the policy changes
// (counters, stateful flows and meters survive). Depends on policy, vlan, guards, acl,
// bandwidth, stats, capture, port-io.
import { macToNumber, parseMac, parseIpv4Address, parseIpv6Address, ipv6Key } from '../packet/index.ts';
import type { PortPolicy } from './policy.ts';
import { PortVlan } from './vlan.ts';
import type { CompiledGuards } from './guards.ts';
import { PortAcls } from './acl.ts';
import type { RateLimiter, FairQueue } from './bandwidth.ts';
import { newCounters, type PortCounters } from './stats.ts';
import type { PcapCapture } from './capture.ts';
import type { PortIo } from './port-io.ts';

export type PortKind = 'vm' | 'uplink' | 'sink';

export class PortState {
  io: PortIo | null = null;
  vlan!: PortVlan;
  guards!: CompiledGuards;
  acls!: PortAcls;
  readonly counters: PortCounters = newCounters();
  capture: PcapCapture | null = null;
  limiter: RateLimiter | null = null;
  fairQueue: FairQueue | null = null;
  mirrorSource = false;
  mirrorDest = false;
  /** The port's virtual subnet (0 = none; an uplink is in none). */
  vsid = 0;
  /** Reasons the port's reading is paused (rate limit, congested destinations). */
  private holds = 0;
  /** Destinations this port currently waits for. */
  readonly waitingFor = new Set<string>();
  /** Guards, ACLs or learning apply (false for uplinks). */
  readonly policed: boolean;
  /**
   * On its switch (between attach and detach): frames a removed port left behind are not
   * processed. A field, not a lookup of the port's id: the pipeline asks for every frame.
   */
  attached = false;
  /** A number unique among the ports its switch ever had (the flow cache's key for the port); -1 before attach. */
  index = -1;
  /**
   * When a cached flow of this port last refreshed its source address's claim (and passed the
   * ARP guard on it): the time, the claim table's version and the address. Until one of them
   * changes the same claim answers the same, for every flow of the port (switch.ts forwardCached).
   */
  claimedAt = -1;
  claimedVersion = -1;
  claimedAddr = -1;
  /** A forwarding extension offered a flow of this port for the cache: with one enabled, only such ports' frames probe it. */
  extFlows = false;
  /** The forwarding extension keyed a flow of this port (SwitchExtension.flowKey): its frames probe by the extension's key. */
  extKeyed = false;

  constructor(readonly id: string, readonly kind: PortKind, readonly socketPath: string, public policy: PortPolicy) {
    this.policed = kind !== 'uplink';
    this.compile(policy);
  }

  compile(p: PortPolicy): void {
    this.policy = p;
    this.vlan = this.kind === 'uplink' ? new PortVlan('uplink') : new PortVlan(p.vlan);
    const prevMac = this.guards?.mac ?? -1;
    this.guards = {
      mac: p.mac ? macToNumber(parseMac(p.mac)) : prevMac,
      macSpoofingAllowed: this.kind === 'uplink' || p.guards.macAddressSpoofing === 'On',
      dhcpGuard: p.guards.dhcpGuard === 'On',
      routerGuard: p.guards.routerGuard === 'On',
      arpGuard: p.guards.arpGuard === 'On',
    };
    this.acls = new PortAcls(p.extendedAcls, p.acls, this.acls?.flows, this.acls?.meters);
    this.mirrorSource = p.mirroring === 'Source';
    this.mirrorDest = p.mirroring === 'Destination';
    this.vsid = this.kind === 'uplink' ? 0 : p.virtualSubnetId ?? 0;
  }

  /** Stops reading from the peer until every hold is released. */
  hold(): void { if (this.holds++ === 0) this.io?.pause(); }
  release(): void { if (this.holds > 0 && --this.holds === 0) this.io?.resume(); }

  /** Configured addresses as IpOwners keys (IPv4 number, IPv6 key string). */
  fixedAddresses(): (number | string)[] {
    return this.policy.ipAddresses.map((a) => (a.includes(':') ? ipv6Key(parseIpv6Address(a), 0) : parseIpv4Address(a)));
  }
}
