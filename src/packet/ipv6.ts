// IPv6 (RFC 8200): fixed header view, a bounded walk of extension headers to the
// upper-layer protocol (fragment header noted), builder. Depends on bytes, result.
import { u16, u32, put16, put32 } from './bytes.ts';
import { type Parsed, malformed } from './result.ts';

export const IPV6_HOP_BY_HOP = 0;
export const IPV6_ROUTING = 43;
export const IPV6_FRAGMENT = 44;
export const IPV6_ESP = 50;
export const IPV6_AH = 51;
export const IPV6_NO_NEXT = 59;
export const IPV6_DEST_OPTS = 60;
/** Extension headers walked at most; more is refused (a cheap loop guard). */
export const IPV6_MAX_EXTENSIONS = 8;

export interface Ipv6Header {
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payloadLength: number;
  /** The Next Header field of the fixed header. */
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly srcOffset: number;
  readonly dstOffset: number;
  /** Upper-layer protocol after the extension headers (59: none; 50: ESP, not walked further). */
  readonly protocol: number;
  /** Offset of the upper-layer header. */
  readonly upperOffset: number;
  /** Bytes from upperOffset to the end of the payload. */
  readonly upperLength: number;
  /** Fragment header fields when present. */
  readonly fragment: { readonly offset: number; readonly more: boolean; readonly id: number } | null;
}

export function isIpv6Extension(nh: number): boolean {
  return nh === IPV6_HOP_BY_HOP || nh === IPV6_ROUTING || nh === IPV6_FRAGMENT || nh === IPV6_DEST_OPTS || nh === IPV6_AH;
}

export function parseIpv6(b: Uint8Array, off: number): Parsed<Ipv6Header> {
  if (b.length - off < 40) return malformed('truncated-ipv6', 'ipv6', off);
  const w0 = u32(b, off);
  if (w0 >>> 28 !== 6) return malformed('bad-ipv6-version', 'ipv6', off);
  const plen = u16(b, off + 4);
  if (b.length - off - 40 < plen) return malformed('bad-ipv6-payload-length', 'ipv6', off + 4);
  const end = off + 40 + plen;
  let nh = b[off + 6]!;
  let p = off + 40;
  let fragment: Ipv6Header['fragment'] = null;
  let n = 0;
  while (isIpv6Extension(nh)) {
    if (++n > IPV6_MAX_EXTENSIONS) return malformed('too-many-ipv6-extensions', 'ipv6', p);
    if (end - p < 8) return malformed('truncated-ipv6-extension', 'ipv6', p);
    let len: number;
    if (nh === IPV6_FRAGMENT) {
      const fo = u16(b, p + 2);
      fragment = { offset: fo & 0xfff8, more: (fo & 1) === 1, id: u32(b, p + 4) };
      len = 8;
    } else if (nh === IPV6_AH) {
      len = (b[p + 1]! + 2) * 4;
    } else {
      len = (b[p + 1]! + 1) * 8;
    }
    if (end - p < len) return malformed('truncated-ipv6-extension', 'ipv6', p);
    nh = b[p]!;
    p += len;
    if (fragment !== null && fragment.offset !== 0) break; // later fragments carry no upper header
  }
  return {
    ok: true, trafficClass: (w0 >>> 20) & 0xff, flowLabel: w0 & 0xfffff, payloadLength: plen,
    nextHeader: b[off + 6]!, hopLimit: b[off + 7]!, srcOffset: off + 8, dstOffset: off + 24,
    protocol: nh, upperOffset: p, upperLength: end - p, fragment,
  };
}

export interface Ipv6Extension {
  /** Header type: 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options. */
  readonly type: number;
  /** Body after the next-header byte (and the length byte, except for a fragment header): 6 + 8n bytes. */
  readonly data: Uint8Array;
}

export interface Ipv6Fields {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** Upper-layer protocol. */
  readonly nextHeader: number;
  readonly payload: Uint8Array;
  readonly hopLimit?: number;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
  readonly extensions?: readonly Ipv6Extension[];
}

export function buildIpv6(f: Ipv6Fields): Uint8Array {
  const exts = f.extensions ?? [];
  let extLen = 0;
  for (const e of exts) extLen += 2 + e.data.length;
  const out = new Uint8Array(40 + extLen + f.payload.length);
  put32(out, 0, ((6 << 28) | ((f.trafficClass ?? 0) << 20) | ((f.flowLabel ?? 0) & 0xfffff)) >>> 0);
  put16(out, 4, extLen + f.payload.length);
  out[6] = exts[0]?.type ?? f.nextHeader;
  out[7] = f.hopLimit ?? 64;
  out.set(f.src.subarray(0, 16), 8);
  out.set(f.dst.subarray(0, 16), 24);
  let p = 40;
  exts.forEach((e, i) => {
    const len = 2 + e.data.length;
    out[p] = exts[i + 1]?.type ?? f.nextHeader;
    out[p + 1] = e.type === IPV6_FRAGMENT ? 0 : len / 8 - 1;
    out.set(e.data, p + 2);
    p += len;
  });
  out.set(f.payload, p);
  return out;
}
