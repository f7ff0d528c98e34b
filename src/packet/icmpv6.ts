// ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861): Router Solicitation and
// Advertisement, Neighbor Solicitation and Advertisement, Redirect, with options
// (source/target link-layer address, prefix information, MTU, redirected header);
// echo; checksum with the IPv6 pseudo-header. Depends on bytes, address, result.
import { u16, u32, put16, put32, l4Checksum } from './bytes.ts';
import { macToNumber } from './address.ts';
import { type Parsed, malformed } from './result.ts';

export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
/** Destination Unreachable codes (RFC 4443 §3.1). */
export const ICMPV6_NO_ROUTE = 0;
export const ICMPV6_ADDRESS_UNREACHABLE = 3;
/** RFC 4443 §2.4(c): an error message is at most the IPv6 minimum MTU. */
export const ICMPV6_ERROR_MAX = 1280;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ND_ROUTER_SOLICIT = 133;
export const ND_ROUTER_ADVERT = 134;
export const ND_NEIGHBOR_SOLICIT = 135;
export const ND_NEIGHBOR_ADVERT = 136;
export const ND_REDIRECT = 137;

export const ND_OPT_SOURCE_LINKADDR = 1;
export const ND_OPT_TARGET_LINKADDR = 2;
export const ND_OPT_PREFIX_INFORMATION = 3;
export const ND_OPT_REDIRECTED_HEADER = 4;
export const ND_OPT_MTU = 5;

export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;
export const RA_FLAG_MANAGED = 0x80;
export const RA_FLAG_OTHER = 0x40;

/** Offset of the options from the start of an ND message, or -1 when `type` is not ND. */
export function ndOptionsStart(type: number): number {
  switch (type) {
    case ND_ROUTER_SOLICIT: return 8;
    case ND_ROUTER_ADVERT: return 16;
    case ND_NEIGHBOR_SOLICIT: case ND_NEIGHBOR_ADVERT: return 24;
    case ND_REDIRECT: return 40;
    default: return -1;
  }
}

export function isNdType(type: number): boolean {
  return type >= ND_ROUTER_SOLICIT && type <= ND_REDIRECT;
}

export interface PrefixInformation {
  readonly prefixLength: number;
  readonly onLink: boolean;
  readonly autonomous: boolean;
  readonly validLifetime: number;
  readonly preferredLifetime: number;
  /** Offset of the 16-byte prefix in the buffer. */
  readonly prefixOffset: number;
}

export interface Icmpv6Message {
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** Echo id/seq, or the raw 32 bits after the checksum for other types. */
  readonly word: number;
  /** NS/NA/Redirect target address offset; -1 otherwise. */
  readonly targetOffset: number;
  /** Redirect destination address offset; -1 otherwise. */
  readonly destinationOffset: number;
  /** Source / target link-layer address options as MAC numbers; -1 when absent. */
  readonly sourceLinkAddr: number;
  readonly targetLinkAddr: number;
  /** RA fields (0 for other types). */
  readonly curHopLimit: number;
  readonly raFlags: number;
  readonly routerLifetime: number;
  readonly reachableTime: number;
  readonly retransTimer: number;
  /** NA flags byte (R 0x80, S 0x40, O 0x20). */
  readonly naFlags: number;
  readonly mtu: number;
  readonly prefixes: readonly PrefixInformation[];
  readonly dataOffset: number;
}

