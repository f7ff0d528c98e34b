// ARP for Ethernet/IPv4 (RFC 826): request, reply, gratuitous. Other hardware or
// protocol types are refused. Depends on bytes, address, result.
import { u16, u32, put16, put32 } from './bytes.ts';
import { macToNumber } from './address.ts';
import { type Parsed, malformed } from './result.ts';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
export const ARP_LENGTH = 28;

export interface ArpPacket {
  readonly op: number;
  /** Sender hardware address as a MAC number. */
  readonly sha: number;
  /** Sender protocol address (IPv4 number). */
  readonly spa: number;
  readonly tha: number;
  readonly tpa: number;
}

export function parseArp(b: Uint8Array, off: number): Parsed<ArpPacket> {
  if (b.length - off < ARP_LENGTH) return malformed('truncated-arp', 'arp', off);
  if (u16(b, off) !== 1 || u16(b, off + 2) !== 0x0800 || b[off + 4] !== 6 || b[off + 5] !== 4) {
    return malformed('unsupported-arp', 'arp', off);
  }
  return {
    ok: true, op: u16(b, off + 6),
    sha: macToNumber(b, off + 8), spa: u32(b, off + 14),
    tha: macToNumber(b, off + 18), tpa: u32(b, off + 24),
  };
}

export interface ArpFields {
  readonly op: number;
  readonly sha: Uint8Array;
  readonly spa: number;
  readonly tha: Uint8Array;
  readonly tpa: number;
}

export function buildArp(f: ArpFields): Uint8Array {
  const out = new Uint8Array(ARP_LENGTH);
  put16(out, 0, 1); put16(out, 2, 0x0800); out[4] = 6; out[5] = 4; put16(out, 6, f.op);
  out.set(f.sha.subarray(0, 6), 8); put32(out, 14, f.spa);
  out.set(f.tha.subarray(0, 6), 18); put32(out, 24, f.tpa);
  return out;
}

/** A gratuitous ARP (a request announcing `ip` at `mac`: sender IP = target IP, target MAC zero). */
export function buildGratuitousArp(mac: Uint8Array, ip: number): Uint8Array {
  return buildArp({ op: ARP_REQUEST, sha: mac, spa: ip, tha: new Uint8Array(6), tpa: ip });
}

/** RARP (RFC 903): what QEMU's announce-self sends for a moved NIC, and a switch in its name (switch.ts `announce`). */
export const ETHERTYPE_RARP = 0x8035;
export const RARP_REQUEST = 3;

/**
 * The frame QEMU's announce-self sends (net/announce.c): a broadcast RARP request from `mac`
 * for itself, padded to the 60-byte minimum. Switches learn `mac` where it enters; nobody answers it.
 */
export function buildRarpAnnounce(mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(60);
  out.fill(0xff, 0, 6);
  out.set(mac.subarray(0, 6), 6);
  put16(out, 12, ETHERTYPE_RARP);
  out.set(buildArp({ op: RARP_REQUEST, sha: mac, spa: 0, tha: mac, tpa: 0 }), 14);
  return out;
}

export function isGratuitousArp(p: ArpPacket): boolean {
  return p.spa === p.tpa;
}
