// The host's HNV policy compiled for the per-frame path (IPv4 customer and provider addresses
// as numbers, MACs as 48-bit numbers, nested maps instead of string keys), rebuilt on every
// policy change: lookup records by (VSID, CA) and (VSID, MAC), the remote PAs that hold each
// subnet (where a broadcast is replicated), this host's PAs, and the distributed router's
// gateway addresses (the first host address of each on-link customer route prefix of a
// subnet: the ".1" its VMs use as default gateway). IPv6 customer addresses' records count
// here by MAC and PA only (`ca` -1); their CA lookups are ipv6.ts's. Depends on packet and
// policy, lookup.
import { ipv4Mask, parseCidr, parseIpv4Address } from '../packet/index.ts';
import { HnvTables } from './lookup.ts';
import type { HnvPolicy, LookupRecord } from './policy.ts';

/** A lookup record with its addresses as numbers. */
export interface Destination {
  readonly record: LookupRecord;
  /** The IPv4 CA; -1 for a record of an IPv6 CA. */
  readonly ca: number;
  readonly mac: number;
  readonly pa: number;
}

const isV4 = (a: string): boolean => !a.includes(':');

/**
 * The outer MAC of a provider address on the tunnel: 02:00 and the address's four bytes. The
 * provider network is the uplink's point-to-point tunnel, so both ends derive each other's
 * MAC from the PA and no ARP runs on the provider side.
 */
export function paMac(pa: number): Uint8Array {
  return new Uint8Array([0x02, 0x00, pa >>> 24, (pa >>> 16) & 0xff, (pa >>> 8) & 0xff, pa & 0xff]);
}

/** paMac(pa) as the 48-bit number the switch's parse gives a MAC. */
export function paMacNumber(pa: number): number { return 0x0200_0000_0000 + (pa >>> 0); }

function nested<K, V>(m: Map<number, Map<K, V>>, vsid: number): Map<K, V> {
  let inner = m.get(vsid);
  if (!inner) { inner = new Map(); m.set(vsid, inner); }
  return inner;
}

export class CompiledPolicy {
  readonly tables: HnvTables;
  /** This host's IPv4 provider addresses; the first is the source of what it encapsulates. */
  readonly localPas: ReadonlySet<number>;
  readonly sourcePa: number | undefined;
  private readonly byCa = new Map<number, Map<number, Destination>>();
  private readonly byMac = new Map<number, Map<number, Destination>>();
  private readonly remotePas = new Map<number, number[]>();
  private readonly gateways = new Map<number, Set<number>>();
  /** The subnets of each routing domain. */
  private readonly domainSubnets = new Map<string, number[]>();
  /** The next hops of the customer routes that have one, as numbers (parsed once, not per frame). */
  private readonly hops = new Map<string, number>();
  /** paMac of every PA the policy names (made once, not per frame). */
  private readonly paMacs = new Map<number, Uint8Array>();

  constructor(readonly policy: HnvPolicy) {
    this.tables = new HnvTables(policy);
    const pas = policy.providerAddresses.filter((p) => isV4(p.providerAddress)).map((p) => parseIpv4Address(p.providerAddress));
    this.localPas = new Set(pas);
    this.sourcePa = pas[0];
    for (const r of policy.lookupRecords) {
      if (!isV4(r.providerAddress) || r.type === 'GatewayWildcard') continue;
      // An IPv6 CA's record carries its MAC as an IPv4 one does (ipv6.ts has the CA lookups).
      const d: Destination = { record: r, ca: isV4(r.customerAddress) ? parseIpv4Address(r.customerAddress) : -1, mac: parseInt(r.macAddress, 16), pa: parseIpv4Address(r.providerAddress) };
      if (d.ca !== -1) nested(this.byCa, r.virtualSubnetId).set(d.ca, d);
      const macs = nested(this.byMac, r.virtualSubnetId);
      if (!macs.has(d.mac)) macs.set(d.mac, d);
      if (!this.localPas.has(d.pa)) {
        const list = this.remotePas.get(r.virtualSubnetId) ?? [];
        if (!list.includes(d.pa)) list.push(d.pa);
        this.remotePas.set(r.virtualSubnetId, list);
      }
    }
    for (const route of policy.customerRoutes) {
      const subnets = this.domainSubnets.get(route.routingDomainId) ?? [];
      if (!subnets.includes(route.virtualSubnetId)) subnets.push(route.virtualSubnetId);
      this.domainSubnets.set(route.routingDomainId, subnets);
      const c = parseCidr(route.destinationPrefix);
      if (c.version === 4 && route.nextHop !== '0.0.0.0') this.hops.set(route.nextHop, parseIpv4Address(route.nextHop));
      if (c.version !== 4 || route.nextHop !== '0.0.0.0' || c.prefixLength > 30) continue;
      const network = (c.address & ipv4Mask(c.prefixLength)) >>> 0;
      const gw = this.gateways.get(route.virtualSubnetId) ?? new Set<number>();
      gw.add(network + 1);
      this.gateways.set(route.virtualSubnetId, gw);
    }
  }

  /** paMac(pa), from the table when the policy names the PA. */
  macOf(pa: number): Uint8Array {
    let m = this.paMacs.get(pa);
    if (!m) { m = paMac(pa); if (this.paMacs.size < 4096) this.paMacs.set(pa, m); }
    return m;
  }

  /** A customer route's next hop as a number (IPv4 routes with a next hop only). */
  nextHop(text: string): number { return this.hops.get(text) ?? parseIpv4Address(text); }

  byAddress(vsid: number, ca: number): Destination | undefined { return this.byCa.get(vsid)?.get(ca); }
  byMacAddress(vsid: number, mac: number): Destination | undefined { return this.byMac.get(vsid)?.get(mac); }
  /** Other hosts' PAs with a record in the subnet. */
  remotes(vsid: number): readonly number[] { return this.remotePas.get(vsid) ?? []; }
  isGateway(vsid: number, ip: number): boolean { return this.gateways.get(vsid)?.has(ip) ?? false; }

  /** A customer address anywhere in the routing domain of `vsid` (a routed frame's source), or in `vsid` alone when it has no domain. */
  inDomain(vsid: number, ca: number): Destination | undefined {
    const rdid = this.tables.routingDomain(vsid);
    const subnets = rdid === undefined ? [vsid] : this.domainSubnets.get(rdid) ?? [vsid];
    for (const v of subnets) { const d = this.byAddress(v, ca); if (d) return d; }
    return undefined;
  }
}
