// Who owns which IP address on the switch: the basis of the ARP/ND spoofing guard.
//
// The rule (documented in README.md):
//  1. Addresses configured on a port (PortPolicy.ipAddresses) are owned by it for as long as
//     the policy says so; nobody else can claim them.
//  2. Otherwise the first port seen using an address owns it: the sender IP of an ARP packet
//     (not 0.0.0.0, the ARP-probe source), the source of an IPv4 packet (unicast, not
//     0.0.0.0), the source of an IPv6 packet or the target of an NA (not ::, not multicast).
//     Learning happens on every port, guarded or not, and only from frames the switch
//     accepted — so a dropped forgery never claims anything.
//  3. A learned claim is refreshed by each use and lapses after the switch's ageing time
//     without use, or when its port is removed; then the next user may claim the address
//     (an address that moved to another VM).
//  4. A port with ArpGuard On may not send ARP (any op: reply, request, gratuitous) whose
//     sender IP is owned by another port, nor ND (NS, NA, RS, RA, Redirect) whose IPv6 source
//     or NA target is owned by another port.
// Depends on nothing.

/** Bound on learned claims, so a port cycling through source addresses cannot grow the table without limit. */
const MAX_CLAIMS = 65536;

export interface IpOwner {
  port: string;
  seen: number;
  /** Configured on the port: never ages, never moves. */
  fixed: boolean;
}

export class IpOwners {
  private readonly owners = new Map<number | string, IpOwner>();
  ageingMs: number;

  constructor(ageingMs: number) { this.ageingMs = ageingMs; }

  /** The owning port, if the claim is live. */
  owner(addr: number | string, now: number): string | undefined {
    const o = this.owners.get(addr);
    if (!o) return undefined;
    if (!o.fixed && now - o.seen > this.ageingMs) { this.owners.delete(addr); return undefined; }
    return o.port;
  }

  /** Records use of `addr` by `port`: claims it if free, refreshes it if the port's own. */
  use(addr: number | string, port: string, now: number): void {
    const o = this.owners.get(addr);
    if (!o) { if (this.owners.size < MAX_CLAIMS) this.owners.set(addr, { port, seen: now, fixed: false }); return; }
    if (o.port === port) { o.seen = now; return; }
    if (!o.fixed && now - o.seen > this.ageingMs) { o.port = port; o.seen = now; }
  }

  /** Replaces a port's configured addresses. */
  setFixed(port: string, addrs: readonly (number | string)[], now: number): void {
    for (const [a, o] of this.owners) if (o.port === port && o.fixed) this.owners.delete(a);
    for (const a of addrs) this.owners.set(a, { port, seen: now, fixed: true });
  }

  /** Drops lapsed learned claims (called on the switch's housekeeping timer). */
  sweep(now: number): void {
    for (const [a, o] of this.owners) if (!o.fixed && now - o.seen > this.ageingMs) this.owners.delete(a);
  }

  forgetPort(port: string): void {
    for (const [a, o] of this.owners) if (o.port === port) this.owners.delete(a);
  }

  addressesOf(port: string, now: number): (number | string)[] {
    const out: (number | string)[] = [];
    for (const [a, o] of this.owners) if (o.port === port && (o.fixed || now - o.seen <= this.ageingMs)) out.push(a);
    return out;
  }
}
