// The NVGRE data path: the switch forwarding extension "vmhost.hnv" (Hyper-V 2012 R2's
// Network Virtualization in the switch). Frames of a VM port in a virtual subnet (VSID) go by
// the lookup records, never by flooding:
// - ARP for a customer address or the subnet's gateway is answered here (router.ts), and an
//   IPv6 Neighbor Solicitation with a Neighbor Advertisement (ipv6.ts); no record, no answer
//   (dropped, counted). A Router Solicitation gets the router's Router Advertisement
//   (router-adv.ts), and every port of a subnet with an IPv6 prefix gets one unsolicited now
//   and then (the extension's timer, which the switch runs); a VM's own RA or Redirect is dropped (hnv-router-guard: the host's router
//   is the subnet's only one, whatever the port's RouterGuard, which drops them earlier when On).
// - To the gateway MAC: routed by the distributed router within the routing domain (IPv4:
//   router.ts, IPv6: ipv6.ts; echo requests to an IPv6 gateway address answered), with ICMP
//   errors back to the sender when it cannot be (router-icmp.ts, router-icmp6.ts).
// - Unicast to a MAC of the subnet: to the local port that has it, else encapsulated (RFC 7637:
//   GRE key = VSID << 8 | FlowID, FlowID folded from the inner flow hash so one flow keeps one
//   ECMP path) from this host's PA to the record's PA, out of the uplink.
// - Broadcast/multicast: the subnet's local ports, and one encapsulated copy per remote PA that
//   holds a record of the subnet (unicast replication; no provider multicast).
// NVGRE arriving on the uplink for one of this host's PAs is decapsulated and checked — known
// VSID with local ports, source PA equal to the lookup record of the inner source (its MAC, or
// for a routed frame its CA anywhere in the routing domain, or for a frame from outside the
// gateway's lookup record), destination a local port of that
// VSID — and delivered only there. Frames of ports in no subnet, and uplink traffic that is not
// NVGRE to our PA, are forwarded as the switch does by default.
// The provider network is the External switch's uplink (a UDP tunnel standing in for the
// datacenter's wire): it carries every PA of the host; outer MACs are derived from the PAs
// (compiled.ts paMac), so no ARP runs on the provider side. The provider MTU (default 1500)
// must hold the outer IPv4 packet (DF set): a bigger frame is dropped as 'nvgre-mtu' — guests
// of a virtual subnet run with an MTU of 1500 − 42 = 1458 (CUSTOMER_MTU), which the RA's MTU
// option tells IPv6 guests; the sender gets fragmentation needed (IPv4 with DF) or Packet Too
// Big (IPv6) with that MTU.
// Every refusal is counted on the ingress port by reason and in the extension's status.
// Per frame, unicast to or from the provider network is one lookup of a remembered decision
// (decisions.ts), NVGRE is decoded from the switch's own parse into a reused record, and an
// encapsulated frame is written straight into the uplink's send batch (ExtensionHost.lend);
// the decision handed back is one reused object. A VM's plain unicast decision is offered to
// the switch's flow cache (route-flow.ts), and so is a decapsulation to one local port, under
// the key flowKey reads from the outer and inner headers (decap-flow.ts): the flow's next
// frames never reach forward().
// Depends on packet, switch (the extension API), compiled, decisions, route-flow, decap-flow, router, router-icmp(6), router-adv, ipv6, policy.
import {
  ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_ICMPV6, ND_NEIGHBOR_SOLICIT, ND_REDIRECT, ND_ROUTER_ADVERT, ND_ROUTER_SOLICIT, NVGRE_OVERHEAD, NvgreRecord, NvgreTemplate, decodeNvgreInto, formatMacNumber, nvgreTemplate, isMulticastMac, type FrameInfo,
} from '../packet/index.ts';
import {
  KEY_BY_EXTENSION, KEY_BY_SWITCH, KEY_NONE, UPLINK_PORT_ID,
  type Delivery, type ExtensionDefinition, type ExtensionFlow, type ExtensionFrame, type ExtensionHost, type ExtensionTimer, type ForwardDecision, type PortChange, type SwitchExtension,
} from '../switch/index.ts';
import { CompiledPolicy, paMacNumber } from './compiled.ts';
import { DecapRoute, Decisions, EncapRoute, fillDecapKey } from './decisions.ts';
import { DecapFlow } from './decap-flow.ts';
import { RouteFlow, flowIdOf } from './route-flow.ts';
import { emptyPolicy, type HnvPolicy } from './policy.ts';
import { GATEWAY_MAC, arpAnswer, arpReply, resolve, route } from './router.ts';
import { IcmpErrors, type IcmpErrorKind } from './router-icmp.ts';
import type { Icmpv6ErrorKind } from './router-icmp6.ts';
import { MAX_RTR_ADV_INTERVAL_MS, MIN_RTR_ADV_INTERVAL_MS, advertisementDelay, solicitedAdvertisement, unsolicitedAdvertisement } from './router-adv.ts';
import { Policy6, gatewayEcho6, neighborAnswer, route6, routedSourcePa } from './ipv6.ts';

