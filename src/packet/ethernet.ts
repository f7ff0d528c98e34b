// Ethernet II with an optional 802.1Q tag: parse, build, push/pop the tag. QinQ (an
// 802.1ad S-tag, or a second C-tag) is refused: Hyper-V's switch carries one tag.
// Depends on bytes, address, result.
import { u16, put16 } from './bytes.ts';
import { macToNumber } from './address.ts';
import { type Parsed, malformed } from './result.ts';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_IPV6 = 0x86dd;
/** Transparent Ethernet bridging: the GRE protocol type of NVGRE. */
export const ETHERTYPE_TEB = 0x6558;

export const ETHERNET_HEADER_LENGTH = 14;
export const VLAN_TAG_LENGTH = 4;

export interface VlanTag {
  /** VLAN ID, 0–4095 (0: priority tag only). */
  readonly vid: number;
  /** Priority code point, 0–7. */
  readonly pcp: number;
  /** Drop eligible indicator. */
  readonly dei: boolean;
}

export interface EthernetHeader {
  readonly dst: number;
  readonly src: number;
  readonly vlan: VlanTag | null;
  readonly ethertype: number;
  /** Offset of the first byte after the (tagged) header. */
  readonly payloadOffset: number;
}

export function parseEthernet(b: Uint8Array): Parsed<EthernetHeader> {
  if (b.length < ETHERNET_HEADER_LENGTH) return malformed('truncated-ethernet', 'ethernet', 0);
  let type = u16(b, 12);
  let vlan: VlanTag | null = null;
  let off = 14;
  if (type === ETHERTYPE_QINQ) return malformed('qinq-unsupported', 'vlan', 12);
  if (type === ETHERTYPE_VLAN) {
    if (b.length < 18) return malformed('truncated-vlan', 'vlan', 14);
    const tci = u16(b, 14);
    vlan = { vid: tci & 0xfff, pcp: tci >>> 13, dei: (tci & 0x1000) !== 0 };
    type = u16(b, 16);
    off = 18;
    if (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) return malformed('qinq-unsupported', 'vlan', 16);
  }
  return { ok: true, dst: macToNumber(b, 0), src: macToNumber(b, 6), vlan, ethertype: type, payloadOffset: off };
}

export interface EthernetFields {
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly ethertype: number;
  readonly vlan?: { readonly vid: number; readonly pcp?: number; readonly dei?: boolean };
  readonly payload: Uint8Array;
}

function tci(t: NonNullable<EthernetFields['vlan']>): number {
  return ((t.pcp ?? 0) << 13) | (t.dei ? 0x1000 : 0) | (t.vid & 0xfff);
}

export function buildEthernet(f: EthernetFields): Uint8Array {
  const hl = f.vlan ? 18 : 14;
  const out = new Uint8Array(hl + f.payload.length);
  out.set(f.dst.subarray(0, 6), 0);
  out.set(f.src.subarray(0, 6), 6);
  if (f.vlan) { put16(out, 12, ETHERTYPE_VLAN); put16(out, 14, tci(f.vlan)); }
  put16(out, hl - 2, f.ethertype);
  out.set(f.payload, hl);
  return out;
}

/** A new frame with an 802.1Q tag inserted after the MACs (the frame must be untagged). */
export function pushVlan(frame: Uint8Array, tag: { vid: number; pcp?: number; dei?: boolean }): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, 12), 0);
  put16(out, 12, ETHERTYPE_VLAN);
  put16(out, 14, tci(tag));
  out.set(frame.subarray(12), 16);
  return out;
}

/**
 * Removes the 802.1Q tag in place: the MACs move 4 bytes forward and the returned view
 * starts at the new frame (no payload copy). Returns the frame unchanged when untagged
 * or too short to hold a tag.
 */
export function popVlan(frame: Uint8Array): Uint8Array {
  if (frame.length < 18 || u16(frame, 12) !== ETHERTYPE_VLAN) return frame;
  frame.copyWithin(4, 0, 12);
  return frame.subarray(4);
}

/** Rewrites the VLAN ID of a tagged frame in place; false when the frame is untagged. */
export function setVlanId(frame: Uint8Array, vid: number): boolean {
  if (frame.length < 18 || u16(frame, 12) !== ETHERTYPE_VLAN) return false;
  put16(frame, 14, (u16(frame, 14) & 0xf000) | (vid & 0xfff));
  return true;
}
