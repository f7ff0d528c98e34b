// ICMPv4 (RFC 792): type/code view, echo request/reply and error builders, checksum.
// Depends on bytes, result.
import { u16, put16, put32, internetChecksum } from './bytes.ts';
import { type Parsed, malformed } from './result.ts';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
/** Destination Unreachable codes (RFC 792, RFC 1191 for fragmentation needed). */
export const ICMP_NET_UNREACHABLE = 0;
export const ICMP_HOST_UNREACHABLE = 1;
export const ICMP_FRAG_NEEDED = 4;
/** RFC 1812 §4.3.2.3: an ICMP error is at most 576 bytes of IP. */
export const ICMP_ERROR_MAX = 576;

export interface Icmpv4Header {
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** Echo identifier and sequence (meaningful for echo request/reply). */
  readonly id: number;
  readonly seq: number;
  readonly dataOffset: number;
}

export function parseIcmpv4(b: Uint8Array, off: number, avail = b.length - off): Parsed<Icmpv4Header> {
  if (avail < 8 || b.length - off < 8) return malformed('truncated-icmpv4', 'icmpv4', off);
  return { ok: true, type: b[off]!, code: b[off + 1]!, checksum: u16(b, off + 2), id: u16(b, off + 4), seq: u16(b, off + 6), dataOffset: off + 8 };
}

export function icmpv4ChecksumOk(b: Uint8Array, off: number, len: number): boolean {
  return internetChecksum(b, off, len) === 0;
}

export function buildIcmpv4Echo(f: { type: typeof ICMP_ECHO_REQUEST | typeof ICMP_ECHO_REPLY; id: number; seq: number; data?: Uint8Array }): Uint8Array {
  const data = f.data ?? new Uint8Array(0);
  const out = new Uint8Array(8 + data.length);
  out[0] = f.type;
  put16(out, 4, f.id);
  put16(out, 6, f.seq);
  out.set(data, 8);
  put16(out, 2, internetChecksum(out, 0, out.length));
  return out;
}

/**
 * An ICMPv4 error message (RFC 792): type, code, the 32-bit word after the checksum (for
 * fragmentation needed the next-hop MTU in its low 16 bits, RFC 1191) and as much of the
 * invoking packet (from its IP header) as keeps the IP packet within 576 bytes; checksum set.
 */
export function buildIcmpv4Error(f: { type: number; code: number; word?: number; invoking: Uint8Array }): Uint8Array {
  const quoted = f.invoking.subarray(0, ICMP_ERROR_MAX - 20 - 8);
  const out = new Uint8Array(8 + quoted.length);
  out[0] = f.type; out[1] = f.code; put32(out, 4, f.word ?? 0); out.set(quoted, 8);
  put16(out, 2, internetChecksum(out, 0, out.length));
  return out;
}