/** Parses an ICMPv6 message of `len` bytes at `off`; ND messages have their options walked. */
export function parseIcmpv6(b: Uint8Array, off: number, len = b.length - off): Parsed<Icmpv6Message> {
  if (len < 8 || b.length - off < len) return malformed('truncated-icmpv6', 'icmpv6', off);
  const type = b[off]!;
  const optStart = ndOptionsStart(type);
  if (optStart > len) return malformed('truncated-icmpv6', 'icmpv6', off);
  let sll = -1, tll = -1, mtu = -1;
  const prefixes: PrefixInformation[] = [];
  if (optStart > 0) {
    const end = off + len;
    for (let p = off + optStart; p < end;) {
      if (end - p < 2) return malformed('bad-nd-option', 'icmpv6', p);
      const olen = b[p + 1]! * 8;
      if (olen === 0 || end - p < olen) return malformed('bad-nd-option', 'icmpv6', p);
      const ot = b[p]!;
      if ((ot === ND_OPT_SOURCE_LINKADDR || ot === ND_OPT_TARGET_LINKADDR) && olen >= 8) {
        // The first option of each kind counts (as in the classifier).
        if (ot === ND_OPT_SOURCE_LINKADDR) { if (sll < 0) sll = macToNumber(b, p + 2); } else if (tll < 0) tll = macToNumber(b, p + 2);
      } else if (ot === ND_OPT_MTU && olen >= 8 && mtu < 0) {
        mtu = u32(b, p + 4);
      } else if (ot === ND_OPT_PREFIX_INFORMATION && olen === 32) { // other lengths: ignored, like unknown options
        prefixes.push({
          prefixLength: b[p + 2]!, onLink: (b[p + 3]! & 0x80) !== 0, autonomous: (b[p + 3]! & 0x40) !== 0,
          validLifetime: u32(b, p + 4), preferredLifetime: u32(b, p + 8), prefixOffset: p + 16,
        });
      }
      p += olen;
    }
  }
  const isRa = type === ND_ROUTER_ADVERT;
  const hasTarget = type === ND_NEIGHBOR_SOLICIT || type === ND_NEIGHBOR_ADVERT || type === ND_REDIRECT;
  return {
    ok: true, type, code: b[off + 1]!, checksum: u16(b, off + 2), word: u32(b, off + 4),
    targetOffset: hasTarget ? off + 8 : -1, destinationOffset: type === ND_REDIRECT ? off + 24 : -1,
    sourceLinkAddr: sll, targetLinkAddr: tll,
    curHopLimit: isRa ? b[off + 4]! : 0, raFlags: isRa ? b[off + 5]! : 0, routerLifetime: isRa ? u16(b, off + 6) : 0,
    reachableTime: isRa ? u32(b, off + 8) : 0, retransTimer: isRa ? u32(b, off + 12) : 0,
    naFlags: type === ND_NEIGHBOR_ADVERT ? b[off + 4]! : 0, mtu, prefixes,
    dataOffset: optStart > 0 ? off + optStart : off + 8,
  };
}

export function icmpv6ChecksumOk(b: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array): boolean {
  return l4Checksum(b, off, len, src, dst, 58) === 0;
}

/** Computes and stores the checksum of a whole ICMPv6 message in place; returns it. */
export function setIcmpv6Checksum(msg: Uint8Array, src: Uint8Array, dst: Uint8Array): Uint8Array {
  put16(msg, 2, 0);
  put16(msg, 2, l4Checksum(msg, 0, msg.length, src, dst, 58));
  return msg;
}

// ---- ND options ----

export type NdOption =
  | { readonly type: typeof ND_OPT_SOURCE_LINKADDR | typeof ND_OPT_TARGET_LINKADDR; readonly mac: Uint8Array }
  | { readonly type: typeof ND_OPT_MTU; readonly mtu: number }
  | { readonly type: typeof ND_OPT_PREFIX_INFORMATION; readonly prefix: Uint8Array; readonly prefixLength: number;
      readonly onLink?: boolean; readonly autonomous?: boolean; readonly validLifetime?: number; readonly preferredLifetime?: number }
  | { readonly type: typeof ND_OPT_REDIRECTED_HEADER; readonly packet: Uint8Array };

export function encodeNdOption(o: NdOption): Uint8Array {
  switch (o.type) {
    case ND_OPT_SOURCE_LINKADDR: case ND_OPT_TARGET_LINKADDR: {
      const out = new Uint8Array(8); out[0] = o.type; out[1] = 1; out.set(o.mac.subarray(0, 6), 2); return out;
    }
    case ND_OPT_MTU: {
      const out = new Uint8Array(8); out[0] = o.type; out[1] = 1; put32(out, 4, o.mtu); return out;
    }
    case ND_OPT_PREFIX_INFORMATION: {
      const out = new Uint8Array(32); out[0] = o.type; out[1] = 4; out[2] = o.prefixLength;
      out[3] = (o.onLink ?? true ? 0x80 : 0) | (o.autonomous ?? true ? 0x40 : 0);
      put32(out, 4, o.validLifetime ?? 2592000); put32(out, 8, o.preferredLifetime ?? 604800);
      out.set(o.prefix.subarray(0, 16), 16); return out;
    }
    case ND_OPT_REDIRECTED_HEADER: {
      const len = (8 + o.packet.length + 7) & ~7;
      const out = new Uint8Array(len); out[0] = o.type; out[1] = len / 8; out.set(o.packet, 8); return out;
    }
  }
}

