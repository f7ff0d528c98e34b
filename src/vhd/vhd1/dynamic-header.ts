// The dynamic disk header: the 1024-byte structure (cookie "cxsparse") that dynamic and
// differencing disks carry at the footer's data offset. It locates the BAT, gives the block
// size and, for differencing disks, identifies the parent (unique id, time stamp, UTF-16BE
// name) and holds the eight parent locator entries (see parent-locator.ts for their data).
import { vhdChecksum } from './checksum.ts';

export const HEADER_SIZE = 1024;
export const HEADER_COOKIE = 'cxsparse';
export const HEADER_VERSION = 0x00010000;
export const LOCATOR_ENTRIES = 8;
const LOCATOR_TABLE = 576;
const LOCATOR_ENTRY_SIZE = 24;
const PARENT_NAME = 64;
const PARENT_NAME_BYTES = 512;

export interface LocatorEntry {
  /** Four-character platform code, e.g. "W2ku"; "\0\0\0\0" when unused. */
  platformCode: number;
  /** Space reserved for the locator data. The spec says sectors, Windows writes bytes: readers accept both. */
  platformDataSpace: number;
  platformDataLength: number;
  platformDataOffset: number;
}

export interface DynamicHeader {
  tableOffset: number;
  headerVersion: number;
  maxTableEntries: number;
  blockSize: number;
  checksum: number;
  parentUniqueId: Uint8Array;
  parentTimeStamp: number;
  parentUnicodeName: string;
  locators: LocatorEntry[];
}

export interface DecodedHeader {
  header: DynamicHeader;
  checksumOk: boolean;
}

export function decodeDynamicHeader(buf: Uint8Array): DecodedHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  for (let i = 0; i < 8; i++) if (buf[i] !== HEADER_COOKIE.charCodeAt(i)) return null;
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_SIZE);
  let name = '';
  for (let i = 0; i < PARENT_NAME_BYTES; i += 2) {
    const c = v.getUint16(PARENT_NAME + i);
    if (c === 0) break;
    name += String.fromCharCode(c);
  }
  const locators: LocatorEntry[] = [];
  for (let i = 0; i < LOCATOR_ENTRIES; i++) {
    const o = LOCATOR_TABLE + i * LOCATOR_ENTRY_SIZE;
    locators.push({
      platformCode: v.getUint32(o),
      platformDataSpace: v.getUint32(o + 4),
      platformDataLength: v.getUint32(o + 8),
      platformDataOffset: Number(v.getBigUint64(o + 16)),
    });
  }
  const header: DynamicHeader = {
    tableOffset: Number(v.getBigUint64(16)),
    headerVersion: v.getUint32(24),
    maxTableEntries: v.getUint32(28),
    blockSize: v.getUint32(32),
    checksum: v.getUint32(36),
    parentUniqueId: buf.slice(40, 56),
    parentTimeStamp: v.getUint32(56),
    parentUnicodeName: name,
    locators,
  };
  return { header, checksumOk: vhdChecksum(buf.subarray(0, HEADER_SIZE), 36) === header.checksum };
}

export function encodeDynamicHeader(h: DynamicHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_SIZE);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < 8; i++) buf[i] = HEADER_COOKIE.charCodeAt(i);
  v.setBigUint64(8, 0xffffffffffffffffn); // data offset: unused, all ones
  v.setBigUint64(16, BigInt(h.tableOffset));
  v.setUint32(24, h.headerVersion);
  v.setUint32(28, h.maxTableEntries);
  v.setUint32(32, h.blockSize);
  buf.set(h.parentUniqueId.subarray(0, 16), 40);
  v.setUint32(56, h.parentTimeStamp);
  const name = h.parentUnicodeName.slice(0, PARENT_NAME_BYTES / 2);
  for (let i = 0; i < name.length; i++) v.setUint16(PARENT_NAME + i * 2, name.charCodeAt(i));
  h.locators.slice(0, LOCATOR_ENTRIES).forEach((l, i) => {
    const o = LOCATOR_TABLE + i * LOCATOR_ENTRY_SIZE;
    v.setUint32(o, l.platformCode);
    v.setUint32(o + 4, l.platformDataSpace);
    v.setUint32(o + 8, l.platformDataLength);
    v.setBigUint64(o + 16, BigInt(l.platformDataOffset));
  });
  v.setUint32(36, vhdChecksum(buf, 36));
  return buf;
}
