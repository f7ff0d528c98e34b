// LACPDUs (IEEE 802.1AX-2008 §5.4.2, formerly 802.3ad clause 43): the Slow Protocols frame
// (EtherType 0x8809, subtype 1, version 1) two link-aggregation partners exchange per link.
// Fixed layout: Actor TLV (20 bytes), Partner TLV (20), Collector TLV (16), Terminator, 50
// reserved bytes — 110 bytes after the EtherType, 124 with the Ethernet header. Sent
// untagged to the Slow Protocols multicast address, which a bridge never forwards.
// Depends on bytes, address, result.
import { formatMac } from './address.ts';
import { put16, u16 } from './bytes.ts';
import { malformed, type Parsed } from './result.ts';

export const ETHERTYPE_SLOW = 0x8809;
export const SLOW_SUBTYPE_LACP = 1;
/** 01:80:C2:00:00:02, the Slow Protocols group address. */
export const SLOW_PROTOCOLS_MAC = new Uint8Array([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02]);
/** Ethernet header + LACPDU, without FCS. */
export const LACPDU_FRAME_LENGTH = 124;

/** Actor_State / Partner_State bits (§5.4.2.2, item u). */
export const LACP_ACTIVITY = 0x01;
export const LACP_TIMEOUT = 0x02;
export const LACP_AGGREGATION = 0x04;
export const LACP_SYNCHRONIZATION = 0x08;
export const LACP_COLLECTING = 0x10;
export const LACP_DISTRIBUTING = 0x20;
export const LACP_DEFAULTED = 0x40;
export const LACP_EXPIRED = 0x80;

/** One side's information: who it is (system, key, port) and its state bits. */
export interface LacpInfo {
  readonly systemPriority: number;
  /** A MAC address, 6 bytes. */
  readonly system: Uint8Array;
  readonly key: number;
  readonly portPriority: number;
  readonly port: number;
  readonly state: number;
}

export interface LacpduFields {
  /** The sending port's own MAC. */
  readonly src: Uint8Array;
  readonly actor: LacpInfo;
  readonly partner: LacpInfo;
  /** Tens of microseconds the collector may delay a frame (0 here: frames are never held). */
  readonly collectorMaxDelay?: number;
}

export type Lacpdu = LacpduFields & { readonly version: number };

const TLV_ACTOR = 1, TLV_PARTNER = 2, TLV_COLLECTOR = 3;
const INFO_LENGTH = 20, COLLECTOR_LENGTH = 16;
const ETH = 14;

export function encodeLacpdu(f: LacpduFields): Uint8Array {
  const b = new Uint8Array(LACPDU_FRAME_LENGTH);
  b.set(SLOW_PROTOCOLS_MAC, 0);
  b.set(f.src.subarray(0, 6), 6);
  put16(b, 12, ETHERTYPE_SLOW);
  b[ETH] = SLOW_SUBTYPE_LACP;
  b[ETH + 1] = 1;
  writeInfo(b, ETH + 2, TLV_ACTOR, f.actor);
  writeInfo(b, ETH + 22, TLV_PARTNER, f.partner);
  b[ETH + 42] = TLV_COLLECTOR;
  b[ETH + 43] = COLLECTOR_LENGTH;
  put16(b, ETH + 44, f.collectorMaxDelay ?? 0);
  // Terminator (type 0, length 0) and the reserved bytes are the zeros already there.
  return b;
}

function writeInfo(b: Uint8Array, o: number, type: number, i: LacpInfo): void {
  b[o] = type;
  b[o + 1] = INFO_LENGTH;
  put16(b, o + 2, i.systemPriority);
  b.set(i.system.subarray(0, 6), o + 4);
  put16(b, o + 10, i.key);
  put16(b, o + 12, i.portPriority);
  put16(b, o + 14, i.port);
  b[o + 16] = i.state;
}

function readInfo(b: Uint8Array, o: number): LacpInfo {
  return { systemPriority: u16(b, o + 2), system: b.slice(o + 4, o + 10), key: u16(b, o + 10), portPriority: u16(b, o + 12), port: u16(b, o + 14), state: b[o + 16]! };
}

/** True for an untagged Slow Protocols frame of subtype LACP, whatever its validity: the team's, never the switch's. */
export function isLacpFrame(b: Uint8Array): boolean {
  return b.length > ETH && u16(b, 12) === ETHERTYPE_SLOW && b[ETH] === SLOW_SUBTYPE_LACP;
}

/**
 * §5.4.2.2: a receiver checks the subtype and the TLV types and lengths of the version 1
 * fields and ignores the rest (a later version's extra TLVs, the reserved bytes' contents).
 */
export function parseLacpdu(b: Uint8Array): Parsed<Lacpdu> {
  if (b.length < ETH + 44 || !isLacpFrame(b)) return malformed('not-lacp', 'lacp', 12);
  if (b[ETH + 1] === 0) return malformed('bad-lacp-version', 'lacp', ETH + 1);
  if (b[ETH + 2] !== TLV_ACTOR || b[ETH + 3] !== INFO_LENGTH) return malformed('bad-lacp-tlv', 'lacp', ETH + 2);
  if (b[ETH + 22] !== TLV_PARTNER || b[ETH + 23] !== INFO_LENGTH) return malformed('bad-lacp-tlv', 'lacp', ETH + 22);
  if (b[ETH + 42] !== TLV_COLLECTOR || b[ETH + 43] !== COLLECTOR_LENGTH) return malformed('bad-lacp-tlv', 'lacp', ETH + 42);
  return {
    ok: true, version: b[ETH + 1]!, src: b.slice(6, 12),
    actor: readInfo(b, ETH + 2), partner: readInfo(b, ETH + 22), collectorMaxDelay: u16(b, ETH + 44),
  };
}

/** The state bits as tshark's lacp.*.state_str spells them (A T G S C D F E), for messages. */
export function formatLacpState(s: number): string {
  return ['Activity', 'Timeout', 'Aggregation', 'Synchronization', 'Collecting', 'Distributing', 'Defaulted', 'Expired'].filter((_, i) => s & (1 << i)).join(',') || 'none';
}

/** `system` as text, for status views. */
export function formatLacpSystem(i: Pick<LacpInfo, 'systemPriority' | 'system'>): string {
  return `${i.systemPriority},${formatMac(i.system)}`;
}
