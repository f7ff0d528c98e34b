// NVGRE (RFC 7637) frames as they cross the provider network: outer Ethernet, outer IPv4
// (protocol 47, DF set, never fragmented: the provider MTU must hold the whole frame), GRE with
// only the K bit (C, R, S, reserved bits and version all zero), protocol 0x6558 (Transparent
// Ethernet Bridging), key = VSID << 8 | FlowID, and the customer's Ethernet frame. Both
// directions check every field and answer with a typed result, never a throw: the switch
// counts a refusal by its reason. Outer IPv6 is not handled yet (decode says not-nvgre).
// Depends on address, bytes, ethernet, ipv4, gre, result, classify (its FrameInfo, for the switch's decoder).
import { macToNumber } from './address.ts';
import { onesSum, put16, put32, u16, u32 } from './bytes.ts';
import { ETHERNET_HEADER_LENGTH, ETHERTYPE_IPV4, ETHERTYPE_VLAN, parseEthernet, type VlanTag } from './ethernet.ts';
import { GRE_FLAG_KEY, NVGRE_PROTOCOL, VSID_MAX, VSID_MIN } from './gre.ts';
import { IPPROTO_GRE, IPV4_FLAG_DF, ipv4ChecksumOk, parseIpv4 } from './ipv4.ts';
import { malformed, type DropReason, type Layer, type Parsed } from './result.ts';
import type { FrameInfo } from './classify.ts';

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
type Refused = Extract<Encoded, { ok: false }>;
const refuse = (refused: NvgreRefusal, detail: string): Refused => ({ ok: false, refused, detail });

export function encodeNvgre(f: NvgreFields): Encoded {
  const t = nvgreTemplate(f);
  return t instanceof NvgreTemplate ? t.encode(f.vsid, f.flowId ?? 0, f.inner) : t;
}

/** The per-destination part of NvgreFields: all but the VSID, FlowID and customer frame. */
export type NvgreHeaderFields = Omit<NvgreFields, 'vsid' | 'flowId' | 'inner'>;

/**
 * Where encoded frames are carved from: one large ArrayBuffer, a new one when it is full, never
 * reused (a frame may be held after its tick: a queued send, a fair queue, a capture), so the
 * collector frees each once no frame of it is left. Node's Buffer pool did the same in 8 KiB
 * slabs, with a Buffer object per frame: its allocation and collection were a third of an
 * encapsulation's CPU (cpu profile of bench/nvgre.ts's encap row).
 */
const ARENA_BYTES = 256 << 10;
let arena = new ArrayBuffer(ARENA_BYTES);
let arenaUsed = 0;

function carve(length: number): Uint8Array {
  if (length > ARENA_BYTES >> 2) return new Uint8Array(length);
  if (arenaUsed + length > ARENA_BYTES) { arena = new ArrayBuffer(ARENA_BYTES); arenaUsed = 0; }
  const out = new Uint8Array(arena, arenaUsed, length);
  arenaUsed += (length + 7) & ~7;
  return out;
}

/** A template of the headers toward one destination, or why the fields cannot make one. */
export function nvgreTemplate(f: NvgreHeaderFields): NvgreTemplate | Refused {
  const ttl = f.ttl ?? 64, dscp = f.dscp ?? 0, mtu = f.mtu ?? 1500;
  if (f.outerDst.length !== 6 || f.outerSrc.length !== 6) return refuse('bad-mac', 'outer MACs are 6 bytes');
  if ((f.outerSrc[0]! & 1) !== 0) return refuse('bad-mac', 'the outer source MAC is a group address');
  if (f.outerVlan !== undefined && (!Number.isInteger(f.outerVlan) || f.outerVlan < 1 || f.outerVlan > 4094)) return refuse('bad-vlan', `outer VLAN ${f.outerVlan} is outside 1–4094`);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) return refuse('bad-ttl', `TTL ${ttl} is outside 1–255`);
  if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) return refuse('bad-dscp', `DSCP ${dscp} is outside 0–63`);
  if (!unicastV4(f.providerSrc)) return refuse('bad-provider-address', `provider address ${f.providerSrc} is not an IPv4 unicast address`);
  if (!unicastV4(f.providerDst)) return refuse('bad-provider-address', `provider address ${f.providerDst} is not an IPv4 unicast address`);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) return refuse('bad-mtu', `MTU ${mtu} is outside 68–65535`);
  return new NvgreTemplate(f, ttl, dscp, mtu);
}

