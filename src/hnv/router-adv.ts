// Router Advertisements of the distributed router (RFC 4861 §6.2, RFC 4862): a VM's Router
// Solicitation in a virtual subnet with on-link IPv6 customer routes is answered, on the VM's
// own port, with an RA from the router's link-local address and the gateway MAC (source
// link-layer option), router lifetime 1800 s, an MTU option of the provider MTU less the NVGRE
// overhead (so the guest never sends what cannot be encapsulated) and one Prefix Information
// option per on-link prefix (on-link; autonomous when it is a /64, the only length SLAAC takes
// on Ethernet) — so a guest gets its address and default route without static configuration.
// Its SLAAC address still needs a lookup record (the records are the only owners of CAs: the
// orchestrator writes the one for prefix + the adapter's modified EUI-64). An RS is valid only
// with hop limit 255, code 0 and no source link-layer option from :: (§6.1.1); a reply to ::
// goes to all-nodes. Also sent unsolicited to all-nodes on every port of the subnet at a random
// interval between MinRtrAdvInterval and MaxRtrAdvInterval (§6.2.4; 200–600 s by default, the
// data path's timer, which the switch runs: ExtensionTimer), so a guest that missed the answer
// to its solicitation still learns its prefix. Pure. Depends on packet, ipv6 (Policy6,
// ROUTER_LINK_LOCAL), router (GATEWAY_MAC).
import {
  ETHERTYPE_IPV6, IPPROTO_ICMPV6, ND_OPT_MTU, ND_OPT_PREFIX_INFORMATION, ND_OPT_SOURCE_LINKADDR, buildEthernet, buildIpv6, buildRouterAdvertisement,
  ipv6MulticastMac, isIpv6Unspecified, macFromNumber, parseIpv6Address, setIcmpv6Checksum, type FrameInfo, type NdOption,
} from '../packet/index.ts';
import { ROUTER_LINK_LOCAL, type Policy6 } from './ipv6.ts';
import { GATEWAY_MAC } from './router.ts';

export const ROUTER_LIFETIME = 1800;
/** RFC 4861 §6.2.1's defaults: MaxRtrAdvInterval 600 s, MinRtrAdvInterval 0.33 × that. */
export const MAX_RTR_ADV_INTERVAL_MS = 600_000;
export const MIN_RTR_ADV_INTERVAL_MS = 200_000;
const ALL_NODES = parseIpv6Address('ff02::1');
const IP = 14, SRC = IP + 8;

/** The RA for `vsid` (undefined: no on-link IPv6 prefix, no IPv6 router there) to `dstMac`/`dst`, advertising `customerMtu`. */
export function routerAdvertisement(p6: Policy6, vsid: number, customerMtu: number, dstMac: Uint8Array, dst: Uint8Array): Uint8Array | undefined {
  const prefixes = p6.prefixes(vsid);
  if (prefixes.length === 0) return undefined;
  const options: NdOption[] = [{ type: ND_OPT_SOURCE_LINKADDR, mac: macFromNumber(GATEWAY_MAC) }, { type: ND_OPT_MTU, mtu: customerMtu }];
  for (const o of prefixes) options.push({ type: ND_OPT_PREFIX_INFORMATION, prefix: o.prefix, prefixLength: o.length, onLink: true, autonomous: o.length === 64 });
  const ra = buildRouterAdvertisement({ curHopLimit: 64, routerLifetime: ROUTER_LIFETIME, options });
  setIcmpv6Checksum(ra, ROUTER_LINK_LOCAL, dst);
  return buildEthernet({ dst: dstMac, src: macFromNumber(GATEWAY_MAC), ethertype: ETHERTYPE_IPV6, payload: buildIpv6({ src: ROUTER_LINK_LOCAL, dst, nextHeader: IPPROTO_ICMPV6, hopLimit: 255, payload: ra }) });
}

/** The unsolicited RA of `vsid`, to all-nodes (undefined: no IPv6 router there). */
export function unsolicitedAdvertisement(p6: Policy6, vsid: number, customerMtu: number): Uint8Array | undefined {
  return routerAdvertisement(p6, vsid, customerMtu, ipv6MulticastMac(ALL_NODES), ALL_NODES);
}

/** The time to the next unsolicited RA: uniformly random in [min, max] (§6.2.4), so routers on one link do not synchronise. */
export function advertisementDelay(minMs: number, maxMs: number, random: () => number = Math.random): number {
  return minMs + random() * (maxMs - minMs);
}

/** A Router Solicitation from a VM of `vsid` (`info` its parse): the RA to send back, or undefined (invalid, or no IPv6 router in the subnet). */
export function solicitedAdvertisement(p6: Policy6, vsid: number, frame: Uint8Array, info: FrameInfo, customerMtu: number): Uint8Array | undefined {
  if (frame.length < IP + 40 || frame[IP + 7] !== 255 || info.icmpCode !== 0) return undefined;
  const unspecified = isIpv6Unspecified(frame, SRC);
  if (unspecified && info.ndSourceLinkAddr >= 0) return undefined;
  // The VM's own port only: the MAC is the soliciting VM's, the address its own or all-nodes.
  const dst = unspecified ? ALL_NODES : frame.slice(SRC, SRC + 16);
  return routerAdvertisement(p6, vsid, customerMtu, unspecified ? ipv6MulticastMac(ALL_NODES) : macFromNumber(info.src), dst);
}
