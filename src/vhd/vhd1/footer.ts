// The hard disk footer: the 512-byte structure at the end of every VHD (and, for dynamic
// and differencing disks, a copy at offset 0). It says what kind of disk this is, how big
// it is, who made it, and carries the disk's unique id. Big-endian, checksummed.
import { vhdChecksum } from './checksum.ts';
import type { Geometry } from './geometry.ts';

export const FOOTER_SIZE = 512;
export const FOOTER_COOKIE = 'conectix';
export const FORMAT_VERSION = 0x00010000;
/** Features bit 1 is "reserved, must be set"; bit 0 marks a temporary disk. */
export const FEATURE_RESERVED = 0x2;

export const DiskTypeCode = { Fixed: 2, Dynamic: 3, Differencing: 4 } as const;
export type DiskTypeName = keyof typeof DiskTypeCode;

export interface Footer {
  features: number;
  formatVersion: number;
  /** Absolute offset of the dynamic disk header; null for fixed disks (all ones on disk). */
  dataOffset: number | null;
  timeStamp: number;
  /** Four ASCII characters, e.g. "win ", "vpc ", "qemu", "d2v ". */
  creatorApp: string;
  creatorVersion: number;
  creatorHostOs: number;
  originalSize: number;
  currentSize: number;
  geometry: Geometry;
  diskType: number;
  checksum: number;
  uniqueId: Uint8Array;
  savedState: number;
}

export interface DecodedFooter {
  footer: Footer;
  checksumOk: boolean;
}

function ascii(buf: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(buf[start + i]!);
  return s;
}

/** Returns null when the cookie is not "conectix" (this is not a footer at all). */
export function decodeFooter(buf: Uint8Array): DecodedFooter | null {
  if (buf.length < FOOTER_SIZE || ascii(buf, 0, 8) !== FOOTER_COOKIE) return null;
  const v = new DataView(buf.buffer, buf.byteOffset, FOOTER_SIZE);
  const rawDataOffset = v.getBigUint64(16);
  const footer: Footer = {
    features: v.getUint32(8),
    formatVersion: v.getUint32(12),
    dataOffset: rawDataOffset === 0xffffffffffffffffn ? null : Number(rawDataOffset),
    timeStamp: v.getUint32(24),
    creatorApp: ascii(buf, 28, 4),
    creatorVersion: v.getUint32(32),
    creatorHostOs: v.getUint32(36),
    originalSize: Number(v.getBigUint64(40)),
    currentSize: Number(v.getBigUint64(48)),
    geometry: { cylinders: v.getUint16(56), heads: v.getUint8(58), sectorsPerTrack: v.getUint8(59) },
    diskType: v.getUint32(60),
    checksum: v.getUint32(64),
    uniqueId: buf.slice(68, 84),
    savedState: v.getUint8(84),
  };
  return { footer, checksumOk: vhdChecksum(buf.subarray(0, FOOTER_SIZE), 64) === footer.checksum };
}

/** Serializes the footer and fills in its checksum (the `checksum` field is ignored). */
export function encodeFooter(f: Footer): Uint8Array {
  const buf = new Uint8Array(FOOTER_SIZE);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < 8; i++) buf[i] = FOOTER_COOKIE.charCodeAt(i);
  v.setUint32(8, f.features);
  v.setUint32(12, f.formatVersion);
  v.setBigUint64(16, f.dataOffset === null ? 0xffffffffffffffffn : BigInt(f.dataOffset));
  v.setUint32(24, f.timeStamp);
  for (let i = 0; i < 4; i++) buf[28 + i] = f.creatorApp.charCodeAt(i) & 0xff;
  v.setUint32(32, f.creatorVersion);
  v.setUint32(36, f.creatorHostOs);
  v.setBigUint64(40, BigInt(f.originalSize));
  v.setBigUint64(48, BigInt(f.currentSize));
  v.setUint16(56, f.geometry.cylinders);
  v.setUint8(58, f.geometry.heads);
  v.setUint8(59, f.geometry.sectorsPerTrack);
  v.setUint32(60, f.diskType);
  buf.set(f.uniqueId.subarray(0, 16), 68);
  v.setUint8(84, f.savedState);
  v.setUint32(64, vhdChecksum(buf, 64));
  return buf;
}

/** The unique id as a GUID string, bytes in file order. */
export function formatUniqueId(id: Uint8Array): string {
  const h = Array.from(id, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
