// The per-port guards of Set-VMNetworkAdapter, applied to frames the port sends:
// MacAddressSpoofing Off (source MAC and ARP sender MAC must be the port's MAC), DhcpGuard
// (DHCPv4 server messages from any source port, DHCPv6 547 → 546), RouterGuard (ICMPv6 RA and Redirect) and the ARP/ND spoofing
// guard (ip-owners.ts has the ownership rule, and its quotas: a guarded port may not use an
// address it cannot claim, 'address-quota'). Fragments (fragments.ts) are judged before the
// per-message rules, which see only unfragmented messages. Returns the drop reason or null.
// Depends on packet, ip-owners, fragments, stats.
import { type FrameInfo, ipv6Key, isIpv6Multicast, isIpv6Unspecified, ND_REDIRECT, ND_ROUTER_ADVERT, IPPROTO_ICMPV6, IPPROTO_UDP, ETHERTYPE_ARP } from '../packet/index.ts';
import { fragmentGuard } from './fragments.ts';
import type { IpOwners } from './ip-owners.ts';
import type { SwitchDropReason } from './stats.ts';

export interface CompiledGuards {
  /** The port's MAC as a number; -1 = not yet known (the first source MAC becomes it). */
  mac: number;
  macSpoofingAllowed: boolean;
  dhcpGuard: boolean;
  routerGuard: boolean;
  arpGuard: boolean;
}

const ND_FIRST = 133;
const ND_LAST = 137;
const ND_NEIGHBOR_ADVERT = 136;

export function checkGuards(g: CompiledGuards, port: string, f: FrameInfo, b: Uint8Array, owners: IpOwners, now: number): SwitchDropReason | null {
  if (!g.macSpoofingAllowed) {
    if (g.mac < 0) g.mac = f.src;
    if (f.src !== g.mac) return 'mac-spoofing';
    if (f.ethertype === ETHERTYPE_ARP && f.arpSha !== g.mac) return 'mac-spoofing';
  }
  if (f.fragment) {
    const r = fragmentGuard(g, f);
    if (r) return r;
  }
  // Any DHCPv4 server message (whatever its source port: clients read raw sockets), and DHCPv6
  // server-to-client messages (UDP 547 → 546).
  if (g.dhcpGuard && (f.dhcpFromServer || (f.ipVersion === 6 && f.ipProtocol === IPPROTO_UDP && f.srcPort === 547 && f.dstPort === 546))) return 'dhcp-guard';
  if (f.ipProtocol === IPPROTO_ICMPV6 && !f.laterFragment) {
    const t = f.icmpType;
    if (g.routerGuard && (t === ND_ROUTER_ADVERT || t === ND_REDIRECT)) return 'router-guard';
    if (g.arpGuard && t >= ND_FIRST && t <= ND_LAST) {
      if (!isIpv6Unspecified(b, f.ipSrcOffset) && otherOwner(owners, ipv6Key(b, f.ipSrcOffset), port, now)) return 'nd-spoofing';
      if (t === ND_NEIGHBOR_ADVERT && f.ndTargetOffset >= 0 && otherOwner(owners, ipv6Key(b, f.ndTargetOffset), port, now)) return 'nd-spoofing';
    }
  }
  if (g.arpGuard && f.ethertype === ETHERTYPE_ARP && f.arpSpa !== 0 && otherOwner(owners, f.arpSpa, port, now)) return 'arp-spoofing';
  if (g.arpGuard && !(f.ipVersion === 4 ? claimV4(owners, f.ipSrc, port, now, false) : claims(f, b, owners, port, now, false))) return 'address-quota';
  return null;
}

function otherOwner(owners: IpOwners, addr: number | string, port: string, now: number): boolean {
  const o = owners.owner(addr, now);
  return o !== undefined && o !== port;
}

/** Rule 2 of ip-owners.ts: what an accepted frame tells about the addresses its port uses. */
export function learnAddresses(port: string, f: FrameInfo, b: Uint8Array, owners: IpOwners, now: number): void {
  if (f.ipVersion === 4) claimV4(owners, f.ipSrc, port, now, true);
  else claims(f, b, owners, port, now, true);
}

/**
 * Each address the frame claims for its port: with `use`, recorded (owners.use); without,
 * checked against the quotas (owners.canClaim), false at the first one refused. A flag rather
 * than a callback: this runs for every frame and a closure would be allocated each time.
 */
function claims(f: FrameInfo, b: Uint8Array, owners: IpOwners, port: string, now: number, use: boolean): boolean {
  if (f.ethertype === ETHERTYPE_ARP) return f.arpSpa === 0 || claim(owners, f.arpSpa, port, now, use);
  if (f.ipVersion === 4) return claimV4(owners, f.ipSrc, port, now, use);
  if (f.ipVersion === 6) {
    const o = f.ipSrcOffset;
    if (!isIpv6Unspecified(b, o) && !isIpv6Multicast(b, o) && !claim(owners, ipv6Key(b, o), port, now, use)) return false;
    if (f.icmpType === ND_NEIGHBOR_ADVERT && f.ipProtocol === IPPROTO_ICMPV6 && f.ndTargetOffset >= 0) return claim(owners, ipv6Key(b, f.ndTargetOffset), port, now, use);
  }
  return true;
}

/**
 * An IPv4 source (unspecified, broadcast and multicast claim nothing). Called straight from
 * the guard and learning for IPv4 frames, the common case, rather than through claims(): that
 * general path, which also handles ARP and IPv6 keys, cost 30–40 ns more a frame (BENCHMARKS.md).
 */
function claimV4(owners: IpOwners, s: number, port: string, now: number, use: boolean): boolean {
  return s === 0 || s === 0xffffffff || (s >>> 28) === 14 || claim(owners, s, port, now, use);
}

function claim(owners: IpOwners, addr: number | string, port: string, now: number, use: boolean): boolean {
  if (!use) return owners.canClaim(addr, port, now);
  owners.use(addr, port, now);
  return true;
}
