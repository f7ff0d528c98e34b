// The NVGRE data path's decisions remembered per flow, so a frame costs one lookup instead of
// the policy's nested maps and the port index several times over (cpu profile of
// bench/nvgre.ts's encap and decap rows):
// - from a VM, per (VSID, destination MAC): the local port configured with the MAC, else the
//   template toward the PA of its lookup record — or why the frame is refused;
// - from the provider network, per (source PA, VSID, inner source and destination MAC): the
//   source check's verdict (the record of the inner source MAC names that PA) and the local
//   port configured with the destination (or, multicast, the subnet's ports) — or why not.
// Both held in an ExactMatchTable (switch/exact-match.ts, the microflow cache's table). A
// decision is the policy's and the port index's answer: it holds the data path's generation,
// which every policy push (lookup records, customer routes, provider addresses, MTU) and every
// port change (added, removed, VSID or MAC changed) bumps, and a stale one is decided again.
// What the MAC table learned is not in it: in a subnet where learning can name a port (one of
// its ports has no configured MAC or may spoof one) the table is asked per frame, as before.
// Frames a gateway routed (inner source = the gateway MAC) are checked by their CA and are not
// kept here. Depends on packet (types), switch (ExactMatchTable).
import type { NvgreTemplate } from '../packet/index.ts';
import { ExactMatchTable, type ExtensionFlow } from '../switch/index.ts';

const TWO32 = 0x1_0000_0000;
const SLOTS = 1 << 10;

/** Where a VM's unicast frame to a MAC of its subnet goes. */
export class EncapRoute {
  constructor(
    readonly generation: number,
    /** The local port configured with the MAC; undefined: none. */
    readonly port: string | undefined,
    /** Ask the MAC table first (the subnet learns: see the file comment). */
    readonly learning: boolean,
    /** With no local port: the outer headers toward the record's PA, or the drop reason. */
    readonly remote: NvgreTemplate | string,
  ) {}

  /** The flow offered to the switch's cache for this route (route-flow.ts), made at its first use; undefined: none may be. */
  flow: ExtensionFlow | undefined | null = null;
}

/** What happens to NVGRE from one PA between two MACs of a subnet. */
export class DecapRoute {
  constructor(
    readonly generation: number,
    /** Refused: the reason (unknown VSID, source PA mismatch, no record, no such destination). */
    readonly drop: string | undefined,
    /** The local port configured with the destination MAC; undefined: none (or multicast). */
    readonly port: string | undefined,
    /** The subnet's local ports: a multicast's destinations, and where a learned port must be. */
    readonly ports: readonly string[],
    readonly multicast: boolean,
    readonly learning: boolean,
  ) {}

  /** The flow offered to the switch's cache toward `port` (decap-flow.ts), made at its first use. */
  flow: ExtensionFlow | null = null;
}

/**
 * The words that identify NVGRE's decapsulation decision — source PA, VSID, inner destination
 * and source MAC — into `k` [0, 5): the decision table's key here, and the switch's flow key
 * of a frame from the provider network (datapath.ts flowKey).
 */
export function fillDecapKey(k: Int32Array, pa: number, vsid: number, src: number, dst: number): void {
  k[0] = pa | 0; k[1] = vsid; k[2] = ((dst / TWO32) & 0xffff) | ((src / TWO32) << 16); k[3] = dst | 0; k[4] = src | 0;
}

export class Decisions {
  private readonly encap = new ExactMatchTable<EncapRoute>(SLOTS);
  private readonly decap = new ExactMatchTable<DecapRoute>(SLOTS);
  /** Decisions of another generation are stale. */
  generation = 0;

  /** Every decision is stale from now on. */
  invalidate(): void { this.generation++; }

  /** The current route of (vsid, mac), or null: decide, then `keepEncap` (nothing else in between). */
  encapRoute(vsid: number, mac: number): EncapRoute | null {
    const k = this.encap.key;
    k[0] = vsid; k[1] = (mac / TWO32) & 0xffff; k[2] = mac | 0; k[3] = 0; k[4] = 0; k[5] = 0; k[6] = 0; k[7] = 0;
    const r = this.encap.find();
    return r !== null && r.generation === this.generation ? r : null;
  }

  keepEncap(r: EncapRoute): void { this.encap.insert(r); }

  /** The current route of NVGRE from `pa` in `vsid`, `src` → `dst` MAC, or null: decide, then `keepDecap`. */
  decapRoute(pa: number, vsid: number, src: number, dst: number): DecapRoute | null {
    const k = this.decap.key;
    fillDecapKey(k, pa, vsid, src, dst); k[5] = 0; k[6] = 0; k[7] = 0;
    const r = this.decap.find();
    return r !== null && r.generation === this.generation ? r : null;
  }

  keepDecap(r: DecapRoute): void { this.decap.insert(r); }

  stats(): { hits: number; misses: number } {
    return { hits: this.encap.hits + this.decap.hits, misses: this.encap.misses + this.decap.misses };
  }
}
