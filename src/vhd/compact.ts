// Compaction: move payload and sector-bitmap blocks from the end of the file into holes
// (space freed by trims or a moved BAT), then truncate. Each batch copies blocks into holes
// nothing references, flushes, and switches the BAT entries in one log entry; the log is
// emptied before the truncate so a later replay never sees a FlushedFileOffset past the end.
import { MiB, LOG_SECTOR, roundUp } from './format.ts';
import { SectorTx } from './tx.ts';
import { usedRanges } from './space.ts';
import type { VhdxDisk } from './disk.ts';

export interface CompactResult {
  fileSizeBefore: number;
  fileSizeAfter: number;
  blocksMoved: number;
}

/**
 * `onProgress`: blocks moved of those expected to move (the movable blocks lying beyond the
 * space all used ranges would fill packed together), after each batch.
 */
export async function compactVhdx(d: VhdxDisk, onProgress?: (done: number, total: number) => void): Promise<CompactResult> {
  return d.exclusive(async () => {
    const before = await d.file.size();
    await d.beginWrite(false);
    let moved = 0;
    const start = await usedRanges(d);
    const packedEnd = start.reduce((sum, u) => sum + u.length, 0);
    const expected = start.filter((u) => (u.kind === 'payload' || u.kind === 'bitmap') && u.start >= packedEnd).length;
    const buf = new Uint8Array(MiB);
    const limit = Math.max(1, Math.floor(d.logArea.length / LOG_SECTOR / 2) - 8);
    for (;;) {
      const used = await usedRanges(d);
      const holes: Array<[number, number]> = [];
      let at = 0;
      for (const u of used) {
        if (u.start > at) holes.push([at, u.start]);
        at = Math.max(at, u.start + u.length);
      }
      const movable = used.filter((u) => u.kind === 'payload' || u.kind === 'bitmap').sort((a, b) => b.start - a.start);
      const tx = new SectorTx();
      let batch = 0;
      for (const u of movable) {
        const hi = holes.findIndex(([s, e]) => e - s >= u.length && s < u.start);
        if (hi < 0) break;
        const [hs, he] = holes[hi]!;
        for (let o = 0; o < u.length; o += MiB) {
          await d.file.read(buf, u.start + o);
          await d.file.write(buf, hs + o);
        }
        await d.bat.stage(tx, u.batIndex!, { state: u.state!, offset: hs });
        if (hs + u.length < he) holes[hi] = [hs + u.length, he];
        else holes.splice(hi, 1);
        moved++;
        if (++batch >= 64 || tx.size >= limit) break;
      }
      if (tx.size === 0) break;
      await d.file.flush();
      await d.commit(tx);
      d.bitmaps.reset();
      onProgress?.(Math.min(moved, expected), expected);
    }
    onProgress?.(expected, expected);
    const used = await usedRanges(d);
    let end = 0;
    for (const u of used) end = Math.max(end, u.start + u.length);
    end = roundUp(end, MiB);
    if (end < before) {
      await d.retireLog();
      await d.file.truncate(end);
      await d.file.flush();
    }
    d.fileEnd = Math.max(end, roundUp(await d.file.size(), MiB));
    return { fileSizeBefore: before, fileSizeAfter: await d.file.size(), blocksMoved: moved };
  });
}
