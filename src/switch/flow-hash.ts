// The flow of a frame as a number, for NIC teaming's TransportPorts/Dynamic distribution:
// the same MACs, IP addresses and TCP/UDP ports always hash alike, so one flow stays on one
// team member (no reordering) while many flows spread over all of them. Reads raw bytes
// (one optional VLAN tag) rather than the classifier, which belongs to the switch pipeline.
// Depends on nothing.

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const TCP = 6;
const UDP = 17;

/** FNV-1a over the MAC pair, then the IP pair and L4 ports when the frame has them. */
export function flowHash(f: Uint8Array): number {
  let h = 0x811c9dc5;
  const mix = (from: number, to: number): void => {
    for (let i = from; i < to && i < f.length; i++) h = Math.imul(h ^ f[i]!, 0x01000193);
  };
  mix(0, 12);
  let off = 12;
  let type = (f[off]! << 8) | f[off + 1]!;
  if (type === ETH_VLAN) { off += 4; type = (f[off]! << 8) | f[off + 1]!; }
  const l3 = off + 2;
  let l4 = -1;
  let proto = -1;
  if (type === ETH_IPV4 && f.length >= l3 + 20) {
    mix(l3 + 12, l3 + 20);
    proto = f[l3 + 9]!;
    const fragment = ((f[l3 + 6]! & 0x1f) << 8) | f[l3 + 7]!;
    if (fragment === 0) l4 = l3 + (f[l3]! & 0x0f) * 4;
  } else if (type === ETH_IPV6 && f.length >= l3 + 40) {
    mix(l3 + 8, l3 + 40);
    proto = f[l3 + 6]!;
    l4 = l3 + 40;
  }
  if ((proto === TCP || proto === UDP) && l4 > 0) mix(l4, l4 + 4);
  return h >>> 0;
}
