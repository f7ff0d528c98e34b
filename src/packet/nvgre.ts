// NVGRE (RFC 7637) frames as they cross the provider network: outer Ethernet, outer IPv4
// (protocol 47, DF set, never fragmented: the provider MTU must hold the whole frame), GRE with
// only the K bit (C, R, S, reserved bits and version all zero), protocol 0x6558 (Transparent
// Ethernet Bridging), key = VSID << 8 | FlowID, and the customer's Ethernet frame. Both
// directions check every field and answer with a typed result, never a throw: the switch
// counts a refusal by its reason. Outer IPv6 is not handled yet (decode says not-nvgre).
// Depends on address, bytes, ethernet, ipv4, gre, result.
import { macToNumber } from './address.ts';
import { internetChecksum, put16, put32, u16, u32 } from './bytes.ts';
import { ETHERNET_HEADER_LENGTH, ETHERTYPE_IPV4, ETHERTYPE_VLAN, parseEthernet, type VlanTag } from './ethernet.ts';
import { GRE_FLAG_KEY, NVGRE_PROTOCOL, VSID_MAX, VSID_MIN, nvgreKey } from './gre.ts';
import { IPPROTO_GRE, IPV4_FLAG_DF, IPV4_FLAG_MF, ipv4ChecksumOk, parseIpv4 } from './ipv4.ts';
import { malformed, type Parsed } from './result.ts';

/** GRE base header + key: the only NVGRE header. */
export const NVGRE_HEADER_LENGTH = 8;
/** Outer Ethernet + IPv4 + GRE: what encapsulation adds to a customer frame (4 more with an outer VLAN tag). */
export const NVGRE_OVERHEAD = ETHERNET_HEADER_LENGTH + 20 + NVGRE_HEADER_LENGTH;

export interface NvgreFields {
  /** Outer MACs: this host's uplink and the next hop toward the destination PA. */
  readonly outerDst: Uint8Array;
  readonly outerSrc: Uint8Array;
  readonly outerVlan?: number;
  /** Provider addresses (IPv4, unsigned 32-bit). */
  readonly providerSrc: number;
  readonly providerDst: number;
  readonly vsid: number;
  /** 0–255: spreads flows over ECMP paths; 0 when unused (RFC 7637). */
  readonly flowId?: number;
  /** The customer's Ethernet frame. */
  readonly inner: Uint8Array;
  readonly ttl?: number;
  readonly dscp?: number;
  /** The provider network's IP MTU: the outer IPv4 packet must fit (DF is set). */
  readonly mtu?: number;
}

/** Why a frame was not encapsulated: the field at fault. */
export type NvgreRefusal =
  | 'bad-vsid' | 'bad-flow-id' | 'bad-mac' | 'bad-vlan' | 'bad-ttl' | 'bad-dscp' | 'bad-provider-address'
  | 'inner-too-short' | 'bad-mtu' | 'too-big';

export type Encoded = { readonly ok: true; readonly frame: Uint8Array } | { readonly ok: false; readonly refused: NvgreRefusal; readonly detail: string };

const u32ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
const unicastV4 = (a: number) => u32ok(a) && a !== 0 && a >>> 28 < 0xe;
const refuse = (refused: NvgreRefusal, detail: string): Encoded => ({ ok: false, refused, detail });

