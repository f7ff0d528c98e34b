// MAC learning per learning domain (a VLAN, or a PVLAN's primary VLAN, so promiscuous and
// isolated hosts find each other) with ageing: an entry unseen for `ageingMs` is gone.
// Expiry is checked lazily on lookup and by sweep() (the switch calls it on a timer). A MAC
// seen on a new port moves there (a VM moved, or a loop: the last port wins).
// The entry last learned and the one last looked up are remembered: a burst of one flow's
// frames (the usual case on a stream socket) then costs no map lookup per frame — a MAC is a
// 48-bit number, which V8 boxes to use as a map key. Every removal forgets them.
// Depends on nothing; time comes from the caller.

export interface MacEntry {
  port: string;
  seen: number;
}

/** Bound on entries (all domains): beyond it new MACs are not learned (their frames flood) until entries age out. */
export const MAC_TABLE_MAX = 65536;

/** A remembered entry: its domain and MAC, and the entry itself (null: none). */
class Recent {
  domain = -1;
  mac = -1;
  entry: MacEntry | null = null;
  is(domain: number, mac: number): MacEntry | null { return this.domain === domain && this.mac === mac ? this.entry : null; }
  set(domain: number, mac: number, entry: MacEntry): void { this.domain = domain; this.mac = mac; this.entry = entry; }
}

export class MacTable {
  private readonly domains = new Map<number, Map<number, MacEntry>>();
  private count = 0;
  private readonly learned = new Recent();
  private readonly looked = new Recent();
  ageingMs: number;

  constructor(ageingMs: number) { this.ageingMs = ageingMs; }

  learn(domain: number, mac: number, port: string, now: number): void {
    const recent = this.learned.is(domain, mac);
    if (recent) { recent.port = port; recent.seen = now; return; }
    let t = this.domains.get(domain);
    if (!t) { t = new Map(); this.domains.set(domain, t); }
    const e = t.get(mac);
    if (e) { e.port = port; e.seen = now; this.learned.set(domain, mac, e); return; }
    if (this.count >= MAC_TABLE_MAX) return;
    const entry = { port, seen: now };
    t.set(mac, entry);
    this.count++;
    this.learned.set(domain, mac, entry);
  }

  /** The port that owns `mac` in `domain`, or undefined (unknown or aged out). */
  lookup(domain: number, mac: number, now: number): string | undefined {
    let e = this.looked.is(domain, mac);
    if (!e) {
      e = this.domains.get(domain)?.get(mac) ?? null;
      if (!e) return undefined;
      this.looked.set(domain, mac, e);
    }
    if (now - e.seen > this.ageingMs) { this.delete(domain, mac); return undefined; }
    return e.port;
  }

  /** Forgets every entry of a port (port removed, its peer disconnected, or policy changed). */
  flushPort(port: string): void {
    for (const [d, t] of this.domains) for (const [mac, e] of t) if (e.port === port) this.delete(d, mac);
  }

  sweep(now: number): void {
    for (const [d, t] of this.domains) for (const [mac, e] of t) if (now - e.seen > this.ageingMs) this.delete(d, mac);
  }

  private delete(domain: number, mac: number): void {
    if (!this.domains.get(domain)?.delete(mac)) return;
    this.count--;
    this.learned.entry = null;
    this.looked.entry = null;
  }

  get size(): number { return this.count; }

  entries(now: number): { domain: number; mac: number; port: string; ageMs: number }[] {
    const out: { domain: number; mac: number; port: string; ageMs: number }[] = [];
    for (const [domain, t] of this.domains) for (const [mac, e] of t) out.push({ domain, mac, port: e.port, ageMs: now - e.seen });
    return out;
  }
}