export const HNV_EXTENSION = 'vmhost.hnv';
export const DEFAULT_PROVIDER_MTU = 1500;
/** The largest IP packet a guest of a virtual subnet may send: the provider MTU less the NVGRE overhead (outer IPv4 + GRE + inner Ethernet header). */
export const CUSTOMER_MTU = DEFAULT_PROVIDER_MTU - NVGRE_OVERHEAD;

const IPPROTO_GRE = 47;

/** The extension's config (Set-VMSwitchExtension's, or what the host pushes on every policy change). */
export interface HnvExtensionConfig {
  readonly policy: HnvPolicy;
  /** The provider network's IP MTU. */
  readonly providerMtu?: number;
  /** MinRtrAdvInterval/MaxRtrAdvInterval of the unsolicited Router Advertisements, ms (RFC 4861 §6.2.1: 200 000/600 000; tests set them short). */
  readonly minRtrAdvIntervalMs?: number;
  readonly maxRtrAdvIntervalMs?: number;
}

/** The router's refusals that earn the sender an ICMP / ICMPv6 error (RFC 1812 §4.3.2, RFC 4443). */
const ERROR_OF: Readonly<Record<string, IcmpErrorKind>> = { 'hnv-ttl-expired': 'time-exceeded', 'hnv-no-route': 'net-unreachable', 'hnv-no-lookup-record': 'host-unreachable' };
const ERROR6_OF: Readonly<Record<string, Icmpv6ErrorKind>> = { 'hnv-ttl-expired': 'time-exceeded6', 'hnv-no-route': 'no-route6', 'hnv-no-lookup-record': 'address-unreachable6' };

const NONE: readonly Delivery[] = [];
const NONE_PORTS: readonly string[] = [];
/** Nothing to deliver and nothing refused. */
const NOTHING: ForwardDecision = { deliver: NONE };

/**
 * The decision handed back for a frame with one delivery or a refusal, refilled per frame: the
 * switch is done with a decision before it asks for the next (extension.ts).
 */
class Reused {
  private readonly slot: { port: string; frame: Uint8Array } = { port: '', frame: new Uint8Array(0) };
  private readonly one = { deliver: [this.slot] as readonly Delivery[], drop: undefined as string | undefined, flow: undefined as ExtensionFlow | undefined };
  private readonly refusal = { deliver: NONE, drop: '' };
  /** `flow`: offered to the switch's flow cache (route-flow.ts). */
  deliver(port: string, frame: Uint8Array, flow?: ExtensionFlow): ForwardDecision { this.slot.port = port; this.slot.frame = frame; this.one.flow = flow; return this.one; }
  refuse(reason: string): ForwardDecision { this.refusal.drop = reason; return this.refusal; }
}