/**
 * The outer headers toward one destination, written once; `encode` copies them in front of a
 * customer frame and fills in only what changes per frame: the IPv4 total length, its
 * checksum (from the header's sum without the length, kept here) and the GRE key. The data
 * path keeps one per destination PA, so a frame's encapsulation is a buffer, two copies and
 * three stores (a whole encodeNvgre checked every field and summed the header every time).
 */
export class NvgreTemplate {
  private readonly header: Uint8Array;
  /** Offset of the IPv4 header (after the outer Ethernet header and VLAN tag). */
  private readonly ip: number;
  /** Ones' sum of the IPv4 header with total length and checksum zero. */
  private readonly partialSum: number;
  readonly mtu: number;

  constructor(f: NvgreHeaderFields, ttl: number, dscp: number, mtu: number) {
    const eh = f.outerVlan === undefined ? ETHERNET_HEADER_LENGTH : ETHERNET_HEADER_LENGTH + 4;
    const h = new Uint8Array(eh + 20 + NVGRE_HEADER_LENGTH);
    h.set(f.outerDst, 0);
    h.set(f.outerSrc, 6);
    if (f.outerVlan !== undefined) { put16(h, 12, ETHERTYPE_VLAN); put16(h, 14, f.outerVlan); }
    put16(h, eh - 2, ETHERTYPE_IPV4);
    h[eh] = 0x45;
    h[eh + 1] = dscp << 2;
    put16(h, eh + 6, IPV4_FLAG_DF << 13);
    h[eh + 8] = ttl;
    h[eh + 9] = IPPROTO_GRE;
    put32(h, eh + 12, f.providerSrc);
    put32(h, eh + 16, f.providerDst);
    put16(h, eh + 20, GRE_FLAG_KEY);
    put16(h, eh + 22, NVGRE_PROTOCOL);
    this.header = h;
    this.ip = eh;
    this.partialSum = onesSum(h, eh, 20);
    this.mtu = mtu;
  }

  /** The bytes of the encapsulated frame of a customer frame of `innerLength` bytes. */
  frameLength(innerLength: number): number { return this.header.length + innerLength; }

  /** A customer frame of `innerLength` bytes is one encodeTo takes (an Ethernet header at least, and the outer packet within the MTU). */
  fits(innerLength: number): boolean { return innerLength >= ETHERNET_HEADER_LENGTH && 20 + NVGRE_HEADER_LENGTH + innerLength <= this.mtu; }

  encode(vsid: number, flowId: number, inner: Uint8Array): Encoded {
    const r = this.encodeTo(vsid, flowId, inner);
    return typeof r === 'string' ? refuse(r, this.detail(r, vsid, flowId, inner)) : { ok: true, frame: r };
  }

  /**
   * `encode` without a result object (the switch's per-frame path): the frame, or why not. It is
   * written into `out` when given — exactly frameLength(inner.length) bytes: a slot of the
   * uplink's send batch (PortIo.lend), so the frame is copied once, there — else carved from the
   * arena.
   */
  encodeTo(vsid: number, flowId: number, inner: Uint8Array, out?: Uint8Array): Uint8Array | NvgreRefusal {
    if (!Number.isInteger(vsid) || vsid < VSID_MIN || vsid > VSID_MAX) return 'bad-vsid';
    if (!Number.isInteger(flowId) || flowId < 0 || flowId > 255) return 'bad-flow-id';
    if (inner.length < ETHERNET_HEADER_LENGTH) return 'inner-too-short';
    if (20 + NVGRE_HEADER_LENGTH + inner.length > this.mtu) return 'too-big';
    return this.write(vsid, flowId, inner, out);
  }

