// IPv6-to-IPv6 Network Prefix Translation (NPTv6, RFC 6296) for the gateway's NAT-mode
// routing domains: an internal prefix (the tenant's, which may overlap another tenant's) maps
// one-to-one onto an external prefix of the same length on the datacenter, statelessly. The
// translation is checksum-neutral: one 16-bit word outside the prefix (bits 48–63 for a prefix of
// /48 or shorter, bits 64–79 up to /64: §3.2, §3.5) is adjusted so the one's-complement sum of
// the address is unchanged, so no TCP/UDP/ICMPv6 checksum needs touching — whatever the
// protocol, fragments included. An address whose adjustment word is 0xFFFF cannot be mapped
// (§3.5: the packet is dropped); a result of 0xFFFF is written as 0x0000 (the same value in
// one's complement). Pure. Depends on packet (ipv6InPrefix).
import { ipv6InPrefix } from '../packet/index.ts';

export const NPT_MAX_PREFIX = 64;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

/** The one's-complement sum of the address's eight words, less the word at `skip` (byte offset within it, or -1). */
function sum(b: Uint8Array, off: number, skip: number): number {
  let s = 0;
  for (let i = 0; i < 16; i += 2) if (i !== skip) s += u16(b, off + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export class Nptv6 {
  /** Byte offset, within an address, of the word that keeps the checksum. */
  private readonly adjust: number;

  constructor(readonly internal: Uint8Array, readonly external: Uint8Array, readonly length: number) {
    if (length < 1 || length > NPT_MAX_PREFIX) throw new RangeError(`NPTv6 prefix length ${length} (1–${NPT_MAX_PREFIX})`);
    this.adjust = length <= 48 ? 6 : 8;
  }

  isInternal(b: Uint8Array, off: number): boolean { return ipv6InPrefix(b, off, this.internal, this.length); }
  isExternal(b: Uint8Array, off: number): boolean { return ipv6InPrefix(b, off, this.external, this.length); }

  /** The internal address at b[off] rewritten into the external prefix, in place; false: it cannot be (left as it was). */
  outbound(b: Uint8Array, off: number): boolean { return this.map(b, off, this.external); }
  /** The external address at b[off] rewritten back into the internal prefix, in place; false: it cannot be. */
  inbound(b: Uint8Array, off: number): boolean { return this.map(b, off, this.internal); }

  private map(b: Uint8Array, off: number, to: Uint8Array): boolean {
    const at = off + this.adjust;
    if (u16(b, at) === 0xffff) return false;
    const before = sum(b, off, -1);
    let bits = this.length;
    for (let i = 0; bits > 0; i++, bits -= 8) {
      const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      b[off + i] = (b[off + i]! & ~m) | (to[i]! & m);
    }
    // The word that makes the sum what it was: before − (the rest, now), in one's complement.
    let w = before + (~sum(b, off, this.adjust) & 0xffff);
    while (w > 0xffff) w = (w & 0xffff) + (w >>> 16);
    if (w === 0xffff) w = 0;
    b[at] = w >>> 8; b[at + 1] = w & 0xff;
    return true;
  }
}
