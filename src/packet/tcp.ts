// TCP (RFC 9293) header view: ports, sequence numbers, flags, options; checksum with
// the IPv4/IPv6 pseudo-header. Depends on bytes, result.
import { u16, u32, put16, put32, l4Checksum } from './bytes.ts';
import { type Parsed, malformed } from './result.ts';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export interface TcpHeader {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly headerLength: number;
  /** The 8 flag bits CWR..FIN. */
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urgent: number;
  readonly optionsOffset: number;
  readonly optionsLength: number;
  readonly payloadOffset: number;
  readonly payloadLength: number;
}

/** `avail`: bytes of the segment (IP payload) from `off`. */
export function parseTcp(b: Uint8Array, off: number, avail = b.length - off): Parsed<TcpHeader> {
  if (avail < 20 || b.length - off < 20) return malformed('truncated-tcp', 'tcp', off);
  const hl = (b[off + 12]! >>> 4) * 4;
  if (hl < 20 || hl > avail) return malformed('bad-tcp-data-offset', 'tcp', off + 12);
  return {
    ok: true, srcPort: u16(b, off), dstPort: u16(b, off + 2), seq: u32(b, off + 4), ack: u32(b, off + 8),
    headerLength: hl, flags: b[off + 13]!, window: u16(b, off + 14), checksum: u16(b, off + 16), urgent: u16(b, off + 18),
    optionsOffset: off + 20, optionsLength: hl - 20, payloadOffset: off + hl, payloadLength: avail - hl,
  };
}

/** `len`: segment length (IP payload length). */
export function tcpChecksumOk(b: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array): boolean {
  return l4Checksum(b, off, len, src, dst, 6) === 0;
}

export interface TcpFields {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq?: number;
  readonly ack?: number;
  readonly flags: number;
  readonly window?: number;
  readonly urgent?: number;
  /** Raw option bytes; padded with zeros (end-of-options) to a multiple of 4. */
  readonly options?: Uint8Array;
  readonly payload?: Uint8Array;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
}

export function buildTcp(f: TcpFields): Uint8Array {
  const optLen = f.options ? (f.options.length + 3) & ~3 : 0;
  const hl = 20 + optLen;
  const payload = f.payload ?? new Uint8Array(0);
  const out = new Uint8Array(hl + payload.length);
  put16(out, 0, f.srcPort);
  put16(out, 2, f.dstPort);
  put32(out, 4, f.seq ?? 0);
  put32(out, 8, f.ack ?? 0);
  out[12] = (hl / 4) << 4;
  out[13] = f.flags;
  put16(out, 14, f.window ?? 65535);
  put16(out, 18, f.urgent ?? 0);
  if (f.options) out.set(f.options, 20);
  out.set(payload, hl);
  put16(out, 16, l4Checksum(out, 0, out.length, f.src, f.dst, 6));
  return out;
}