  /**
   * encodeTo without its checks, for a caller that made them once (a cached flow: a valid VSID,
   * a FlowID of 8 bits, and fits(inner.length) per frame). The header is copied, then only the
   * IPv4 total length, its checksum (the header's sum without them plus the length: RFC 1624's
   * update of a constant header) and the GRE key are written, then the customer frame (its one copy).
   */
  write(vsid: number, flowId: number, inner: Uint8Array, out?: Uint8Array): Uint8Array {
    // A view of the arena when nothing is lent (a fresh ArrayBuffer per frame cost more than the encoding).
    const h = this.header, eh = this.ip, ipLength = 20 + NVGRE_HEADER_LENGTH + inner.length;
    const frame = out ?? carve(h.length + inner.length);
    frame.set(h, 0);
    // Byte stores, not put16/put32/finishChecksum calls (a tenth of the cached path in the cpu
    // profile). The sum of a header of 20 bytes plus the length folds in two steps.
    let sum = this.partialSum + ipLength;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = ~((sum & 0xffff) + (sum >>> 16)) & 0xffff;
    frame[eh + 2] = ipLength >>> 8; frame[eh + 3] = ipLength & 0xff;
    frame[eh + 10] = sum >>> 8; frame[eh + 11] = sum & 0xff;
    frame[eh + 24] = vsid >>> 16; frame[eh + 25] = (vsid >>> 8) & 0xff; frame[eh + 26] = vsid & 0xff; frame[eh + 27] = flowId;
    frame.set(inner, h.length);
    return frame;
  }