class HnvDataPath implements SwitchExtension {
  private p: CompiledPolicy;
  private p6: Policy6;
  private mtu: number;
  /** Ports per VSID, and (VSID, configured MAC) → port. */
  private ports = new Map<number, string[]>();
  private macs = new Map<number, Map<number, string>>();
  /** VSIDs where the MAC table may name a port the configured MACs do not (decisions.ts). */
  private learning = new Set<number>();
  private readonly decided = new Decisions();
  private readonly out = new Reused();
  /** The NVGRE frame being decapsulated. */
  private readonly rec = new NvgreRecord();
  private readonly dropped: Record<string, number> = {};
  /** Read and bumped by the flows offered to the switch's cache too (route-flow.ts, decap-flow.ts). */
  encapsulated = 0;
  decapsulated = 0;
  private routed = 0;
  private arpAnswered = 0;
  private ndAnswered = 0;
  private raAnswered = 0;
  private raSent = 0;
  private raInterval = { min: MIN_RTR_ADV_INTERVAL_MS, max: MAX_RTR_ADV_INTERVAL_MS };
  /** Unsolicited Router Advertisements, on the switch's timer (router-adv.ts). */
  readonly timer: ExtensionTimer = {
    nextDelayMs: () => advertisementDelay(this.raInterval.min, this.raInterval.max),
    fire: () => this.advertise(),
  };
  private readonly icmp = new IcmpErrors();
  /** Outer headers per destination PA (or why none can be built), for the policy and MTU in force. */
  private templates = new Map<number, NvgreTemplate | string>();

  constructor(private readonly host: ExtensionHost, config: Record<string, unknown>) {
    this.p = new CompiledPolicy(emptyPolicy());
    this.p6 = new Policy6(this.p, emptyPolicy());
    this.mtu = DEFAULT_PROVIDER_MTU;
    this.configure(config);
    this.indexPorts();
  }

  configure(config: Record<string, unknown>): void {
    const c = config as Partial<HnvExtensionConfig>;
    this.p = new CompiledPolicy(c.policy ?? emptyPolicy());
    this.p6 = new Policy6(this.p, c.policy ?? emptyPolicy());
    this.mtu = typeof c.providerMtu === 'number' ? c.providerMtu : DEFAULT_PROVIDER_MTU;
    const max = typeof c.maxRtrAdvIntervalMs === 'number' ? c.maxRtrAdvIntervalMs : MAX_RTR_ADV_INTERVAL_MS;
    const min = typeof c.minRtrAdvIntervalMs === 'number' ? Math.min(c.minRtrAdvIntervalMs, max) : Math.min(MIN_RTR_ADV_INTERVAL_MS, max);
    this.raInterval = { min, max };
    this.templates = new Map();
    this.decided.invalidate();
  }

  portChanged(_c: PortChange): void { this.indexPorts(); }

  private indexPorts(): void {
    const ports = new Map<number, string[]>(), macs = new Map<number, Map<number, string>>(), learning = new Set<number>();
    for (const id of this.host.portIds()) {
      const pol = this.host.portPolicy(id);
      const vsid = pol?.virtualSubnetId ?? 0;
      if (vsid === 0) continue;
      ports.set(vsid, [...(ports.get(vsid) ?? []), id]);
      // MacAddressSpoofing Off: the guards drop any other source MAC, so what the table learns of the port is its configured MAC.
      if (!pol?.mac || pol.guards.macAddressSpoofing === 'On') learning.add(vsid);
      if (pol?.mac) {
        const m = macs.get(vsid) ?? new Map<number, string>();
        m.set(parseInt(pol.mac.replace(/[:-]/g, ''), 16), id);
        macs.set(vsid, m);
      }
    }
    this.ports = ports;
    this.macs = macs;
    this.learning = learning;
    this.decided.invalidate();
  }

  forward(f: ExtensionFrame): ForwardDecision {
    if (f.sourcePort === UPLINK_PORT_ID) return this.fromProvider(f);
    if (f.vsid === 0) return 'default';
    return this.fromCustomer(f);
  }

  /**
   * The switch's cache key of NVGRE from the provider network (extension.ts flowKey): the
   * source PA, the VSID and the inner MACs the decision rests on (decisions.ts fillDecapKey), and
   * the destination PA (only a local PA's frames are decapsulated: an entry exists only for one,
   * and a policy push that takes it away makes the entry stale). Only where the outer source MAC
   * is the one the source PA gives (compiled.ts paMac: what every host sends), so the key
   * determines the MAC entry the switch's flow refreshes. A frame the decoder refuses takes the
   * full path, which counts it; one a gateway routed finds no entry (none is offered for it).
   * A VM's frames: the switch's key (route-flow.ts).
   */
  flowKey(sourcePort: string, frame: Uint8Array, info: FrameInfo, words: Int32Array): number {
    if (sourcePort !== UPLINK_PORT_ID) return KEY_BY_SWITCH;
    const d = this.rec;
    if (!decodeNvgreInto(frame, info, d) || info.src !== paMacNumber(d.providerSrc)) return KEY_NONE;
    fillDecapKey(words, d.providerSrc, d.vsid, d.innerSrc, d.innerDst);
    words[5] = d.providerDst | 0;
    return KEY_BY_EXTENSION;
  }

