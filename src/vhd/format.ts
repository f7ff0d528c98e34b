// [MS-VHDX] on-disk constants and little-endian field helpers: structure offsets and sizes,
// signatures, well-known GUIDs, BAT states, limits. Structs only; no I/O and no policy.
// Everything else in vhd/ builds on this file.
import { crc32c } from '@node-rs/crc32';
import { VmhostError, type ErrorContext } from '../common/errors.ts';

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

// Header section (2.2): file identifier, two headers, two region tables, all 64 KiB apart.
export const FILE_ID_OFFSET = 0;
export const HEADER1_OFFSET = 64 * KiB;
export const HEADER2_OFFSET = 128 * KiB;
export const REGION1_OFFSET = 192 * KiB;
export const REGION2_OFFSET = 256 * KiB;
export const HEADER_SECTION_SIZE = 1 * MiB;
export const HEADER_SIZE = 4 * KiB;
export const REGION_TABLE_SIZE = 64 * KiB;
export const METADATA_TABLE_SIZE = 64 * KiB;
export const LOG_SECTOR = 4 * KiB;
export const SECTOR_BITMAP_BLOCK = 1 * MiB;
/** Sectors described by one sector bitmap block (2^23). */
export const SECTORS_PER_BITMAP_BLOCK = 1 << 23;

export const SIG_FILE = 'vhdxfile';
export const SIG_HEAD = 'head';
export const SIG_REGI = 'regi';
export const SIG_METADATA = 'metadata';
export const SIG_LOGE = 'loge';
export const SIG_DESC = 'desc';
export const SIG_ZERO = 'zero';
export const SIG_DATA = 'data';

// Region GUIDs (2.2.3.1).
export const GUID_BAT_REGION = '2dc27766-f623-4200-9d64-115e9bfd4a08';
export const GUID_METADATA_REGION = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
// Metadata item GUIDs (2.6.2).
export const GUID_FILE_PARAMETERS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';
export const GUID_VIRTUAL_DISK_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8';
export const GUID_PAGE83 = 'beca12ab-b2e6-4523-93ef-c309e000c746';
export const GUID_LOGICAL_SECTOR = '8141bf1d-a96f-4709-ba47-f233a8faab5f';
export const GUID_PHYSICAL_SECTOR = 'cda348c7-445d-4471-9cc9-e9885251c556';
export const GUID_PARENT_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c';
/** LocatorType of the VHDX parent locator (2.6.2.6). */
export const GUID_VHDX_PARENT_LOCATOR_TYPE = 'b04aefb7-d19e-4a81-b789-25b8e9445913';

// BAT entry states (2.5.1).
export const PAYLOAD_NOT_PRESENT = 0;
export const PAYLOAD_UNDEFINED = 1;
export const PAYLOAD_ZERO = 2;
export const PAYLOAD_UNMAPPED = 3;
export const PAYLOAD_FULLY_PRESENT = 6;
export const PAYLOAD_PARTIALLY_PRESENT = 7;
export const SB_NOT_PRESENT = 0;
export const SB_PRESENT = 6;

// Limits.
export const MIN_BLOCK_SIZE = 1 * MiB;
export const MAX_BLOCK_SIZE = 256 * MiB;
export const DEFAULT_BLOCK_SIZE = 32 * MiB;
export const DEFAULT_LOG_SIZE = 1 * MiB;
/** 64 TB as Hyper-V means it: 64 × 2^40 bytes. */
export const MAX_VIRTUAL_SIZE = 64 * TiB;
/** Largest structure we are willing to hold in memory because a field said so. */
export const MAX_METADATA_REGION = 16 * MiB;
export const MAX_LOG_LENGTH = 64 * MiB;
/** Largest file offset we accept from a BAT entry or region (well inside 2^53). */
export const MAX_FILE_OFFSET = 2 ** 50;

export function corrupt(message: string, context: ErrorContext = {}): VmhostError {
  return new VmhostError('VHDX_CORRUPT', message, context);
}
export function invalidArg(message: string, context: ErrorContext = {}): VmhostError {
  return new VmhostError('VHDX_INVALID_ARGUMENT', message, context);
}

export function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
export function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
/** 64-bit LE as a Number; values above 2^53 come back as Infinity so callers can reject them. */
export function u64(b: Uint8Array, o: number): number {
  const lo = u32(b, o);
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return Infinity;
  return hi * 0x100000000 + lo;
}
export function u64big(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}
export function put64(b: Uint8Array, o: number, v: number): void {
  put32(b, o, v % 0x100000000);
  put32(b, o + 4, Math.floor(v / 0x100000000));
}
export function put64big(b: Uint8Array, o: number, v: bigint): void {
  put32(b, o, Number(v & 0xffffffffn));
  put32(b, o + 4, Number((v >> 32n) & 0xffffffffn));
}
export function ascii(b: Uint8Array, o: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[o + i]!);
  return s;
}
export function putAscii(b: Uint8Array, o: number, s: string): void {
  for (let i = 0; i < s.length; i++) b[o + i] = s.charCodeAt(i);
}

/** CRC-32C of `b` with the 4-byte checksum field at `checksumAt` taken as zero. */
export function checksum(b: Uint8Array, checksumAt: number): number {
  const saved = u32(b, checksumAt);
  put32(b, checksumAt, 0);
  const c = crc32c(b) >>> 0;
  put32(b, checksumAt, saved);
  return c;
}

export function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** UTF-16LE encode/decode for metadata strings. */
export function utf16Encode(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) put16(out, i * 2, s.charCodeAt(i));
  return out;
}
export function utf16Decode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(u16(b, i));
  return s;
}
