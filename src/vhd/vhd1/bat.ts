// The block allocation table: one big-endian 32-bit entry per block giving the sector
// offset of the block (its sector bitmap comes first), or 0xFFFFFFFF when the block is not
// allocated. On disk the table is padded with unused entries to a whole sector.
import { SECTOR, UNUSED, roundUp } from './units.ts';

/** Bytes the table occupies on disk for `entries` entries. */
export function batBytes(entries: number): number {
  return roundUp(entries * 4, SECTOR);
}

export function decodeBat(buf: Uint8Array, entries: number): Uint32Array {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bat = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) bat[i] = v.getUint32(i * 4);
  return bat;
}

/** The whole table, padded with unused entries to `bytes` (default: whole sectors). */
export function encodeBat(bat: Uint32Array, bytes = batBytes(bat.length)): Uint8Array {
  const buf = new Uint8Array(bytes).fill(0xff);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < bat.length; i++) v.setUint32(i * 4, bat[i]!);
  return buf;
}

/**
 * Entry `index` alone, for a single-entry update at tableOffset + 4 × index. Four aligned
 * bytes lie in one sector, so the update is atomic; writing only these bytes never touches
 * a structure that another writer placed right after an unpadded table.
 */
export function batEntryBytes(bat: Uint32Array, index: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, bat[index]!);
  return b;
}

export { UNUSED };