  private drop(reason: string): ForwardDecision {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    return this.out.refuse(reason);
  }

  /** A packet the router cannot route: counted, and where RFC 1812 / 4443 want it the sender gets the ICMP error (router-icmp.ts, router-icmp6.ts). */
  private refuseRouted(f: ExtensionFrame, reason: string): ForwardDecision {
    const kind = ERROR_OF[reason], kind6 = ERROR6_OF[reason];
    const error = f.info.ipVersion === 6
      ? kind6 && this.icmp.answer6(this.p6, f.vsid, f.frame, f.info, kind6)
      : kind && this.icmp.answer(this.p, f.vsid, f.frame, f.info, kind);
    return this.refuseWith(f.sourcePort, reason, error);
  }

  /**
   * A frame of the VM on port `from` too big to encapsulate: counted as 'nvgre-mtu', and the
   * sender told the MTU that fits (fragmentation needed for IPv4 with DF, Packet Too Big for IPv6)
   * from the gateway of its own subnet. `frame`: as it was to leave (a routed copy keeps the addresses).
   */
  private refuseTooBig(from: string, frame: Uint8Array, info: FrameInfo): ForwardDecision {
    const vsid = this.host.portPolicy(from)?.virtualSubnetId ?? 0, mtu = this.mtu - NVGRE_OVERHEAD;
    const error = info.ipVersion === 6
      ? this.icmp.answer6(this.p6, vsid, frame, info, 'packet-too-big6', mtu)
      : this.icmp.answer(this.p, vsid, frame, info, 'frag-needed', mtu);
    return this.refuseWith(from, 'nvgre-mtu', error);
  }

  private refuseWith(port: string, reason: string, error: Uint8Array | undefined): ForwardDecision {
    const d = this.drop(reason);
    return error === undefined ? d : { deliver: [{ port, frame: error }], drop: reason };
  }

  /**
   * Neighbor Discovery from a VM: NS answered from the records, RS with the router's RA, a VM's
   * RA or Redirect dropped; undefined for the rest (NA and the others go as any frame).
   */
  private neighborDiscovery(f: ExtensionFrame): ForwardDecision | undefined {
    const { info, vsid } = f;
    switch (info.icmpType) {
      case ND_NEIGHBOR_SOLICIT: {
        const na = neighborAnswer(this.p6, vsid, f.frame, info);
        if (na === 'none') return NOTHING;
        if (typeof na === 'string') return this.drop(na);
        this.ndAnswered++;
        return { deliver: [{ port: f.sourcePort, frame: na }] };
      }
      case ND_ROUTER_SOLICIT: {
        const ra = solicitedAdvertisement(this.p6, vsid, f.frame, info, this.mtu - NVGRE_OVERHEAD);
        if (ra === undefined) return NOTHING;
        this.raAnswered++;
        return { deliver: [{ port: f.sourcePort, frame: ra }] };
      }
      case ND_ROUTER_ADVERT: case ND_REDIRECT: return this.drop('hnv-router-guard');
      default: return undefined;
    }
  }

  /** The timer's unsolicited RAs: one to all-nodes on every port of each subnet with an IPv6 router (an on-link IPv6 prefix). */
  private advertise(): readonly Delivery[] {
    const out: Delivery[] = [];
    for (const [vsid, ports] of this.ports) {
      const ra = unsolicitedAdvertisement(this.p6, vsid, this.mtu - NVGRE_OVERHEAD);
      if (ra === undefined) continue;
      for (const port of ports) out.push({ port, frame: ra });
      this.raSent += ports.length;
    }
    return out;
  }

  /** The local port of `vsid` that has `mac`: configured, else learned in the subnet. */
  private localPort(vsid: number, mac: number): string | undefined {
    return this.macs.get(vsid)?.get(mac) ?? this.host.lookupMac(vsid, mac);
  }

  // ---- from a VM ----

