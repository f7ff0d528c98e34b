// File space accounting: which 1 MiB-aligned ranges of the file are in use (header section,
// log, regions, payload and sector-bitmap blocks), the holes between them, and the minimum
// virtual size a disk can shrink to. Used by compaction, check and describe.
import { MiB, HEADER_SECTION_SIZE, PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT, SB_PRESENT } from './format.ts';
import { payloadIndex, sbIndex } from './bat.ts';
import type { VhdxDisk } from './disk.ts';

export interface UsedRange {
  start: number;
  length: number;
  kind: 'header' | 'log' | 'region' | 'payload' | 'bitmap';
  /** BAT index for payload/bitmap blocks */
  batIndex?: number;
  state?: number;
}

export async function usedRanges(d: VhdxDisk): Promise<UsedRange[]> {
  const out: UsedRange[] = [
    { start: 0, length: HEADER_SECTION_SIZE, kind: 'header' },
    { start: d.logArea.offset, length: d.logArea.length, kind: 'log' },
  ];
  for (const r of d.regions) out.push({ start: r.fileOffset, length: r.length, kind: 'region' });
  await d.bat.forEachPayload(0, d.g.dataBlocks, (b, e) => {
    if (e.state === PAYLOAD_FULLY_PRESENT || e.state === PAYLOAD_PARTIALLY_PRESENT) {
      out.push({ start: e.offset, length: d.blockSize, kind: 'payload', batIndex: payloadIndex(d.g, b), state: e.state });
    }
  });
  if (d.params.hasParent) {
    for (let c = 0; c < d.g.sbBlocks; c++) {
      const e = await d.bat.sectorBitmap(c);
      if (e.state === SB_PRESENT) out.push({ start: e.offset, length: MiB, kind: 'bitmap', batIndex: sbIndex(d.g, c), state: e.state });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** End of the last block holding data (FULLY/PARTIALLY present): the smallest size a shrink may reach. */
export async function minimumSize(d: VhdxDisk): Promise<number> {
  let last = -1;
  await d.bat.forEachPayload(0, d.g.dataBlocks, (b, e) => {
    if (e.state === PAYLOAD_FULLY_PRESENT || e.state === PAYLOAD_PARTIALLY_PRESENT) last = b;
  });
  return last < 0 ? 0 : Math.min((last + 1) * d.blockSize, d.virtualSize);
}