export function encodeNvgre(f: NvgreFields): Encoded {
  const flowId = f.flowId ?? 0, ttl = f.ttl ?? 64, dscp = f.dscp ?? 0, mtu = f.mtu ?? 1500;
  if (!Number.isInteger(f.vsid) || f.vsid < VSID_MIN || f.vsid > VSID_MAX) return refuse('bad-vsid', `VSID ${f.vsid} is outside ${VSID_MIN}–${VSID_MAX}`);
  if (!Number.isInteger(flowId) || flowId < 0 || flowId > 255) return refuse('bad-flow-id', `FlowID ${flowId} is outside 0–255`);
  if (f.outerDst.length !== 6 || f.outerSrc.length !== 6) return refuse('bad-mac', 'outer MACs are 6 bytes');
  if ((f.outerSrc[0]! & 1) !== 0) return refuse('bad-mac', 'the outer source MAC is a group address');
  if (f.outerVlan !== undefined && (!Number.isInteger(f.outerVlan) || f.outerVlan < 1 || f.outerVlan > 4094)) return refuse('bad-vlan', `outer VLAN ${f.outerVlan} is outside 1–4094`);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) return refuse('bad-ttl', `TTL ${ttl} is outside 1–255`);
  if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) return refuse('bad-dscp', `DSCP ${dscp} is outside 0–63`);
  if (!unicastV4(f.providerSrc)) return refuse('bad-provider-address', `provider address ${f.providerSrc} is not an IPv4 unicast address`);
  if (!unicastV4(f.providerDst)) return refuse('bad-provider-address', `provider address ${f.providerDst} is not an IPv4 unicast address`);
  if (f.inner.length < ETHERNET_HEADER_LENGTH) return refuse('inner-too-short', `the inner frame has ${f.inner.length} bytes, less than an Ethernet header`);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) return refuse('bad-mtu', `MTU ${mtu} is outside 68–65535`);
  const ipLength = 20 + NVGRE_HEADER_LENGTH + f.inner.length;
  if (ipLength > mtu) return refuse('too-big', `${ipLength} bytes of outer IPv4 exceed the provider MTU ${mtu} (customer frames may be at most ${mtu - 20 - NVGRE_HEADER_LENGTH} bytes)`);
  // One buffer, every header byte written in place and the customer frame copied once: this
  // runs per frame on the data path (building each layer with its own builder copied the
  // frame 3×). The buffer comes from Node's pool (a slab shared by small buffers, not zeroed):
  // a fresh ArrayBuffer per frame cost more than the encoding.
  const eh = f.outerVlan === undefined ? ETHERNET_HEADER_LENGTH : ETHERNET_HEADER_LENGTH + 4;
  const slab = Buffer.allocUnsafe(eh + ipLength);
  const out = new Uint8Array(slab.buffer, slab.byteOffset, slab.length);
  out.set(f.outerDst, 0);
  out.set(f.outerSrc, 6);
  if (f.outerVlan !== undefined) { put16(out, 12, ETHERTYPE_VLAN); put16(out, 14, f.outerVlan); }
  put16(out, eh - 2, ETHERTYPE_IPV4);
  out[eh] = 0x45;
  out[eh + 1] = dscp << 2;
  put16(out, eh + 2, ipLength);
  put16(out, eh + 4, 0);
  put16(out, eh + 6, IPV4_FLAG_DF << 13);
  out[eh + 8] = ttl;
  out[eh + 9] = IPPROTO_GRE;
  put32(out, eh + 12, f.providerSrc);
  put32(out, eh + 16, f.providerDst);
  put16(out, eh + 10, 0);
  put16(out, eh + 10, internetChecksum(out, eh, 20));
  const g = eh + 20;
  put16(out, g, GRE_FLAG_KEY);
  put16(out, g + 2, NVGRE_PROTOCOL);
  put32(out, g + 4, nvgreKey(f.vsid, flowId));
  out.set(f.inner, g + NVGRE_HEADER_LENGTH);
  return { ok: true, frame: out };
}

export interface NvgreFrame {
  readonly outerDst: number;
  readonly outerSrc: number;
  readonly outerVlan: VlanTag | null;
  readonly providerSrc: number;
  readonly providerDst: number;
  readonly ttl: number;
  readonly dscp: number;
  readonly key: number;
  readonly vsid: number;
  readonly flowId: number;
  /** The customer frame: `frame.subarray(innerOffset, innerOffset + innerLength)` (outer Ethernet padding excluded). */
  readonly innerOffset: number;
  readonly innerLength: number;
  readonly innerDst: number;
  readonly innerSrc: number;
  readonly innerEthertype: number;
}

export function decodeNvgre(b: Uint8Array): Parsed<NvgreFrame> {
  const eth = parseEthernet(b);
  if (!eth.ok) return eth;
  if (eth.ethertype !== ETHERTYPE_IPV4) return malformed('not-nvgre', 'ethernet', eth.payloadOffset - 2);
  const ipOff = eth.payloadOffset;
  const ip = parseIpv4(b, ipOff);
  if (!ip.ok) return ip;
  if (ip.protocol !== IPPROTO_GRE) return malformed('not-nvgre', 'ipv4', ipOff + 9);
  if (!ipv4ChecksumOk(b, ipOff)) return malformed('bad-ipv4-checksum', 'ipv4', ipOff + 10);
  // A fragment cannot be decapsulated alone, and we do not reassemble: the sender sets DF.
  if ((ip.flags & IPV4_FLAG_MF) !== 0 || ip.fragmentOffset !== 0) return malformed('nvgre-fragment', 'ipv4', ipOff + 6);
  const g = ip.payloadOffset;
  if (ip.payloadLength < NVGRE_HEADER_LENGTH) return malformed('truncated-gre', 'gre', g);
  const fv = u16(b, g);
  if ((fv & 7) !== 0) return malformed('unsupported-gre-version', 'gre', g);
  if (fv !== GRE_FLAG_KEY) return malformed('nvgre-bad-flags', 'gre', g);
  if (u16(b, g + 2) !== NVGRE_PROTOCOL) return malformed('nvgre-bad-protocol', 'gre', g + 2);
  const key = u32(b, g + 4);
  const vsid = key >>> 8;
  if (vsid < VSID_MIN || vsid > VSID_MAX) return malformed('nvgre-reserved-vsid', 'gre', g + 4);
  const innerOffset = g + NVGRE_HEADER_LENGTH, innerLength = ip.payloadLength - NVGRE_HEADER_LENGTH;
  if (innerLength < ETHERNET_HEADER_LENGTH) return malformed('truncated-nvgre-inner', 'gre', innerOffset);
  return {
    ok: true, outerDst: eth.dst, outerSrc: eth.src, outerVlan: eth.vlan, providerSrc: ip.src, providerDst: ip.dst, ttl: ip.ttl, dscp: ip.dscp,
    key, vsid, flowId: key & 0xff, innerOffset, innerLength,
    innerDst: macToNumber(b, innerOffset), innerSrc: macToNumber(b, innerOffset + 6), innerEthertype: u16(b, innerOffset + 12),
  };
}
