// The switch's microflow cache, in the style of Open vSwitch's exact-match cache: the
// forwarding decision for a known unicast IPv4 frame — the destination port, its egress tag,
// which Meter ACL counters each side bumps (or that a side's ACLs must still be checked per
// frame: stateful ones) and the MAC table entries it relied on — remembered under the fields
// the decision depends on, so the next frame of the flow skips ingress VLAN, guards, the ACL
// verdicts, the learning domain, the MAC lookup and VLAN membership (switch.ts
// forwardCached does what is left per frame and checks an entry is still true).
// The key: ingress port, destination and source MAC, and — only while some port of the switch
// has ACLs (`l3`), the one policy part that reads them — IPv4 protocol, addresses and ports.
// Without ACLs a flow is cached on L2 fields only; the guards read nothing else of a cacheable
// frame (switch.ts decides which frames are: untagged IPv4, not a fragment, not a DHCP server
// message, not ICMPv6 in IPv4) but the source address, which the ARP guard re-checks whenever
// it changes.
// With a forwarding extension (and no other) the cache holds only the flows the extension
// offers with its decision (extension.ts ExtensionFlow: vmhost.hnv's encapsulation toward a
// PA, or a port of the subnet): such an entry has no destination MAC entry, and asks the
// extension per frame whether it still holds and what the frame becomes (the NVGRE headers in
// the uplink's lent send slot); everything else still goes through the extension. A flow
// whose decision rests on more than that key (NVGRE from the uplink: its inner headers) is
// keyed by the extension instead (SwitchExtension.flowKey, probeKeyed): the ingress port and
// six words of the extension's.
// Never stale: an entry holds the switch's generation (bumped by every policy, port,
// extension or settings change) and the MAC table entries it used, which say when they moved
// or went (mac-table.ts), and the destination's ageing is checked per frame. A stale entry
// stays until its slot is reused (with it, a removed port's state: bounded by the cache's size).
// 4,096 entries in an ExactMatchTable (exact-match.ts: eight-way associative, keys in typed
// arrays); an entry is allocated on a miss only. Eight ways: bench/switch.ts's 1,000 flows taken
// in turn missed 1 % of their frames with four (sets holding more flows than ways), each a full
// pipeline pass.
// Depends on packet, mac-table, acl, port-state, exact-match, extension (a type).
import type { FrameInfo } from '../packet/index.ts';
import type { MacEntry } from './mac-table.ts';
import type { MeterCounters } from './acl.ts';
import type { PortState } from './port-state.ts';
import { ExactMatchTable } from './exact-match.ts';
import { FLOW_KEY_WORDS, type ExtensionFlow } from './extension.ts';

const SLOTS = 1 << 12;
const TWO32 = 0x100000000;
/** The last key word of a flow keyed by the extension: apart from probe()'s (bits 0–10). */
const EXT_KEYED = 1 << 11;

/** What one side's ACLs do for a cached flow: bump these Meter counters, or (check) run the ACLs per frame. */
export interface AclStep {
  readonly meters: readonly MeterCounters[];
  /** Stateful ACLs: their flows change per frame, so the verdict is not cached. */
  readonly check: boolean;
}

export const NO_ACL_STEP: AclStep = { meters: [], check: false };

export class CachedFlow {
  constructor(
    readonly generation: number,
    readonly dst: PortState,
    /** The source MAC's table entry (refreshed per frame) and the destination's (null: the extension's flow chose the port). */
    readonly srcMac: MacEntry,
    readonly dstMac: MacEntry | null,
    /** The tag the frame leaves with (-1: untagged). */
    readonly tag: number,
    readonly outbound: AclStep,
    readonly inbound: AclStep,
    /** A forwarding extension's decision: what it makes of each frame (null: the frame as it is, the default forwarding's flow). */
    readonly ext: ExtensionFlow | null = null,
  ) {}
}

export class FlowCache {
  private readonly table = new ExactMatchTable<CachedFlow>(SLOTS);

  get hits(): number { return this.table.hits; }
  get misses(): number { return this.table.misses; }

  /** The cached flow of `f` arriving on port number `port`, or null. `l3`: the key includes the IPv4 fields. */
  probe(port: number, f: FrameInfo, l3: boolean): CachedFlow | null {
    const k = this.table.key;
    const dst = f.dst, src = f.src;
    k[0] = port;
    k[1] = ((dst / TWO32) & 0xffff) | ((src / TWO32) << 16);
    k[2] = dst | 0;
    k[3] = src | 0;
    if (l3) {
      k[4] = f.ipSrc | 0;
      k[5] = f.ipDst | 0;
      k[6] = ((f.srcPort & 0xffff) << 16) | (f.dstPort & 0xffff);
      k[7] = (f.ipProtocol & 0xff) | (f.srcPort < 0 ? 1 << 8 : 0) | (f.dstPort < 0 ? 1 << 9 : 0);
    } else {
      k[4] = 0; k[5] = 0; k[6] = 0; k[7] = 1 << 10;
    }
    return this.table.find();
  }

  /** The words a forwarding extension's flowKey fills (extension.ts), for probeKeyed: the table's own key words 1–6, so nothing is copied. */
  readonly extWords = this.table.key.subarray(1, 1 + FLOW_KEY_WORDS);

  /** The cached flow of a frame arriving on port number `port` under the extension's key just written to `extWords`, or null. */
  probeKeyed(port: number): CachedFlow | null {
    const k = this.table.key;
    k[0] = port;
    k[7] = EXT_KEYED;
    return this.table.find();
  }

  /** Remembers `flow` under the key of the last probe (a stale entry of that key is replaced where it is). */
  insert(flow: CachedFlow): void { this.table.insert(flow); }
}
