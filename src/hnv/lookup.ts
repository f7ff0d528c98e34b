// The lookups the NVGRE data path needs, compiled once per policy change from policy.ts's
// records (a policy is small and changes seldom; frames are many): CA + VSID → lookup record,
// MAC + VSID → record, destination → customer route (longest prefix of the routing domain,
// lowest metric on a tie), and which subnets share a routing domain. Pure.
import { ipv4InPrefix, ipv6InPrefix, parseIpv4Address, parseIpv6Address } from '../packet/index.ts';
import { normalizeAddress, normalizeMacText, normalizePrefix, type CustomerRoute, type HnvPolicy, type LookupRecord } from './policy.ts';

interface CompiledRoute { readonly route: CustomerRoute; readonly version: 4 | 6; readonly v4: number; readonly v6: Uint8Array; readonly length: number }

const key = (vsid: number, x: string) => `${vsid}/${x}`;

export class HnvTables {
  private readonly byCa = new Map<string, LookupRecord>();
  private readonly byMac = new Map<string, LookupRecord>();
  private readonly domainOf = new Map<number, string>();
  /** Per routing domain, longest prefix first. */
  private readonly routes = new Map<string, CompiledRoute[]>();

  constructor(policy: HnvPolicy) {
    for (const r of policy.lookupRecords) {
      this.byCa.set(key(r.virtualSubnetId, r.customerAddress), r);
      if (!this.byMac.has(key(r.virtualSubnetId, r.macAddress))) this.byMac.set(key(r.virtualSubnetId, r.macAddress), r);
      if (r.customerId !== undefined) this.domainOf.set(r.virtualSubnetId, r.customerId);
    }
    // Routes name the domain too, and win over records (policy.ts keeps the two consistent).
    for (const route of policy.customerRoutes) {
      this.domainOf.set(route.virtualSubnetId, route.routingDomainId);
      const { cidr } = normalizePrefix(route.destinationPrefix);
      const c: CompiledRoute = cidr.version === 4
        ? { route, version: 4, v4: cidr.address, v6: new Uint8Array(16), length: cidr.prefixLength }
        : { route, version: 6, v4: 0, v6: cidr.address, length: cidr.prefixLength };
      const list = this.routes.get(route.routingDomainId) ?? [];
      list.push(c);
      this.routes.set(route.routingDomainId, list);
    }
    for (const list of this.routes.values()) list.sort((a, b) => b.length - a.length || a.route.metric - b.route.metric);
  }

  /** The record of a customer address in a virtual subnet (`ca` in any spelling). */
  lookup(vsid: number, ca: string): LookupRecord | undefined {
    return this.byCa.get(key(vsid, normalizeAddress(ca, 'CustomerAddress')));
  }

  /** The first record of a MAC in a virtual subnet (L2: where a frame to that MAC goes). */
  lookupMac(vsid: number, mac: string): LookupRecord | undefined {
    return this.byMac.get(key(vsid, normalizeMacText(mac)));
  }

  routingDomain(vsid: number): string | undefined {
    return this.domainOf.get(vsid);
  }

  /** Two subnets of one routing domain may be routed between; an unknown subnet is in none. */
  sameRoutingDomain(a: number, b: number): boolean {
    const d = this.domainOf.get(a);
    return d !== undefined && d === this.domainOf.get(b);
  }

  /** The customer route a packet from `vsid` to `destination` takes: longest prefix in the subnet's routing domain. */
  route(vsid: number, destination: string): CustomerRoute | undefined {
    const rdid = this.domainOf.get(vsid);
    const list = rdid === undefined ? undefined : this.routes.get(rdid);
    if (!list) return undefined;
    const a = normalizeAddress(destination, 'destination');
    if (a.includes(':')) {
      const b = parseIpv6Address(a);
      return list.find((r) => r.version === 6 && ipv6InPrefix(b, 0, r.v6, r.length))?.route;
    }
    return this.routeV4(vsid, parseIpv4Address(a));
  }

  /** route() for an IPv4 destination as a number: the per-frame path, no text. */
  routeV4(vsid: number, destination: number): CustomerRoute | undefined {
    const rdid = this.domainOf.get(vsid);
    const list = rdid === undefined ? undefined : this.routes.get(rdid);
    return list?.find((r) => r.version === 4 && ipv4InPrefix(destination, r.v4, r.length))?.route;
  }
}

/** Same virtual subnet: frames may be bridged between the two (no routing, no domain check needed). */
export function sameVirtualSubnet(a: number | undefined, b: number | undefined): boolean {
  return a !== undefined && a === b;
}
