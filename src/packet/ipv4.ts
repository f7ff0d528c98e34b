// IPv4 (RFC 791): header view with options and fragment fields, header checksum
// verify/compute, builder. Depends on bytes, result.
import { u16, u32, put16, put32, internetChecksum } from './bytes.ts';
import { type Parsed, malformed } from './result.ts';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;

export const IPV4_FLAG_DF = 0x2;
export const IPV4_FLAG_MF = 0x1;

export interface Ipv4Header {
  readonly headerLength: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly totalLength: number;
  readonly id: number;
  /** 3-bit flags field: DF = 0x2, MF = 0x1. */
  readonly flags: number;
  /** Fragment offset in bytes. */
  readonly fragmentOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly checksum: number;
  readonly src: number;
  readonly dst: number;
  /** Where the options start (offset + 20) and how long they are. */
  readonly optionsOffset: number;
  readonly optionsLength: number;
  readonly payloadOffset: number;
  /** From the total length field, not the buffer (Ethernet padding is excluded). */
  readonly payloadLength: number;
}

export function parseIpv4(b: Uint8Array, off: number): Parsed<Ipv4Header> {
  if (b.length - off < 20) return malformed('truncated-ipv4', 'ipv4', off);
  const vihl = b[off]!;
  if (vihl >>> 4 !== 4) return malformed('bad-ipv4-version', 'ipv4', off);
  const hl = (vihl & 0xf) * 4;
  if (hl < 20) return malformed('bad-ipv4-header-length', 'ipv4', off);
  const total = u16(b, off + 2);
  if (total < hl) return malformed('bad-ipv4-total-length', 'ipv4', off + 2);
  if (b.length - off < total) return malformed('truncated-ipv4', 'ipv4', off + 2);
  const ff = u16(b, off + 6);
  return {
    ok: true, headerLength: hl, dscp: b[off + 1]! >>> 2, ecn: b[off + 1]! & 3, totalLength: total,
    id: u16(b, off + 4), flags: ff >>> 13, fragmentOffset: (ff & 0x1fff) * 8,
    ttl: b[off + 8]!, protocol: b[off + 9]!, checksum: u16(b, off + 10),
    src: u32(b, off + 12), dst: u32(b, off + 16),
    optionsOffset: off + 20, optionsLength: hl - 20, payloadOffset: off + hl, payloadLength: total - hl,
  };
}

/** True when the header at `off` (IHL from the buffer) carries a correct checksum. */
export function ipv4ChecksumOk(b: Uint8Array, off: number): boolean {
  return internetChecksum(b, off, (b[off]! & 0xf) * 4) === 0;
}

/** Recomputes and stores the header checksum in place (e.g. after a TTL change). */
export function setIpv4Checksum(b: Uint8Array, off: number): void {
  put16(b, off + 10, 0);
  put16(b, off + 10, internetChecksum(b, off, (b[off]! & 0xf) * 4));
}

export interface Ipv4Fields {
  readonly src: number;
  readonly dst: number;
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly ttl?: number;
  readonly id?: number;
  readonly dscp?: number;
  readonly ecn?: number;
  /** DF = 0x2, MF = 0x1. Default: DF. */
  readonly flags?: number;
  /** In bytes, a multiple of 8. */
  readonly fragmentOffset?: number;
  /** Raw option bytes; padded with zeros (end-of-options) to a multiple of 4. */
  readonly options?: Uint8Array;
}

export function buildIpv4(f: Ipv4Fields): Uint8Array {
  const optLen = f.options ? (f.options.length + 3) & ~3 : 0;
  const hl = 20 + optLen;
  const out = new Uint8Array(hl + f.payload.length);
  out[0] = 0x40 | (hl / 4);
  out[1] = ((f.dscp ?? 0) << 2) | (f.ecn ?? 0);
  put16(out, 2, out.length);
  put16(out, 4, f.id ?? 0);
  put16(out, 6, ((f.flags ?? IPV4_FLAG_DF) << 13) | ((f.fragmentOffset ?? 0) / 8));
  out[8] = f.ttl ?? 64;
  out[9] = f.protocol;
  put32(out, 12, f.src);
  put32(out, 16, f.dst);
  if (f.options) out.set(f.options, 20);
  put16(out, 10, internetChecksum(out, 0, hl));
  out.set(f.payload, hl);
  return out;
}