  private detail(r: NvgreRefusal, vsid: number, flowId: number, inner: Uint8Array): string {
    if (r === 'bad-vsid') return `VSID ${vsid} is outside ${VSID_MIN}–${VSID_MAX}`;
    if (r === 'bad-flow-id') return `FlowID ${flowId} is outside 0–255`;
    if (r === 'inner-too-short') return `the inner frame has ${inner.length} bytes, less than an Ethernet header`;
    return `${20 + NVGRE_HEADER_LENGTH + inner.length} bytes of outer IPv4 exceed the provider MTU ${this.mtu} (customer frames may be at most ${this.mtu - 20 - NVGRE_HEADER_LENGTH} bytes)`;
  }
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

/**
 * What a decapsulation needs of an NVGRE frame, filled in place (the switch's per-frame path:
 * one record per data path, no object per frame): the fields, or with `reason` set, why the
 * frame was refused (the same reason, layer and offset decodeNvgre gives). Valid until the next
 * decode into it.
 */
export class NvgreRecord {
  reason: DropReason | null = null;
  layer: Layer | null = null;
  offset = -1;
  providerSrc = 0;
  providerDst = 0;
  ttl = 0;
  dscp = 0;
  key = 0;
  vsid = 0;
  flowId = 0;
  innerOffset = 0;
  innerLength = 0;
  innerDst = 0;
  innerSrc = 0;
  innerEthertype = 0;
}

function refused(r: NvgreRecord, reason: DropReason, layer: Layer, offset: number): false {
  r.reason = reason; r.layer = layer; r.offset = offset;
  return false;
}

/**
 * NVGRE's checks past the outer IPv4 header's lengths (which the caller checked: a whole header
 * of IHL ≥ 5 and a total length the buffer holds), in decodeNvgre's order: header checksum,
 * fragment, GRE flags/version/protocol, VSID, an inner Ethernet header. Fills `r`.
 */
function nvgreAfterIpv4(b: Uint8Array, ipOff: number, r: NvgreRecord): boolean {
  if (!ipv4ChecksumOk(b, ipOff)) return refused(r, 'bad-ipv4-checksum', 'ipv4', ipOff + 10);
  // A fragment cannot be decapsulated alone, and we do not reassemble: the sender sets DF.
  if ((u16(b, ipOff + 6) & 0x3fff) !== 0) return refused(r, 'nvgre-fragment', 'ipv4', ipOff + 6);
  const hl = (b[ipOff]! & 0xf) * 4, g = ipOff + hl, payloadLength = u16(b, ipOff + 2) - hl;
  if (payloadLength < NVGRE_HEADER_LENGTH) return refused(r, 'truncated-gre', 'gre', g);
  const fv = u16(b, g);
  if ((fv & 7) !== 0) return refused(r, 'unsupported-gre-version', 'gre', g);
  if (fv !== GRE_FLAG_KEY) return refused(r, 'nvgre-bad-flags', 'gre', g);
  if (u16(b, g + 2) !== NVGRE_PROTOCOL) return refused(r, 'nvgre-bad-protocol', 'gre', g + 2);
  const key = u32(b, g + 4);
  const vsid = key >>> 8;
  if (vsid < VSID_MIN || vsid > VSID_MAX) return refused(r, 'nvgre-reserved-vsid', 'gre', g + 4);
  const innerOffset = g + NVGRE_HEADER_LENGTH, innerLength = payloadLength - NVGRE_HEADER_LENGTH;
  if (innerLength < ETHERNET_HEADER_LENGTH) return refused(r, 'truncated-nvgre-inner', 'gre', innerOffset);
  r.reason = null; r.layer = null; r.offset = -1;
  r.providerSrc = u32(b, ipOff + 12); r.providerDst = u32(b, ipOff + 16); r.ttl = b[ipOff + 8]!; r.dscp = b[ipOff + 1]! >>> 2;
  r.key = key; r.vsid = vsid; r.flowId = key & 0xff; r.innerOffset = innerOffset; r.innerLength = innerLength;
  r.innerDst = macToNumber(b, innerOffset); r.innerSrc = macToNumber(b, innerOffset + 6); r.innerEthertype = u16(b, innerOffset + 12);
  return true;
}

/**
 * decodeNvgre for a frame the switch's classifier has parsed into `info` (parseFrameInto, ok):
 * the outer Ethernet and IPv4 headers are not parsed again, and nothing is allocated. Same
 * answers as decodeNvgre for such a frame (src/packet/nvgre.test.ts checks it differentially).
 */
export function decodeNvgreInto(b: Uint8Array, info: FrameInfo, r: NvgreRecord): boolean {
  if (info.ipVersion !== 4) return refused(r, 'not-nvgre', 'ethernet', info.l3Offset - 2);
  if (info.ipProtocol !== IPPROTO_GRE) return refused(r, 'not-nvgre', 'ipv4', info.l3Offset + 9);
  return nvgreAfterIpv4(b, info.l3Offset, r);
}

/** decodeNvgre's record: the function is never re-entered. */
const scratch = new NvgreRecord();

export function decodeNvgre(b: Uint8Array): Parsed<NvgreFrame> {
  const eth = parseEthernet(b);
  if (!eth.ok) return eth;
  if (eth.ethertype !== ETHERTYPE_IPV4) return malformed('not-nvgre', 'ethernet', eth.payloadOffset - 2);
  const ipOff = eth.payloadOffset;
  const ip = parseIpv4(b, ipOff);
  if (!ip.ok) return ip;
  if (ip.protocol !== IPPROTO_GRE) return malformed('not-nvgre', 'ipv4', ipOff + 9);
  const r = scratch;
  if (!nvgreAfterIpv4(b, ipOff, r)) return malformed(r.reason!, r.layer!, r.offset);
  return {
    ok: true, outerDst: eth.dst, outerSrc: eth.src, outerVlan: eth.vlan, providerSrc: r.providerSrc, providerDst: r.providerDst, ttl: r.ttl, dscp: r.dscp,
    key: r.key, vsid: r.vsid, flowId: r.flowId, innerOffset: r.innerOffset, innerLength: r.innerLength,
    innerDst: r.innerDst, innerSrc: r.innerSrc, innerEthertype: r.innerEthertype,
  };
}
