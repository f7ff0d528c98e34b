// UDP (RFC 768) with the IPv4/IPv6 pseudo-header checksum. Addresses for the
// pseudo-header are 4 or 16 bytes. Depends on bytes, result.
import { u16, put16, l4Checksum } from './bytes.ts';
import { type Parsed, malformed } from './result.ts';

export const UDP_HEADER_LENGTH = 8;

export interface UdpHeader {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly length: number;
  readonly checksum: number;
  readonly payloadOffset: number;
  readonly payloadLength: number;
}

/** `avail`: bytes of the IP payload from `off` (the UDP length must fit in it). */
export function parseUdp(b: Uint8Array, off: number, avail = b.length - off): Parsed<UdpHeader> {
  if (avail < 8 || b.length - off < 8) return malformed('truncated-udp', 'udp', off);
  const len = u16(b, off + 4);
  if (len < 8 || len > avail) return malformed('bad-udp-length', 'udp', off + 4);
  return {
    ok: true, srcPort: u16(b, off), dstPort: u16(b, off + 2), length: len, checksum: u16(b, off + 6),
    payloadOffset: off + 8, payloadLength: len - 8,
  };
}

/** True when the datagram's checksum is right (or absent, 0, over IPv4). */
export function udpChecksumOk(b: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array): boolean {
  if (src.length === 4 && u16(b, off + 6) === 0) return true;
  return l4Checksum(b, off, u16(b, off + 4), src, dst, 17) === 0;
}

export interface UdpFields {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
  /** Pseudo-header addresses (4 or 16 bytes). */
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
}

export function buildUdp(f: UdpFields): Uint8Array {
  const out = new Uint8Array(8 + f.payload.length);
  put16(out, 0, f.srcPort);
  put16(out, 2, f.dstPort);
  put16(out, 4, out.length);
  out.set(f.payload, 8);
  const c = l4Checksum(out, 0, out.length, f.src, f.dst, 17);
  put16(out, 6, c === 0 ? 0xffff : c);
  return out;
}
