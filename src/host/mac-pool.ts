// The host's pool of dynamic MAC addresses (Hyper-V's Set-VMHost -MacAddressMinimum
// -MacAddressMaximum): every dynamic MAC this host hands out (New-VM, Add-VMNetworkAdapter,
// Import-VM -GenerateNewId, a host vNIC, a cold start renewing a kept MAC) comes from it. The
// default pool is 256 addresses, 00-15-5D-XX-YY-00..FF, with XX-YY taken from the host's id
// (host-identity.ts) — as Hyper-V takes them from the host's IP address — so two hosts do not
// hand out the same address unless their ids collide in those 16 bits (1 in 65536: hosts that
// must never collide are given pools explicitly). Pure: addresses are 12 uppercase hex digits.
import { createHash } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';

export interface MacPool {
  /** 12 uppercase hex digits, as Get-VMHost shows them (00155D381F00). */
  minimum: string;
  maximum: string;
}

/** Microsoft's OUI, the one Hyper-V's default pools use. */
const HYPERV_OUI = '00155D';

/** `text` in any of 00-15-5D-38-1F-00, 00:15:5d:38:1f:00, 00155D381F00 as 12 uppercase hex digits; `param` names it in the error. */
export function parseMacText(text: string, param: string): string {
  const hex = text.trim().replace(/[-:.]/g, '').toUpperCase();
  if (!/^[0-9A-F]{12}$/.test(hex)) throw invalid(param, `'${text}' is not a MAC address (12 hex digits, optionally separated by - or :)`);
  return hex;
}

/** 00:15:5D:38:1F:00 — the spelling vm.json and the switch use. */
export function colonMac(hex: string): string {
  return hex.match(/../g)!.join(':');
}

export function defaultMacPool(hostId: string): MacPool {
  const xy = createHash('sha256').update(hostId).digest('hex').slice(0, 4).toUpperCase();
  return { minimum: `${HYPERV_OUI}${xy}00`, maximum: `${HYPERV_OUI}${xy}FF` };
}

/** Refuses a pool Hyper-V would refuse: unicast ends, one OUI (the first three bytes), minimum ≤ maximum. */
export function checkMacPool(p: MacPool): void {
  for (const [param, hex] of [['MacAddressMinimum', p.minimum], ['MacAddressMaximum', p.maximum]] as const) {
    if ((parseInt(hex.slice(0, 2), 16) & 1) !== 0) throw invalid(param, `${colonMac(hex)} is a multicast address; a pool holds unicast addresses`);
  }
  if (p.minimum.slice(0, 6) !== p.maximum.slice(0, 6)) {
    throw invalid('MacAddressMaximum', `${colonMac(p.maximum)} is in another OUI than ${colonMac(p.minimum)}: a pool lies inside one (the first three bytes equal)`);
  }
  if (p.minimum > p.maximum) throw invalid('MacAddressMinimum', `${colonMac(p.minimum)} is above MacAddressMaximum ${colonMac(p.maximum)}`);
}

export function macPoolSize(p: MacPool): number {
  return parseInt(p.maximum.slice(6), 16) - parseInt(p.minimum.slice(6), 16) + 1;
}

export function inMacPool(p: MacPool, mac: string): boolean {
  const hex = mac.replace(/:/g, '').toUpperCase();
  return hex >= p.minimum && hex <= p.maximum;
}

/**
 * A free address of the pool (colon form), none of `used` (colon or bare, any case): the scan
 * starts at a random place and wraps, so allocations spread over the pool and a full pool is
 * known for sure. `random` ∈ [0, 1) is injectable for tests.
 */
export function allocateMac(p: MacPool, used: ReadonlySet<string>, random: () => number = Math.random): string {
  const taken = new Set([...used].map((m) => m.replace(/:/g, '').toUpperCase()));
  const size = macPoolSize(p);
  const base = parseInt(p.minimum.slice(6), 16);
  const start = Math.floor(random() * size);
  for (let i = 0; i < size; i++) {
    const hex = p.minimum.slice(0, 6) + ((base + ((start + i) % size)).toString(16).toUpperCase().padStart(6, '0'));
    if (!taken.has(hex)) return colonMac(hex);
  }
  throw new VmhostError('MAC_POOL_EXHAUSTED', `All ${size} addresses of this host's MAC pool ${colonMac(p.minimum)}–${colonMac(p.maximum)} are in use: widen it (Set-VMHost -MacAddressMinimum/-MacAddressMaximum) or free some`, {});
}
