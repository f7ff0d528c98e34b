// NIC teaming's address hash (Windows Server 2012 R2 LBFO "Address Hash"): the number a frame's
// addresses give, so one flow always leaves through one team member (no reordering) while many
// flows spread over all of them. Three levels, each falling back to the next when the frame
// lacks the fields:
// - TransportPorts: IP source and destination + TCP/UDP ports (the 4-tuple); an IP packet
//   without ports (ICMP, another protocol, a fragment: only the first one has them, and all
//   fragments must go alike) falls back to
// - IPAddresses: IP source and destination (the 2-tuple); a frame that is not IP falls back to
// - MacAddresses: source and destination MAC.
// Reads raw bytes (one optional VLAN tag) rather than the classifier, which belongs to the
// switch pipeline. Depends on nothing.

export type AddressHashLevel = 'TransportPorts' | 'IPAddresses' | 'MacAddresses';

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const TCP = 6;
const UDP = 17;
const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over the fields of the level the frame supports. */
export function addressHash(f: Uint8Array, level: AddressHashLevel): number {
  if (level !== 'MacAddresses') {
    let off = 12;
    let type = (f[off]! << 8) | f[off + 1]!;
    if (type === ETH_VLAN) { off += 4; type = (f[off]! << 8) | f[off + 1]!; }
    const l3 = off + 2;
    let h = FNV_OFFSET;
    let l4 = -1;
    let proto = -1;
    if (type === ETH_IPV4 && f.length >= l3 + 20) {
      h = fnv(h, f, l3 + 12, l3 + 20);
      proto = f[l3 + 9]!;
      const fragmented = (f[l3 + 6]! & 0x3f) !== 0 || f[l3 + 7] !== 0; // MF or an offset
      if (!fragmented) l4 = l3 + (f[l3]! & 0x0f) * 4;
    } else if (type === ETH_IPV6 && f.length >= l3 + 40) {
      h = fnv(h, f, l3 + 8, l3 + 40);
      proto = f[l3 + 6]!;
      l4 = l3 + 40;
    }
    if (proto >= 0) {
      if (level === 'TransportPorts' && (proto === TCP || proto === UDP) && l4 > 0 && f.length >= l4 + 4) h = fnv(h, f, l4, l4 + 4);
      return h >>> 0;
    }
  }
  return fnv(FNV_OFFSET, f, 0, 12) >>> 0;
}

function fnv(h: number, f: Uint8Array, from: number, to: number): number {
  const end = Math.min(to, f.length);
  for (let i = from; i < end; i++) h = Math.imul(h ^ f[i]!, 0x01000193);
  return h;
}

/** The same FNV-1a over a string (a switch port id). */
export function stringHash(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
