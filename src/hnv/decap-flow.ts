// NVGRE from the provider network decided by the data path, offered to the switch's microflow
// cache keyed by the extension (switch/extension.ts flowKey: the ingress port, the source PA,
// the local PA it is addressed to, the VSID and the inner destination and source MAC — what
// the decapsulation decision rests on, decisions.ts), so the flow's next frames skip the
// switch's pipeline and the extension's forward(): per frame, the outer headers checked and the
// key read (decodeNvgreInto into the data path's record, then the probe), one generation
// compare, and the inner frame handed to the VM's port (copied into a slot when the port lends
// one; a VM's socket port copies it into its write batch). Offered for a decision to one local
// port: the port configured with the destination MAC, or in a subnet that learns one the MAC
// table named — then the table is asked per frame, as forward() asks it, and the flow holds
// only while it names the same port. Multicast, refused frames and frames a gateway routed
// (checked by their inner CA) are never cached: the full path takes, checks and counts them.
// The decision's generation is the data path's: every policy push (lookup records, routes,
// provider addresses) and port change makes it stale. Depends on packet, switch (the
// ExtensionFlow type), decisions.
import type { FrameInfo, NvgreRecord } from '../packet/index.ts';
import { FLOW_STALE, type ExtensionFlow, type ExtensionHost } from '../switch/index.ts';
import type { DecapRoute, Decisions } from './decisions.ts';

/** What a decap flow counts on its data path. */
export interface DecapCounters { decapsulated: number }

export class DecapFlow implements ExtensionFlow {
  /**
   * `rec`: the data path's NVGRE record, which its flowKey filled from this same frame just
   * before the switch asks length() and build() (extension.ts). `learned`: the MAC table named
   * `port` for `mac` in `vsid`, and is asked again per frame.
   */
  constructor(private readonly decided: Decisions, private readonly route: DecapRoute, private readonly rec: NvgreRecord,
    private readonly port: string, private readonly learned: boolean, private readonly vsid: number, private readonly mac: number,
    private readonly host: ExtensionHost, private readonly counters: DecapCounters) {}

  length(): number {
    if (this.route.generation !== this.decided.generation) return FLOW_STALE;
    if (this.learned && this.host.lookupMac(this.vsid, this.mac) !== this.port) return FLOW_STALE;
    return this.rec.innerLength;
  }

  /** The inner frame, handed to the port as it lies in the outer one (no view of it per frame); counted here, as the switch asks once per frame delivered. */
  offset(): number {
    this.counters.decapsulated++;
    return this.rec.innerOffset;
  }

  /** Only toward a port whose fair queue keeps the frame (offset() counted it). */
  build(frame: Uint8Array, _info: FrameInfo, out: Uint8Array | null): Uint8Array {
    // A plain view: the frame is often a Buffer, whose subarray() costs a FastBuffer per frame.
    const inner = new Uint8Array(frame.buffer, frame.byteOffset + this.rec.innerOffset, this.rec.innerLength);
    if (out === null) return inner;
    out.set(inner);
    return out;
  }
}