function message(type: number, fixed: Uint8Array, options: readonly NdOption[] | undefined): Uint8Array {
  const opts = (options ?? []).map(encodeNdOption);
  let n = 4 + fixed.length;
  for (const o of opts) n += o.length;
  const out = new Uint8Array(n);
  out[0] = type;
  out.set(fixed, 4);
  let p = 4 + fixed.length;
  for (const o of opts) { out.set(o, p); p += o.length; }
  return out;
}

// Builders return the ICMPv6 message with a zero checksum: call setIcmpv6Checksum (or
// buildIcmpv6Packet) once the IPv6 addresses are known.

export function buildRouterSolicitation(f: { options?: readonly NdOption[] }): Uint8Array {
  return message(ND_ROUTER_SOLICIT, new Uint8Array(4), f.options);
}

export function buildRouterAdvertisement(f: {
  curHopLimit?: number; flags?: number; routerLifetime?: number; reachableTime?: number; retransTimer?: number;
  options?: readonly NdOption[];
}): Uint8Array {
  const fixed = new Uint8Array(12);
  fixed[0] = f.curHopLimit ?? 64; fixed[1] = f.flags ?? 0; put16(fixed, 2, f.routerLifetime ?? 1800);
  put32(fixed, 4, f.reachableTime ?? 0); put32(fixed, 8, f.retransTimer ?? 0);
  return message(ND_ROUTER_ADVERT, fixed, f.options);
}

export function buildNeighborSolicitation(f: { target: Uint8Array; options?: readonly NdOption[] }): Uint8Array {
  const fixed = new Uint8Array(20);
  fixed.set(f.target.subarray(0, 16), 4);
  return message(ND_NEIGHBOR_SOLICIT, fixed, f.options);
}

export function buildNeighborAdvertisement(f: { target: Uint8Array; flags?: number; options?: readonly NdOption[] }): Uint8Array {
  const fixed = new Uint8Array(20);
  fixed[0] = f.flags ?? (NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
  fixed.set(f.target.subarray(0, 16), 4);
  return message(ND_NEIGHBOR_ADVERT, fixed, f.options);
}

export function buildRedirect(f: { target: Uint8Array; destination: Uint8Array; options?: readonly NdOption[] }): Uint8Array {
  const fixed = new Uint8Array(36);
  fixed.set(f.target.subarray(0, 16), 4);
  fixed.set(f.destination.subarray(0, 16), 20);
  return message(ND_REDIRECT, fixed, f.options);
}

export function buildIcmpv6Echo(f: { type: typeof ICMPV6_ECHO_REQUEST | typeof ICMPV6_ECHO_REPLY; id: number; seq: number; data?: Uint8Array }): Uint8Array {
  const data = f.data ?? new Uint8Array(0);
  const out = new Uint8Array(8 + data.length);
  out[0] = f.type; put16(out, 4, f.id); put16(out, 6, f.seq); out.set(data, 8);
  return out;
}

/** Error messages are types 0–127 (RFC 4443 §2.1): never answered with another error. */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

/**
 * An ICMPv6 error message (RFC 4443 §3): type, code, the 32-bit word (Packet Too Big's MTU,
 * Parameter Problem's pointer, else 0) and as much of the invoking packet (from its IPv6
 * header) as keeps the whole IPv6 packet within 1280 bytes. Checksum zero, as the builders above.
 */
export function buildIcmpv6Error(f: { type: number; code: number; word?: number; invoking: Uint8Array }): Uint8Array {
  const quoted = f.invoking.subarray(0, ICMPV6_ERROR_MAX - 40 - 8);
  const out = new Uint8Array(8 + quoted.length);
  out[0] = f.type; out[1] = f.code; put32(out, 4, f.word ?? 0); out.set(quoted, 8);
  return out;
}