  private fromCustomer(f: ExtensionFrame): ForwardDecision {
    const { info, vsid } = f;
    if (info.ethertype === ETHERTYPE_ARP && info.arpOp === ARP_REQUEST) {
      const mac = arpAnswer(this.p, vsid, info.arpTpa);
      if (mac === undefined) return this.drop('hnv-no-lookup-record');
      if (mac === info.arpSha) return NOTHING; // a probe for its own address: nobody else has it
      this.arpAnswered++;
      return { deliver: [{ port: f.sourcePort, frame: arpReply(mac, info.arpTpa, info.arpSha, info.arpSpa) }] };
    }
    if (info.ethertype === ETHERTYPE_IPV6 && info.ipProtocol === IPPROTO_ICMPV6) {
      const nd = this.neighborDiscovery(f);
      if (nd !== undefined) return nd;
    }
    if (isMulticastMac(info.dst)) return this.replicate(f);
    if (info.dst === GATEWAY_MAC && info.ethertype === ETHERTYPE_IPV6) {
      const echo = gatewayEcho6(this.p6, vsid, f.frame, info);
      if (echo !== undefined) return { deliver: [{ port: f.sourcePort, frame: echo }] };
      const r = route6(this.p, this.p6, vsid, f.frame);
      if (!r.ok) return this.refuseRouted(f, r.drop);
      this.routed++;
      return this.unicast(r.vsid, r.frame, r.mac, f.sourcePort, info);
    }
    if (info.dst === GATEWAY_MAC) {
      if (info.ethertype !== ETHERTYPE_IPV4) return this.drop('hnv-not-routable');
      const r = route(this.p, vsid, f.frame, info.ipDst, info.ttl);
      if (!r.ok) return this.refuseRouted(f, r.drop);
      this.routed++;
      return this.unicast(r.vsid, r.frame, r.to.mac, f.sourcePort, info);
    }
    return this.unicast(vsid, f.frame, info.dst, f.sourcePort, info, true);
  }

  /**
   * A frame of `vsid` to `mac`: the local port, or encapsulated toward the record's PA.
   * `offer`: the frame is the VM's own (not routed), so its route may be offered to the
   * switch's flow cache (route-flow.ts).
   */
  private unicast(vsid: number, frame: Uint8Array, mac: number, from: string, info: FrameInfo, offer = false): ForwardDecision {
    let r = this.decided.encapRoute(vsid, mac);
    if (r === null) { r = this.encapRouteOf(vsid, mac); this.decided.keepEncap(r); }
    if (offer && r.flow === null) r.flow = RouteFlow.of(this.decided, r, vsid, mac, this.host, this);
    const flow = offer ? r.flow ?? undefined : undefined;
    const local = r.port ?? (r.learning ? this.host.lookupMac(vsid, mac) : undefined);
    if (local !== undefined) return local === from ? NOTHING : this.out.deliver(local, frame, flow);
    const out = this.encapsulate(r.remote, vsid, frame, flowIdOf(info), true);
    if (out === 'nvgre-mtu') return this.refuseTooBig(from, frame, info);
    return typeof out === 'string' ? this.drop(out) : this.out.deliver(UPLINK_PORT_ID, out, flow);
  }

  private encapRouteOf(vsid: number, mac: number): EncapRoute {
    const gen = this.decided.generation, learning = this.learning.has(vsid);
    const port = this.macs.get(vsid)?.get(mac);
    if (port !== undefined) return new EncapRoute(gen, port, learning, '');
    const to = this.p.byMacAddress(vsid, mac);
    if (!to) return new EncapRoute(gen, undefined, learning, 'hnv-no-lookup-record');
    if (this.p.localPas.has(to.pa)) return new EncapRoute(gen, undefined, learning, 'hnv-unknown-destination'); // its record says here, but no port has it
    return new EncapRoute(gen, undefined, learning, this.template(to.pa));
  }

  private replicate(f: ExtensionFrame): ForwardDecision {
    const out: Delivery[] = [];
    for (const id of this.ports.get(f.vsid) ?? []) if (id !== f.sourcePort) out.push({ port: id, frame: f.frame });
    let refused: string | undefined;
    const flowId = flowIdOf(f.info);
    for (const pa of this.p.remotes(f.vsid)) {
      const e = this.encapsulate(this.template(pa), f.vsid, f.frame, flowId, false);
      if (typeof e === 'string') refused = e; else out.push({ port: UPLINK_PORT_ID, frame: e });
    }
    if (refused !== undefined) this.dropped[refused] = (this.dropped[refused] ?? 0) + 1;
    return refused === undefined ? { deliver: out } : { deliver: out, drop: refused };
  }

