// The gateway's NAT connection table: one entry per flow a VM opened toward the datacenter,
// keyed outbound by (routing domain, protocol, customer address and port / ICMP echo id,
// remote address and port) — the routing domain is in the key, so Blue's and Red's identical
// 10.0.0.10 get different translations — and inbound by (external address, protocol, external
// port / id, remote address and port), which names exactly one routing domain and VSID. An
// external port (or echo id) belongs to one entry at a time. Idle entries expire (ICMP 60 s,
// UDP 120 s, TCP 2 h 4 min as RFC 5382 asks for established flows); a TCP flow that saw FIN or
// RST keeps 4 minutes. When an external address has no port left, new flows are refused (a
// sweep for expired entries at most once a second), never given a shared port. Pure; time
// comes from the caller's clock. Depends on nothing.

export const NAT_PORT_MIN = 1024;
export const NAT_PORT_MAX = 65535;
const IDLE_MS: Readonly<Record<number, number>> = { 1: 60_000, 6: 7_440_000, 17: 120_000 };
const TCP_CLOSING_MS = 240_000;
const SPAN = NAT_PORT_MAX - NAT_PORT_MIN + 1;

/** A translated flow. `caPort`/`extPort` are the ICMP echo id for ICMP; `remotePort` is 0 for ICMP. */
export interface NatEntry {
  readonly routingDomainId: string;
  readonly protocol: number;
  readonly ca: number;
  readonly caPort: number;
  readonly remote: number;
  readonly remotePort: number;
  readonly external: number;
  readonly extPort: number;
  expires: number;
  /** TCP only: FIN or RST seen. */
  closing: boolean;
}

export type FlowKey = Omit<NatEntry, 'external' | 'extPort' | 'expires' | 'closing'>;

const outKey = (k: FlowKey): string => `${k.routingDomainId}|${k.protocol}|${k.ca}|${k.caPort}|${k.remote}|${k.remotePort}`;
const inKey = (external: number, protocol: number, extPort: number, remote: number, remotePort: number): string => `${external}|${protocol}|${extPort}|${remote}|${remotePort}`;
const portKey = (external: number, protocol: number, port: number): string => `${external}|${protocol}|${port}`;

export class NatTable {
  private readonly out = new Map<string, NatEntry>();
  private readonly in = new Map<string, NatEntry>();
  private readonly used = new Set<string>();
  /** Next port to try per (external address, protocol), and how many are taken. */
  private readonly next = new Map<string, number>();
  private readonly inUse = new Map<string, number>();
  private fullSweep = -Infinity;

  constructor(private readonly now: () => number) {}

  get size(): number { return this.out.size; }

  /** The entry of an outbound flow, made (with a free external port) if new; undefined when every port of the external address is taken. */
  outbound(k: FlowKey, external: number): NatEntry | undefined {
    const key = outKey(k);
    let e = this.out.get(key);
    if (e && e.expires <= this.now()) { this.remove(e); e = undefined; }
    if (!e) {
      const port = this.allocate(external, k.protocol);
      if (port === undefined) return undefined;
      e = { ...k, external, extPort: port, expires: 0, closing: false };
      this.out.set(key, e);
      this.in.set(inKey(external, k.protocol, port, k.remote, k.remotePort), e);
      this.used.add(portKey(external, k.protocol, port));
    }
    this.touch(e);
    return e;
  }

  /** The entry a reply from the datacenter belongs to, or undefined (none, or expired). */
  inbound(external: number, protocol: number, extPort: number, remote: number, remotePort: number): NatEntry | undefined {
    const e = this.in.get(inKey(external, protocol, extPort, remote, remotePort));
    if (!e) return undefined;
    if (e.expires <= this.now()) { this.remove(e); return undefined; }
    this.touch(e);
    return e;
  }

  /** A TCP FIN or RST seen: the flow keeps only the closing timeout. */
  closing(e: NatEntry): void { e.closing = true; this.touch(e); }

  /** Drops expired entries; returns how many. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const e of [...this.out.values()]) if (e.expires <= now) { this.remove(e); n++; }
    return n;
  }

  entries(): readonly NatEntry[] { return [...this.out.values()]; }

  private touch(e: NatEntry): void {
    e.expires = this.now() + (e.closing ? TCP_CLOSING_MS : IDLE_MS[e.protocol] ?? IDLE_MS[17]!);
  }

  private allocate(external: number, protocol: number): number | undefined {
    const nk = `${external}|${protocol}`;
    if ((this.inUse.get(nk) ?? 0) >= SPAN) {
      // Full: a sweep walks the whole table, so a VM opening flow after flow gets at most one a second.
      const now = this.now();
      if (now - this.fullSweep < 1000 || this.sweep() === 0) { this.fullSweep = now; return undefined; }
      this.fullSweep = now;
    }
    const start = this.next.get(nk) ?? NAT_PORT_MIN;
    for (let i = 0; i < SPAN; i++) {
      const port = NAT_PORT_MIN + ((start - NAT_PORT_MIN + i) % SPAN);
      if (this.used.has(portKey(external, protocol, port))) continue;
      this.next.set(nk, port === NAT_PORT_MAX ? NAT_PORT_MIN : port + 1);
      this.inUse.set(nk, (this.inUse.get(nk) ?? 0) + 1);
      return port;
    }
    return undefined;
  }

  private remove(e: NatEntry): void {
    this.out.delete(outKey(e));
    this.in.delete(inKey(e.external, e.protocol, e.extPort, e.remote, e.remotePort));
    this.used.delete(portKey(e.external, e.protocol, e.extPort));
    const nk = `${e.external}|${e.protocol}`;
    this.inUse.set(nk, this.inUse.get(nk)! - 1);
  }
}
