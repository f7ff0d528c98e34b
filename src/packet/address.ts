// MAC, IPv4 and IPv6 addresses: parse/format, prefix (CIDR) matching, multicast and
// broadcast tests, solicited-node multicast. Depends on src/common (errors) only.
//
// Representations chosen for a per-frame switch: a MAC is also a number (48 bits fit a
// double exactly, usable as a Map key with no allocation), an IPv4 address is an
// unsigned 32-bit number, an IPv6 address is 16 bytes (a copy or an offset into a frame).
import { VmhostError } from '../common/index.ts';

function bad(kind: string, text: string): VmhostError {
  return new VmhostError('PACKET_BAD_ADDRESS', `not a valid ${kind} address: '${text}'`, { op: `parse ${kind}` });
}

// ---- MAC ----

const TWO32 = 0x1_0000_0000;
export const BROADCAST_MAC = 0xffff_ffff_ffff;

/** Parses `00:15:5d:01:02:03`, `00-15-5D-01-02-03` or `00155D010203`. Throws PACKET_BAD_ADDRESS. */
export function parseMac(text: string): Uint8Array {
  const hex = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i.test(text) ? text.replace(/[:-]/g, '') : '';
  if (hex.length !== 12) throw bad('MAC', text);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Formats 6 bytes at `off` as lowercase `aa:bb:cc:dd:ee:ff`. */
export function formatMac(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (b[off + i]! < 16 ? '0' : '') + b[off + i]!.toString(16);
  return s;
}

/** The 48-bit MAC at `off` as a number. */
export function macToNumber(b: Uint8Array, off = 0): number {
  return ((b[off]! << 8) | b[off + 1]!) * TWO32 + (((b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!) >>> 0);
}

export function macFromNumber(n: number): Uint8Array {
  const out = new Uint8Array(6);
  const hi = Math.floor(n / TWO32), lo = n >>> 0;
  out[0] = hi >>> 8; out[1] = hi & 0xff;
  out[2] = lo >>> 24; out[3] = (lo >>> 16) & 0xff; out[4] = (lo >>> 8) & 0xff; out[5] = lo & 0xff;
  return out;
}

export function formatMacNumber(n: number): string {
  return formatMac(macFromNumber(n));
}

/** Group bit set (includes broadcast). Takes a MAC number. */
export function isMulticastMac(mac: number): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 1) === 1;
}

export function isBroadcastMac(mac: number): boolean {
  return mac === BROADCAST_MAC;
}

// ---- IPv4 ----

/** Parses dotted-quad into an unsigned 32-bit number. Throws PACKET_BAD_ADDRESS. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) throw bad('IPv4', text);
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) throw bad('IPv4', text);
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

export function ipv4ToBytes(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

export function ipv4Mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffff_ffff << (32 - prefixLength)) >>> 0;
}

export function ipv4InPrefix(addr: number, network: number, prefixLength: number): boolean {
  // The mask as a signed 32-bit value: no number outside the small-integer range is made, so
  // the switch's per-frame ACL checks allocate nothing.
  const m = prefixLength === 0 ? 0 : -1 << (32 - prefixLength);
  return ((addr ^ network) & m) === 0;
}

export function isIpv4Multicast(addr: number): boolean {
  return addr >>> 28 === 0xe;
}

/** Limited broadcast 255.255.255.255, or the directed broadcast of a given prefix. */
export function isIpv4Broadcast(addr: number, network?: number, prefixLength?: number): boolean {
  if (addr === 0xffff_ffff) return true;
  if (network === undefined || prefixLength === undefined || prefixLength >= 31) return false;
  return ipv4InPrefix(addr, network, prefixLength) && ((addr | ipv4Mask(prefixLength)) >>> 0) === 0xffff_ffff;
}

/** 01:00:5e + low 23 bits of the group. */
export function ipv4MulticastMac(group: number): Uint8Array {
  return new Uint8Array([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff]);
}

// ---- IPv6 ----