  /** The outer headers toward `pa` (kept per PA for the policy and MTU in force), or why there are none. */
  private template(pa: number): NvgreTemplate | string {
    const src = this.p.sourcePa;
    if (src === undefined) return 'hnv-no-provider-address';
    let t = this.templates.get(pa);
    if (t === undefined) {
      const made = nvgreTemplate({ outerDst: this.p.macOf(pa), outerSrc: this.p.macOf(src), providerSrc: src, providerDst: pa, mtu: this.mtu });
      t = made instanceof NvgreTemplate ? made : `nvgre-${made.refused}`;
      this.templates.set(pa, t);
    }
    return t;
  }

  /**
   * `inner` behind the outer headers `t`, for the uplink: written into a slot of its send batch
   * when `lend` and the uplink has one (the frame must then be the next the uplink sends: one
   * such frame per decision), else carved from the arena; or the drop reason.
   */
  private encapsulate(t: NvgreTemplate | string, vsid: number, inner: Uint8Array, flowId: number, lend: boolean): Uint8Array | string {
    if (t === 'hnv-no-provider-address') return t;
    const slot = lend && typeof t !== 'string' ? this.host.lend(UPLINK_PORT_ID, t.frameLength(inner.length)) : null;
    // A slot lent proves the uplink is there.
    if (slot === null && this.host.portPolicy(UPLINK_PORT_ID) === undefined) return 'hnv-no-uplink';
    if (typeof t === 'string') return t;
    const r = t.encodeTo(vsid, flowId, inner, slot ?? undefined);
    if (typeof r === 'string') return r === 'too-big' ? 'nvgre-mtu' : `nvgre-${r}`;
    this.encapsulated++;
    return r;
  }

  // ---- from the provider network ----

  private fromProvider(f: ExtensionFrame): ForwardDecision {
    const { info, frame } = f;
    if (info.ipVersion !== 4 || info.ipProtocol !== IPPROTO_GRE || !this.p.localPas.has(info.ipDst)) return 'default';
    const d = this.rec;
    if (!decodeNvgreInto(frame, info, d)) return this.drop(d.reason!);
    // A plain view: the frame is often a Buffer, whose subarray() costs a FastBuffer per frame.
    const inner = new Uint8Array(frame.buffer, frame.byteOffset + d.innerOffset, d.innerLength);
    // A routed frame's source is checked by its CA (checkRoutedSource), not remembered per MAC.
    if (d.innerSrc === GATEWAY_MAC) return this.fromProviderRouted(d.vsid, inner, d.innerDst, d.providerSrc);
    let r = this.decided.decapRoute(d.providerSrc, d.vsid, d.innerSrc, d.innerDst);
    if (r === null) { r = this.decapRouteOf(d.providerSrc, d.vsid, d.innerSrc, d.innerDst); this.decided.keepDecap(r); }
    if (r.drop !== undefined) return this.drop(r.drop);
    if (r.multicast) { this.decapsulated++; return { deliver: r.ports.map((port) => ({ port, frame: inner })) }; }
    let port = r.port;
    if (port === undefined) {
      port = this.host.lookupMac(d.vsid, d.innerDst);
      if (port === undefined || !r.ports.includes(port)) return this.drop('nvgre-unknown-destination');
      this.decapsulated++;
      return this.out.deliver(port, inner, new DecapFlow(this.decided, r, this.rec, port, true, d.vsid, d.innerDst, this.host, this));
    }
    this.decapsulated++;
    r.flow ??= new DecapFlow(this.decided, r, this.rec, port, false, d.vsid, d.innerDst, this.host, this);
    return this.out.deliver(port, inner, r.flow);
  }

