// The distributed router: every host answers the default gateway (the .1 of each on-link
// customer route prefix) of every virtual subnet with one gateway MAC, and routes an IPv4
// packet sent to that MAC between subnets of the same routing domain itself — the customer
// route of the destination names its subnet, the lookup record its MAC — so no frame goes to a
// gateway and no host floods. A route via a next hop (a domain's default route to its
// gateway's CA) is sent to the MAC of the next hop's lookup record (src/hnv/gateway.ts). The routed copy carries the gateway MAC as source and the
// destination VM's MAC, its TTL one less (header checksum updated). Answers ARP for the
// gateway and for customer addresses from the lookup records. Pure. Depends on packet, compiled.
import {
  ARP_REPLY, ETHERTYPE_ARP, buildArp, buildEthernet, internetChecksum, macFromNumber,
} from '../packet/index.ts';
import type { CompiledPolicy, Destination } from './compiled.ts';

/** The distributed router's MAC on every host (locally administered; never an outer address). */
export const GATEWAY_MAC = 0x02_15_5d_ff_ff_01;

export type Routed = { readonly ok: true; readonly frame: Uint8Array; readonly vsid: number; readonly to: Destination } | { readonly ok: false; readonly drop: string };

/** IPv4 header of an untagged frame. */
const IP = 14;

/**
 * Where `dst` goes from a VM of `vsid`: the subnet it is on-link in and the address whose
 * lookup record names the next MAC — `dst` itself, or for a route via a next hop (the routing
 * domain's gateway, New-NetVirtualizationCustomerRoute -NextHop its CA) that hop, which must be
 * on-link in the domain. Undefined: no route.
 */
export function resolve(p: CompiledPolicy, vsid: number, dst: number): { readonly vsid: number; readonly hop: number } | undefined {
  let r = p.tables.routeV4(vsid, dst);
  if (!r || r.nextHop === '0.0.0.0') return r && { vsid: r.virtualSubnetId, hop: dst };
  const hop = p.nextHop(r.nextHop);
  r = p.tables.routeV4(vsid, hop);
  return r && r.nextHop === '0.0.0.0' ? { vsid: r.virtualSubnetId, hop } : undefined;
}

/**
 * Routes `frame` (IPv4, sent by a VM of `vsid` to GATEWAY_MAC) toward `dst`: the copy to send
 * on, the subnet it now travels in and its destination, or why not.
 */
export function route(p: CompiledPolicy, vsid: number, frame: Uint8Array, dst: number, ttl: number): Routed {
  const r = resolve(p, vsid, dst);
  if (!r) return { ok: false, drop: 'hnv-no-route' };
  const to = p.byAddress(r.vsid, r.hop);
  if (!to) return { ok: false, drop: 'hnv-no-lookup-record' };
  if (ttl <= 1) return { ok: false, drop: 'hnv-ttl-expired' };
  const out = Uint8Array.prototype.slice.call(frame) as Uint8Array;
  out.set(macFromNumber(to.mac), 0);
  out.set(macFromNumber(GATEWAY_MAC), 6);
  out[IP + 8] = ttl - 1;
  out[IP + 10] = 0; out[IP + 11] = 0;
  const sum = internetChecksum(out, IP, (out[IP]! & 0x0f) * 4);
  out[IP + 10] = sum >>> 8; out[IP + 11] = sum & 0xff;
  return { ok: true, frame: out, vsid: r.vsid, to };
}

/** The MAC that answers an ARP request for `target` in `vsid`: the gateway's, a lookup record's, or undefined (no record: dropped, never flooded). */
export function arpAnswer(p: CompiledPolicy, vsid: number, target: number): number | undefined {
  if (p.isGateway(vsid, target)) return GATEWAY_MAC;
  return p.byAddress(vsid, target)?.mac;
}

/** An ARP reply from `mac` (owner of `ip`) to the requester. */
export function arpReply(mac: number, ip: number, requesterMac: number, requesterIp: number): Uint8Array {
  const sha = macFromNumber(mac), tha = macFromNumber(requesterMac);
  return buildEthernet({ dst: tha, src: sha, ethertype: ETHERTYPE_ARP, payload: buildArp({ op: ARP_REPLY, sha, spa: ip, tha, tpa: requesterIp }) });
}