/** Parses an IPv6 address (with `::`, and an optional dotted IPv4 tail) into 16 bytes. Throws PACKET_BAD_ADDRESS. */
export function parseIpv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) !== -1) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const dbl = s.split('::');
  if (dbl.length > 2) throw bad('IPv6', text);
  const group = (g: string): number[] => {
    if (g === '') return [];
    return g.split(':').map((w) => {
      if (!/^[0-9a-f]{1,4}$/i.test(w)) throw bad('IPv6', text);
      return parseInt(w, 16);
    });
  };
  const head = group(dbl[0]!);
  const tail = dbl.length === 2 ? group(dbl[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (dbl.length === 2 ? fill < 1 : fill !== 0) throw bad('IPv6', text);
  const words = [...head, ...new Array<number>(fill).fill(0), ...tail];
  for (let i = 0; i < 8; i++) { out[i * 2] = words[i]! >>> 8; out[i * 2 + 1] = words[i]! & 0xff; }
  return out;
}

/** RFC 5952 text: lowercase, longest run (≥ 2) of zero words as `::`, IPv4-mapped as `::ffff:a.b.c.d`. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!);
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  }
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return w.map((x) => x.toString(16)).join(':');
  const left = w.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = w.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

/** True when the 16 bytes at `off` lie in `network/prefixLength`. */
export function ipv6InPrefix(b: Uint8Array, off: number, network: Uint8Array, prefixLength: number): boolean {
  let bits = prefixLength;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((b[off + i]! ^ network[i]!) & m) !== 0) return false;
  }
  return true;
}

export function ipv6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** A compact Map key for the 16 bytes at `off` (8 UTF-16 code units; not for display). */
export function ipv6Key(b: Uint8Array, off = 0): string {
  return String.fromCharCode(
    (b[off]! << 8) | b[off + 1]!, (b[off + 2]! << 8) | b[off + 3]!, (b[off + 4]! << 8) | b[off + 5]!, (b[off + 6]! << 8) | b[off + 7]!,
    (b[off + 8]! << 8) | b[off + 9]!, (b[off + 10]! << 8) | b[off + 11]!, (b[off + 12]! << 8) | b[off + 13]!, (b[off + 14]! << 8) | b[off + 15]!);
}

export function isIpv6Multicast(b: Uint8Array, off = 0): boolean {
  return b[off] === 0xff;
}

export function isIpv6Unspecified(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) return false;
  return true;
}

/** ff02::1:ffXX:XXXX for the low 24 bits of `addr`. */
export function solicitedNodeMulticast(addr: Uint8Array, off = 0): Uint8Array {
  const out = new Uint8Array(16);
  out[0] = 0xff; out[1] = 0x02; out[11] = 0x01; out[12] = 0xff;
  out[13] = addr[off + 13]!; out[14] = addr[off + 14]!; out[15] = addr[off + 15]!;
  return out;
}

export function isSolicitedNodeMulticast(b: Uint8Array, off = 0): boolean {
  return b[off] === 0xff && b[off + 1] === 0x02 && b[off + 11] === 0x01 && b[off + 12] === 0xff
    && b[off + 2] === 0 && b[off + 3] === 0 && b[off + 4] === 0 && b[off + 5] === 0 && b[off + 6] === 0
    && b[off + 7] === 0 && b[off + 8] === 0 && b[off + 9] === 0 && b[off + 10] === 0;
}

/** 33:33 + low 32 bits of the group (RFC 2464). */
export function ipv6MulticastMac(group: Uint8Array, off = 0): Uint8Array {
  return new Uint8Array([0x33, 0x33, group[off + 12]!, group[off + 13]!, group[off + 14]!, group[off + 15]!]);
}

// ---- CIDR ----

export type Cidr =
  | { readonly version: 4; readonly address: number; readonly prefixLength: number }
  | { readonly version: 6; readonly address: Uint8Array; readonly prefixLength: number };

/** Parses `10.0.0.0/8`, `2001:db8::/32`; a bare address is a host prefix. Throws PACKET_BAD_ADDRESS. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v6 = addr.includes(':');
  const max = v6 ? 128 : 32;
  const lenText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText) || Number(lenText) > max) throw bad('CIDR', text);
  const prefixLength = Number(lenText);
  return v6 ? { version: 6, address: parseIpv6(addr), prefixLength } : { version: 4, address: parseIpv4(addr), prefixLength };
}

export function formatCidr(c: Cidr): string {
  return `${c.version === 4 ? formatIpv4(c.address) : formatIpv6(c.address)}/${c.prefixLength}`;
}