  /** The checks of fromProvider for NVGRE from `pa` between two MACs of `vsid` (the inner source not the gateway MAC), in their order. */
  private decapRouteOf(pa: number, vsid: number, srcMac: number, dstMac: number): DecapRoute {
    const gen = this.decided.generation, learning = this.learning.has(vsid);
    const ports = this.ports.get(vsid);
    if (!ports) return new DecapRoute(gen, 'nvgre-unknown-vsid', undefined, NONE_PORTS, false, learning);
    const rec = this.p.byMacAddress(vsid, srcMac);
    const why = !rec ? 'nvgre-no-lookup-record' : rec.pa === pa ? undefined : 'nvgre-pa-mismatch';
    if (why) return new DecapRoute(gen, why, undefined, ports, false, learning);
    if (isMulticastMac(dstMac)) return new DecapRoute(gen, undefined, undefined, ports, true, learning);
    const port = this.macs.get(vsid)?.get(dstMac);
    if (port === undefined && !learning) return new DecapRoute(gen, 'nvgre-unknown-destination', undefined, ports, false, learning);
    return new DecapRoute(gen, undefined, port, ports, false, learning);
  }

  /** NVGRE whose inner source is the gateway MAC (routed by the far host's router): checked by the inner CA, per frame. */
  private fromProviderRouted(vsid: number, inner: Uint8Array, dstMac: number, pa: number): ForwardDecision {
    const ports = this.ports.get(vsid);
    if (!ports) return this.drop('nvgre-unknown-vsid');
    const why = this.checkRoutedSource(vsid, inner, pa);
    if (why) return this.drop(why);
    if (isMulticastMac(dstMac)) { this.decapsulated++; return { deliver: ports.map((port) => ({ port, frame: inner })) }; }
    const port = this.localPort(vsid, dstMac);
    if (port === undefined || !ports.includes(port)) return this.drop('nvgre-unknown-destination');
    this.decapsulated++;
    return this.out.deliver(port, inner);
  }

  /**
   * The sender's PA of a frame the far router routed (inner source the gateway MAC) must be the
   * one the lookup record of its CA in the routing domain names (decapRouteOf checks others by MAC).
   */
  private checkRoutedSource(vsid: number, inner: Uint8Array, pa: number): string | undefined {
    const ethertype = (inner[12]! << 8) | inner[13]!;
    if (ethertype === ETHERTYPE_IPV6) {
      const pa6 = routedSourcePa(this.p, this.p6, vsid, inner);
      return pa6 === undefined ? 'nvgre-no-lookup-record' : pa6 === pa ? undefined : 'nvgre-pa-mismatch';
    }
    if (ethertype !== ETHERTYPE_IPV4 || inner.length < 34) return 'nvgre-no-lookup-record';
    const ca = ((inner[26]! << 24) | (inner[27]! << 16) | (inner[28]! << 8) | inner[29]!) >>> 0;
    // A source outside the domain's CAs was routed in by its gateway: it must come from the
    // PA of the next hop our own routes name for that address.
    let rec = this.p.inDomain(vsid, ca);
    const r = rec ? undefined : resolve(this.p, vsid, ca);
    if (r && r.hop !== ca) rec = this.p.byAddress(r.vsid, r.hop);
    if (!rec) return 'nvgre-no-lookup-record';
    return rec.pa === pa ? undefined : 'nvgre-pa-mismatch';
  }

  status(): Record<string, unknown> {
    return {
      providerAddresses: this.p.policy.providerAddresses.map((p) => p.providerAddress), providerMtu: this.mtu, gatewayMac: formatMacNumber(GATEWAY_MAC),
      virtualSubnets: Object.fromEntries([...this.ports].map(([v, ids]) => [v, ids])),
      encapsulated: this.encapsulated, decapsulated: this.decapsulated, routed: this.routed, arpAnswered: this.arpAnswered, ndAnswered: this.ndAnswered, raAnswered: this.raAnswered, raSent: this.raSent, drops: { ...this.dropped },
      icmpErrors: { ...this.icmp.sent, rateLimited: this.icmp.rateLimited },
      decisionCache: this.decided.stats(),
    };
  }
}

export const hnvExtension: ExtensionDefinition = {
  name: HNV_EXTENSION,
  type: 'forwarding',
  description: 'Hyper-V Network Virtualization: NVGRE encapsulation by lookup record, ARP answered locally, distributed router',
  create: (host, config) => new HnvDataPath(host, config),
};
