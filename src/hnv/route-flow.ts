// A VM's unicast frame decided by the NVGRE data path, offered to the switch's microflow cache
// (switch/extension.ts ExtensionFlow), so the flow's next frames skip the switch's pipeline and
// the extension's forward(): per frame, one generation compare, the FlowID, and the template's
// header copy and three stores into the uplink's lent send slot together with the customer
// frame (cpu profile of bench/nvgre.ts's encap row: the pipeline around the encapsulation —
// guards, learning, the extension context, the decision lookup, deliver — cost more than the
// encapsulation itself). Offered only for a decision the switch's key (ingress port and MACs)
// determines: a plain unicast to a MAC of the subnet, never for a routed frame (its bytes and
// destination depend on its IP header). In a subnet that learns (decisions.ts), an
// encapsulation holds only while the MAC table has not learned the destination MAC behind a
// local port: asked per frame, as forward() asks it. The decision's generation is the data path's: every
// policy push (lookup records, routes, provider addresses, MTU) and port change makes it
// stale, and a stale flow sends the frame back through the full path. A frame the template
// would refuse (bigger than the provider MTU) takes the full path too, which counts it.
// Depends on packet, switch (the ExtensionFlow type), decisions.
import { VSID_MAX, VSID_MIN, type FrameInfo, type NvgreTemplate } from '../packet/index.ts';
import { FLOW_STALE, type ExtensionFlow, type ExtensionHost } from '../switch/index.ts';
import type { Decisions, EncapRoute } from './decisions.ts';

/**
 * FlowID: a hash of the flow folded to 8 bits — IPv4 addresses, protocol and ports when the
 * frame has them, else the MACs — from the switch's parse of the frame (the customer's frame
 * as sent; a routed copy keeps its addresses), so one flow keeps one ECMP path.
 */
export function flowIdOf(info: FrameInfo): number {
  let h = info.ipVersion === 4
    ? Math.imul(info.ipSrc ^ Math.imul(info.ipDst, 0x9e3779b1) ^ (info.ipProtocol << 16) ^ Math.imul((info.srcPort << 16) ^ info.dstPort, 0x85ebca6b), 0xc2b2ae35)
    : Math.imul((info.src % 0x1_0000_0000) ^ Math.imul(info.dst % 0x1_0000_0000, 0x9e3779b1), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h ^ (h >>> 8)) & 0xff;
}

/** What a route flow counts on its data path. */
export interface FlowCounters { encapsulated: number }

export class RouteFlow implements ExtensionFlow {
  /** The outer headers toward the record's PA; null: the frame goes to a local port as it is. */
  private readonly template: NvgreTemplate | null;

  /** The MAC table is asked whether a local port learned `mac` (a learning subnet's encapsulation). */
  private readonly learned: boolean;

  private constructor(private readonly decided: Decisions, private readonly route: EncapRoute, private readonly vsid: number, private readonly mac: number,
    private readonly host: ExtensionHost, private readonly counters: FlowCounters) {
    this.template = typeof route.remote === 'string' || route.port !== undefined ? null : route.remote;
    this.learned = this.template !== null && route.learning;
  }

  /** The flow of `route` (to `mac`) for frames of `vsid`, or undefined where none may be offered (see the file comment). */
  static of(decided: Decisions, route: EncapRoute, vsid: number, mac: number, host: ExtensionHost, counters: FlowCounters): RouteFlow | undefined {
    if (vsid < VSID_MIN || vsid > VSID_MAX) return undefined;
    if (route.port === undefined && typeof route.remote === 'string') return undefined;
    return new RouteFlow(decided, route, vsid, mac, host, counters);
  }

  length(length: number): number {
    if (this.route.generation !== this.decided.generation) return FLOW_STALE;
    const t = this.template;
    if (t === null) return -1;
    if (this.learned && this.host.lookupMac(this.vsid, this.mac) !== undefined) return FLOW_STALE;
    return t.fits(length) ? t.frameLength(length) : FLOW_STALE;
  }

  offset(): number { return -1; }

  build(frame: Uint8Array, info: FrameInfo, out: Uint8Array | null): Uint8Array {
    this.counters.encapsulated++;
    return this.template!.write(this.vsid, flowIdOf(info), frame, out ?? undefined);
  }
}
