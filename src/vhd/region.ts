// The region table (2.2.3): where the BAT and metadata regions live. Two identical copies at
// 192 KiB and 256 KiB; a reader uses the first valid one. Unknown regions marked required
// make the file unopenable; unknown optional regions are kept as they are.
import {
  REGION1_OFFSET, REGION2_OFFSET, REGION_TABLE_SIZE, SIG_REGI, GUID_BAT_REGION, GUID_METADATA_REGION,
  MiB, MAX_FILE_OFFSET, HEADER_SECTION_SIZE, ascii, checksum, corrupt, put32, put64, putAscii, u32, u64,
} from './format.ts';
import { readGuid, writeGuid } from './guid.ts';
import type { BlockFile } from '../blockio/block-file.ts';

export interface RegionEntry {
  guid: string;
  fileOffset: number;
  length: number;
  required: boolean;
}

export const MAX_REGION_ENTRIES = 2047;

export function encodeRegionTable(entries: RegionEntry[]): Uint8Array {
  const b = new Uint8Array(REGION_TABLE_SIZE);
  putAscii(b, 0, SIG_REGI);
  put32(b, 8, entries.length);
  entries.forEach((e, i) => {
    const o = 16 + i * 32;
    writeGuid(b, o, e.guid);
    put64(b, o + 16, e.fileOffset);
    put32(b, o + 24, e.length);
    put32(b, o + 28, e.required ? 1 : 0);
  });
  put32(b, 4, checksum(b, 4));
  return b;
}

export function decodeRegionTable(b: Uint8Array, at: number, name: string): RegionEntry[] | string {
  if (ascii(b, 0, 4) !== SIG_REGI) return 'bad signature';
  if (u32(b, 4) !== checksum(b, 4)) return 'bad checksum';
  const count = u32(b, 8);
  if (count > MAX_REGION_ENTRIES) return `entry count ${count} too large`;
  const out: RegionEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = 16 + i * 32;
    out.push({ guid: readGuid(b, o), fileOffset: u64(b, o + 16), length: u32(b, o + 24), required: (u32(b, o + 28) & 1) === 1 });
  }
  void at;
  void name;
  return out;
}

export interface Regions {
  bat: RegionEntry;
  metadata: RegionEntry;
  all: RegionEntry[];
  problems: string[];
}

export async function readRegions(file: BlockFile): Promise<Regions> {
  const problems: string[] = [];
  let chosen: RegionEntry[] | undefined;
  for (const [i, off] of [REGION1_OFFSET, REGION2_OFFSET].entries()) {
    const b = new Uint8Array(REGION_TABLE_SIZE);
    await file.read(b, off);
    const r = decodeRegionTable(b, off, file.name);
    if (typeof r === 'string') problems.push(`region table ${i + 1}: ${r}`);
    else if (!chosen) chosen = r;
  }
  if (!chosen) throw corrupt(`no valid region table (${problems.join('; ')})`, { structure: 'region table', offset: REGION1_OFFSET, file: file.name });
  const ctx = { structure: 'region table', offset: REGION1_OFFSET, file: file.name };
  let bat: RegionEntry | undefined;
  let metadata: RegionEntry | undefined;
  const seen = new Set<string>();
  for (const e of chosen) {
    if (seen.has(e.guid)) throw corrupt(`region ${e.guid} listed twice`, ctx);
    seen.add(e.guid);
    if (!Number.isFinite(e.fileOffset) || e.fileOffset % MiB !== 0 || e.fileOffset < HEADER_SECTION_SIZE || e.fileOffset > MAX_FILE_OFFSET) {
      throw corrupt(`region ${e.guid} has bad file offset ${e.fileOffset}`, ctx);
    }
    if (e.length === 0 || e.length % MiB !== 0) throw corrupt(`region ${e.guid} has bad length ${e.length}`, ctx);
    if (e.guid === GUID_BAT_REGION) bat = e;
    else if (e.guid === GUID_METADATA_REGION) metadata = e;
    else if (e.required) throw corrupt(`unknown required region ${e.guid}`, ctx);
  }
  if (!bat) throw corrupt('no BAT region', ctx);
  if (!metadata) throw corrupt('no metadata region', ctx);
  // Regions must not overlap one another.
  const sorted = [...chosen].sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!, c = sorted[i]!;
    if (p.fileOffset + p.length > c.fileOffset) throw corrupt(`regions ${p.guid} and ${c.guid} overlap`, ctx);
  }
  return { bat, metadata, all: chosen, problems };
}
