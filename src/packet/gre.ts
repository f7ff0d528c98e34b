// GRE (RFC 2784 with the RFC 2890 key and sequence extensions), NVGRE key helpers
// (RFC 7637: protocol 0x6558, key = VSID << 8 | FlowID) and GRE-in-UDP (RFC 8086,
// UDP port 4754). Depends on bytes, udp, result.
import { u16, u32, put16, put32, internetChecksum } from './bytes.ts';
import { buildUdp, parseUdp, type UdpHeader } from './udp.ts';
import { type Parsed, malformed } from './result.ts';

export const GRE_FLAG_CHECKSUM = 0x8000;
export const GRE_FLAG_KEY = 0x2000;
export const GRE_FLAG_SEQUENCE = 0x1000;
export const GRE_UDP_PORT = 4754;
export const NVGRE_PROTOCOL = 0x6558;
export const VSID_MIN = 4096;
export const VSID_MAX = 0xff_fffe;

export interface GreHeader {
  readonly checksumPresent: boolean;
  readonly keyPresent: boolean;
  readonly sequencePresent: boolean;
  readonly version: number;
  readonly protocol: number;
  /** -1 when the field is absent. */
  readonly checksum: number;
  readonly key: number;
  readonly sequence: number;
  readonly headerLength: number;
  readonly payloadOffset: number;
}

export function parseGre(b: Uint8Array, off: number, avail = b.length - off): Parsed<GreHeader> {
  const have = Math.min(avail, b.length - off);
  if (have < 4) return malformed('truncated-gre', 'gre', off);
  const fv = u16(b, off);
  const version = fv & 7;
  if (version !== 0) return malformed('unsupported-gre-version', 'gre', off);
  const c = (fv & GRE_FLAG_CHECKSUM) !== 0, k = (fv & GRE_FLAG_KEY) !== 0, s = (fv & GRE_FLAG_SEQUENCE) !== 0;
  const hl = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
  if (have < hl) return malformed('truncated-gre', 'gre', off);
  let p = off + 4;
  const checksum = c ? u16(b, p) : -1; if (c) p += 4;
  const key = k ? u32(b, p) : -1; if (k) p += 4;
  const sequence = s ? u32(b, p) : -1;
  return { ok: true, checksumPresent: c, keyPresent: k, sequencePresent: s, version, protocol: u16(b, off + 2), checksum, key, sequence, headerLength: hl, payloadOffset: off + hl };
}

export interface GreFields {
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly key?: number;
  readonly sequence?: number;
  /** Adds the optional checksum over header and payload. */
  readonly checksum?: boolean;
}

export function buildGre(f: GreFields): Uint8Array {
  const c = f.checksum === true, k = f.key !== undefined, s = f.sequence !== undefined;
  const hl = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
  const out = new Uint8Array(hl + f.payload.length);
  put16(out, 0, (c ? GRE_FLAG_CHECKSUM : 0) | (k ? GRE_FLAG_KEY : 0) | (s ? GRE_FLAG_SEQUENCE : 0));
  put16(out, 2, f.protocol);
  let p = 4;
  const csumAt = p; if (c) p += 4;
  if (k) { put32(out, p, f.key!); p += 4; }
  if (s) { put32(out, p, f.sequence!); p += 4; }
  out.set(f.payload, hl);
  if (c) put16(out, csumAt, internetChecksum(out, 0, out.length));
  return out;
}

/** NVGRE key for a virtual subnet and a flow (FlowID 0–255). */
export function nvgreKey(vsid: number, flowId = 0): number {
  return ((vsid & 0xff_ffff) * 256 + (flowId & 0xff)) >>> 0;
}

export function nvgreVsid(key: number): number {
  return key >>> 8;
}

export function nvgreFlowId(key: number): number {
  return key & 0xff;
}

/** An NVGRE packet: GRE with the key set, protocol 0x6558, carrying an inner Ethernet frame. */
export function buildNvgre(vsid: number, innerFrame: Uint8Array, flowId = 0): Uint8Array {
  return buildGre({ protocol: NVGRE_PROTOCOL, key: nvgreKey(vsid, flowId), payload: innerFrame });
}

/** GRE-in-UDP (RFC 8086): a UDP datagram to port 4754 whose payload is a GRE header and payload. */
export function buildGreInUdp(f: GreFields & { srcPort: number; src: Uint8Array; dst: Uint8Array }): Uint8Array {
  return buildUdp({ srcPort: f.srcPort, dstPort: GRE_UDP_PORT, src: f.src, dst: f.dst, payload: buildGre(f) });
}

/** Parses a UDP datagram at `off` (IP payload of `avail` bytes) to port 4754 and the GRE header it carries. */
export function parseGreInUdp(b: Uint8Array, off: number, avail = b.length - off): Parsed<{ udp: UdpHeader; gre: GreHeader }> {
  const u = parseUdp(b, off, avail);
  if (!u.ok) return u;
  if (u.dstPort !== GRE_UDP_PORT) return malformed('not-gre-in-udp', 'udp', off + 2);
  const g = parseGre(b, u.payloadOffset, u.payloadLength);
  if (!g.ok) return g;
  return { ok: true, udp: u, gre: g };
}
