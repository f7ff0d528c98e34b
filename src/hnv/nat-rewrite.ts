// In-place rewrites of an untagged Ethernet/IPv4 frame for the gateway: an address, a TCP/UDP
// port or ICMP echo id, the TTL, each with its checksums updated incrementally (RFC 1624: HC' =
// ~(~HC + ~m + m')) rather than recomputed, so the cost does not grow with the payload. An
// address is in the TCP/UDP pseudo-header, so its change is folded into their checksum too; a
// UDP checksum of 0 (none sent) stays 0. Depends on nothing.

const IP = 14;
const PROTO_ICMP = 1, PROTO_TCP = 6, PROTO_UDP = 17;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

/** RFC 1624 eqn. 3 on the 16-bit checksum at `at`, for a 16-bit word changing from `from` to `to`. */
function adjust(b: Uint8Array, at: number, from: number, to: number, udp = false): void {
  const hc = u16(b, at);
  if (udp && hc === 0) return;
  let s = (~hc & 0xffff) + (~from & 0xffff) + to;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  let c = ~s & 0xffff;
  if (udp && c === 0) c = 0xffff;
  b[at] = c >>> 8; b[at + 1] = c & 0xff;
}

const l4 = (b: Uint8Array): number => IP + (b[IP]! & 0x0f) * 4;

/** Where the L4 checksum is, or -1 (a protocol whose checksum does not cover the addresses, or none). */
function l4ChecksumAt(b: Uint8Array): number {
  const p = b[IP + 9]!;
  return p === PROTO_TCP ? l4(b) + 16 : p === PROTO_UDP ? l4(b) + 6 : -1;
}

/** Sets the IPv4 source or destination address. */
export function setAddress(b: Uint8Array, which: 'src' | 'dst', ip: number): void {
  const at = IP + (which === 'src' ? 12 : 16);
  const cs = l4ChecksumAt(b), udp = b[IP + 9] === PROTO_UDP;
  for (const half of [0, 2]) {
    const from = u16(b, at + half), to = half === 0 ? ip >>> 16 : ip & 0xffff;
    b[at + half] = to >>> 8; b[at + half + 1] = to & 0xff;
    adjust(b, IP + 10, from, to);
    if (cs >= 0) adjust(b, cs, from, to, udp);
  }
}

/** Sets the TCP/UDP source or destination port, or (ICMP echo) the identifier. */
export function setPort(b: Uint8Array, which: 'src' | 'dst', port: number): void {
  const proto = b[IP + 9]!, o = l4(b);
  const at = proto === PROTO_ICMP ? o + 4 : o + (which === 'src' ? 0 : 2);
  const cs = proto === PROTO_ICMP ? o + 2 : l4ChecksumAt(b);
  const from = u16(b, at);
  b[at] = port >>> 8; b[at + 1] = port & 0xff;
  adjust(b, cs, from, port, proto === PROTO_UDP);
}

/** TTL − 1 (the caller checked it is above 1). */
export function decrementTtl(b: Uint8Array): void {
  const from = u16(b, IP + 8);
  b[IP + 8] = b[IP + 8]! - 1;
  adjust(b, IP + 10, from, u16(b, IP + 8));
}

/** The ICMP echo identifier of an ICMP frame. */
export function icmpEchoId(b: Uint8Array): number { return u16(b, l4(b) + 4); }
