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
//  4. Learned claims are bounded per port and for the whole table (switch settings
//     maxLearnedAddressesPerPort / maxLearnedAddresses). An address over quota is not
//     claimed; a port with ArpGuard On may not use it at all (guards.ts drops the frame as
//     'address-quota'), so a full table never lets a guarded port use an unowned address.
//  5. A port with ArpGuard On may not send ARP (any op: reply, request, gratuitous) whose
//     sender IP is owned by another port, nor ND (NS, NA, RS, RA, Redirect) whose IPv6 source
//     or NA target is owned by another port.
// Depends on nothing.

/** Learned-claim quotas: a switch setting (settings.ts), applied to the table at once. */
export interface AddressQuota {
  /** Learned claims one port may hold; its next new address is refused. */
  perPort: number;
  /** Learned claims the whole table may hold. */
  total: number;
}

export interface IpOwner {
  port: string;
  seen: number;
  /** Configured on the port: never ages, never moves, counts against no quota. */
  fixed: boolean;
}

export class IpOwners {
  private readonly owners = new Map<number | string, IpOwner>();
  /**
   * The address last looked up and what the table held for it: the guard checks and then
   * learns the same source address for every frame of a flow. -1 (no address) = nothing;
   * every change to the table forgets it.
   */
  private recentAddr: number | string = -1;
  private recentOwner: IpOwner | undefined = undefined;
  /** Each port's learned (not fixed) claims: the quota counts, and the purge at quota scans only these. */
  private readonly learned = new Map<string, Set<number | string>>();
  private learnedTotal = 0;
  ageingMs: number;
  quota: AddressQuota;
  /**
   * Bumped by every claim made, moved or removed (not by a refresh of one's time): until it
   * changes, or time moves on, a check or use of the same address by the same port answers
   * the same — the flow cache re-checks a cached flow's source address only then.
   */
  version = 0;

  constructor(ageingMs: number, quota: AddressQuota) { this.ageingMs = ageingMs; this.quota = quota; }

  /** The owning port, if the claim is live. */
  owner(addr: number | string, now: number): string | undefined {
    const o = this.find(addr);
    if (!o) return undefined;
    if (this.lapsed(o, now)) { this.remove(addr, o); return undefined; }
    return o.port;
  }

  /**
   * False when `port` using `addr` would need a new claim the quotas do not allow (the
   * address is free or lapsed, and the port or the table is full). A port's own lapsed
   * claims are dropped first, so a full port that stopped using old addresses is not stuck
   * until the housekeeping sweep.
   */
  canClaim(addr: number | string, port: string, now: number): boolean {
    const o = this.find(addr);
    if (o && (o.port === port || !this.lapsed(o, now))) return true;
    let mine = this.learned.get(port)?.size ?? 0;
    if (mine >= this.quota.perPort) { this.purgePort(port, now); mine = this.learned.get(port)?.size ?? 0; }
    // A lapsed claim of another port is taken over: the table does not grow.
    return mine < this.quota.perPort && (o !== undefined || this.learnedTotal < this.quota.total);
  }

  /** Records use of `addr` by `port`: claims it if free and the quotas allow, refreshes it if the port's own. */
  use(addr: number | string, port: string, now: number): void {
    const o = this.find(addr);
    if (o && o.port === port) { o.seen = now; return; }
    if (o && !this.lapsed(o, now)) return;
    if (!this.canClaim(addr, port, now)) return;
    if (o) this.remove(addr, o);
    this.owners.set(addr, { port, seen: now, fixed: false });
    this.version++;
    this.recentAddr = -1;
    this.index(port).add(addr);
    this.learnedTotal++;
  }

  /** Replaces a port's configured addresses. */
  setFixed(port: string, addrs: readonly (number | string)[], now: number): void {
    this.recentAddr = -1;
    this.version++;
    for (const [a, o] of this.owners) if (o.port === port && o.fixed) this.owners.delete(a);
    for (const a of addrs) {
      const o = this.owners.get(a);
      if (o) this.remove(a, o);
      this.owners.set(a, { port, seen: now, fixed: true });
    }
  }

  /** Drops lapsed learned claims (called on the switch's housekeeping timer). */
  sweep(now: number): void {
    for (const [a, o] of this.owners) if (this.lapsed(o, now)) this.remove(a, o);
  }

  forgetPort(port: string): void {
    for (const [a, o] of this.owners) if (o.port === port) this.remove(a, o);
    this.learned.delete(port);
  }

  addressesOf(port: string, now: number): (number | string)[] {
    const out: (number | string)[] = [];
    for (const [a, o] of this.owners) if (o.port === port && !this.lapsed(o, now)) out.push(a);
    return out;
  }

  private lapsed(o: IpOwner, now: number): boolean { return !o.fixed && now - o.seen > this.ageingMs; }

  private purgePort(port: string, now: number): void {
    for (const a of this.learned.get(port) ?? []) {
      const o = this.owners.get(a);
      if (o && this.lapsed(o, now)) this.remove(a, o);
    }
  }

  private index(port: string): Set<number | string> {
    let s = this.learned.get(port);
    if (!s) { s = new Set(); this.learned.set(port, s); }
    return s;
  }

  private find(addr: number | string): IpOwner | undefined {
    if (addr === this.recentAddr) return this.recentOwner;
    const o = this.owners.get(addr);
    this.recentAddr = addr;
    this.recentOwner = o;
    return o;
  }

  private remove(addr: number | string, o: IpOwner): void {
    this.owners.delete(addr);
    this.version++;
    this.recentAddr = -1;
    if (o.fixed) return;
    const s = this.learned.get(o.port);
    if (s?.delete(addr)) this.learnedTotal--;
    if (s && s.size === 0) this.learned.delete(o.port);
  }
}
