// Which IP addresses belong to which network adapter: the agent's KVP report lists the
// guest's interfaces with their MACs (NetworkInterfaces, src/guest/PROTOCOL.md), and an
// adapter's MAC is what QEMU gives the guest NIC, so the match is by MAC. An older agent sends
// only the VM-wide lists; then every adapter shows all of them (the previous behaviour).
import type { GuestInterface } from '../guest/index.ts';

export function adapterAddresses(kvp: Record<string, unknown>, mac: string): string[] {
  const nics = kvp.NetworkInterfaces;
  if (!Array.isArray(nics)) return [...strings(kvp.NetworkAddressIPv4), ...strings(kvp.NetworkAddressIPv6)];
  const want = mac.toLowerCase();
  const own = (nics as Partial<GuestInterface>[]).filter((n) => typeof n.MacAddress === 'string' && n.MacAddress.toLowerCase() === want);
  return [...own.flatMap((n) => strings(n.IPv4)), ...own.flatMap((n) => strings(n.IPv6))];
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
