// The MACs of VM adapters and host vNICs: which are taken, a free one from the host's pool,
// and the spellings -StaticMacAddress accepts.
import { invalid } from './invalid-argument.ts';
import { allocateMac, colonMac, parseMacText } from './mac-pool.ts';
import type { NetHost } from './net-host.ts';

/** Every MAC in use on this host: the VMs' adapters and `hostNicMacs`. */
export function usedMacs(host: NetHost, hostNicMacs: Iterable<string>): Set<string> {
  return new Set([...[...host.entries()].flatMap((e) => e.config.networkAdapters.map((a) => a.mac.toUpperCase())), ...hostNicMacs]);
}

/** A MAC from the host's pool that no VM, host vNIC or address in `also` has. */
export function freeMac(host: NetHost, hostNicMacs: Iterable<string>, also: ReadonlySet<string>): string {
  return allocateMac(host.macPool(), new Set([...usedMacs(host, hostNicMacs), ...also]));
}

/** `00-15-5D-01-02-03`, `00155D010203` or colon form → `00:15:5D:01:02:03`; unicast only. */
export function normalizeMac(text: string): string {
  const hex = parseMacText(text, 'StaticMacAddress');
  if ((parseInt(hex.slice(0, 2), 16) & 1) !== 0) throw invalid('StaticMacAddress', `${text} is a multicast address`);
  if (hex === '000000000000') throw invalid('StaticMacAddress', 'the all-zero address is not allowed');
  return colonMac(hex);
}
