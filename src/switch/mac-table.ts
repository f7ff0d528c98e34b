// MAC learning per learning domain (a VLAN, or a PVLAN's primary VLAN, so promiscuous and
// isolated hosts find each other) with ageing: an entry unseen for `ageingMs` is gone.
// Expiry is checked lazily on lookup and by sweep() (the switch calls it on a timer). A MAC
// seen on a new port moves there (a VM moved, or a loop: the last port wins).
// Depends on nothing; time comes from the caller.

export interface MacEntry {
  port: string;
  seen: number;
}

/** Bound on entries (all domains): beyond it new MACs are not learned (their frames flood) until entries age out. */
export const MAC_TABLE_MAX = 65536;

export class MacTable {
  private readonly domains = new Map<number, Map<number, MacEntry>>();
  private count = 0;
  ageingMs: number;

  constructor(ageingMs: number) { this.ageingMs = ageingMs; }

  learn(domain: number, mac: number, port: string, now: number): void {
    let t = this.domains.get(domain);
    if (!t) { t = new Map(); this.domains.set(domain, t); }
    const e = t.get(mac);
    if (e) { e.port = port; e.seen = now; return; }
    if (this.count >= MAC_TABLE_MAX) return;
    t.set(mac, { port, seen: now });
    this.count++;
  }

  /** The port that owns `mac` in `domain`, or undefined (unknown or aged out). */
  lookup(domain: number, mac: number, now: number): string | undefined {
    const t = this.domains.get(domain);
    const e = t?.get(mac);
    if (!e) return undefined;
    if (now - e.seen > this.ageingMs) { t!.delete(mac); this.count--; return undefined; }
    return e.port;
  }

  /** Forgets every entry of a port (port removed, its peer disconnected, or policy changed). */
  flushPort(port: string): void {
    for (const t of this.domains.values()) for (const [mac, e] of t) if (e.port === port) { t.delete(mac); this.count--; }
  }

  sweep(now: number): void {
    for (const t of this.domains.values()) for (const [mac, e] of t) if (now - e.seen > this.ageingMs) { t.delete(mac); this.count--; }
  }

  get size(): number { return this.count; }

  entries(now: number): { domain: number; mac: number; port: string; ageMs: number }[] {
    const out: { domain: number; mac: number; port: string; ageMs: number }[] = [];
    for (const [domain, t] of this.domains) for (const [mac, e] of t) out.push({ domain, mac, port: e.port, ageMs: now - e.seen });
    return out;
  }
}
