// MAC learning per learning domain (a VLAN, a PVLAN's primary VLAN, so promiscuous and
// isolated hosts find each other, or a virtual subnet's VSID: vlan.ts's learningDomain) with
// ageing: an entry unseen for `ageingMs` is gone. Expiry is checked lazily on lookup and by
// sweep() (the switch calls it on a timer). A MAC seen on a new port moves there (a VM moved,
// or a loop: the last port wins).
// Keys are small integers: a MAC is a 48-bit number, which V8 boxes (a heap number, hashed
// as a double) to use as a map key, once per frame and lookup. The table is keyed instead by
// the MAC's low 32 bits mixed with the domain, an int32 V8 keeps unboxed; entries that share
// a key (the same MAC in another domain, or MACs equal in their low 32 bits) are chained.
// The entry last learned and the one last looked up are remembered: a burst of one flow's
// frames (the usual case on a stream socket) then costs no map lookup at all. Every removal
// forgets them. A removed entry's port becomes '' (no port has that id), so whoever still holds
// it — the flow cache (flow-cache.ts) — sees it gone. Depends on nothing; time comes from the caller.

export interface MacEntry {
  /** '' once the entry is removed from the table. */
  port: string;
  seen: number;
  readonly domain: number;
  readonly mac: number;
  /** The next entry with the same key. */
  next: MacEntry | null;
}

/** Bound on entries (all domains): beyond it new MACs are not learned (their frames flood) until entries age out. */
export const MAC_TABLE_MAX = 65536;

/** The table key of (domain, mac): int32 (`mac | 0` is its low 32 bits). */
function keyOf(domain: number, mac: number): number {
  return (mac ^ Math.imul(domain, 0x9e3779b1)) | 0;
}

/** A remembered entry: its domain and MAC, and the entry itself (null: none). */
class Recent {
  domain = -1;
  mac = -1;
  entry: MacEntry | null = null;
  is(domain: number, mac: number): MacEntry | null { return this.domain === domain && this.mac === mac ? this.entry : null; }
  set(domain: number, mac: number, entry: MacEntry): void { this.domain = domain; this.mac = mac; this.entry = entry; }
}

export class MacTable {
  private readonly table = new Map<number, MacEntry>();
  private count = 0;
  private readonly learned = new Recent();
  private readonly looked = new Recent();
  ageingMs: number;

  constructor(ageingMs: number) { this.ageingMs = ageingMs; }

  learn(domain: number, mac: number, port: string, now: number): void {
    const recent = this.learned.is(domain, mac);
    if (recent) { recent.port = port; recent.seen = now; return; }
    const key = keyOf(domain, mac);
    const head = this.table.get(key);
    const e = find(head, domain, mac);
    if (e) { e.port = port; e.seen = now; this.learned.set(domain, mac, e); return; }
    if (this.count >= MAC_TABLE_MAX) return;
    const entry: MacEntry = { port, seen: now, domain, mac, next: head ?? null };
    this.table.set(key, entry);
    this.count++;
    this.learned.set(domain, mac, entry);
  }

  /** The port that owns `mac` in `domain`, or undefined (unknown or aged out). */
  lookup(domain: number, mac: number, now: number): string | undefined {
    let e = this.looked.is(domain, mac);
    if (!e) {
      e = find(this.table.get(keyOf(domain, mac)), domain, mac);
      if (!e) return undefined;
      this.looked.set(domain, mac, e);
    }
    if (now - e.seen > this.ageingMs) { this.delete(e); return undefined; }
    return e.port;
  }

  /** The entry of (domain, mac), aged or not, or null: what a flow cache holds on to. */
  entry(domain: number, mac: number): MacEntry | null {
    return find(this.table.get(keyOf(domain, mac)), domain, mac);
  }

  /** Forgets every entry of a port (port removed, its peer disconnected, or policy changed). */
  flushPort(port: string): void {
    for (const e of this.all()) if (e.port === port) this.delete(e);
  }

  sweep(now: number): void {
    for (const e of this.all()) if (now - e.seen > this.ageingMs) this.delete(e);
  }

  get size(): number { return this.count; }

  entries(now: number): { domain: number; mac: number; port: string; ageMs: number }[] {
    return this.all().map((e) => ({ domain: e.domain, mac: e.mac, port: e.port, ageMs: now - e.seen }));
  }

  /** Every entry, collected first so the caller may delete while it walks them. */
  private all(): MacEntry[] {
    const out: MacEntry[] = [];
    for (const head of this.table.values()) for (let e: MacEntry | null = head; e; e = e.next) out.push(e);
    return out;
  }

  private delete(entry: MacEntry): void {
    const key = keyOf(entry.domain, entry.mac);
    const head = this.table.get(key);
    if (head === entry) {
      if (entry.next) this.table.set(key, entry.next); else this.table.delete(key);
    } else {
      let prev: MacEntry | null = head ?? null;
      while (prev && prev.next !== entry) prev = prev.next;
      if (!prev) return; // already gone
      prev.next = entry.next;
    }
    this.count--;
    entry.port = '';
    this.learned.entry = null;
    this.looked.entry = null;
  }
}

function find(head: MacEntry | undefined, domain: number, mac: number): MacEntry | null {
  for (let e = head ?? null; e; e = e.next) if (e.mac === mac && e.domain === domain) return e;
  return null;
}
