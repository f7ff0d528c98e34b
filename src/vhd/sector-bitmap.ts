// Sector bitmaps (2.4 / 2.5.1.2) of differencing disks: one bit per logical sector, bit 0 of
// byte 0 first, 1 = this file holds the sector, 0 = read it from the parent. A sector bitmap
// block is 1 MiB and covers one chunk (2^23 sectors). This file maps a block-relative sector
// range to runs of set/clear bits and stages bit changes as 4 KiB page images.
import type { BlockFile } from '../blockio/block-file.ts';
import { LOG_SECTOR } from './format.ts';
import type { BatGeometry } from './bat.ts';
import type { SectorTx } from './tx.ts';

const BITS_PER_PAGE = LOG_SECTOR * 8;

export class SectorBitmaps {
  private pages = new Map<number, Uint8Array>();
  constructor(private readonly file: BlockFile, private readonly g: BatGeometry) {}

  /** Sector index within its chunk of sector `sectorInBlock` of payload block `block`. */
  private chunkSector(block: number, sectorInBlock: number): number {
    return (block % this.g.chunkRatio) * (this.g.blockSize / this.g.logicalSectorSize) + sectorInBlock;
  }

  private async page(off: number, tx?: SectorTx): Promise<Uint8Array> {
    const staged = tx?.peek(off);
    if (staged) return staged;
    let p = this.pages.get(off);
    if (!p) {
      p = new Uint8Array(LOG_SECTOR);
      await this.file.read(p, off);
      this.pages.set(off, p);
    }
    return p;
  }

  /** Runs of [present, sectorCount] covering `count` sectors from `first` in block `block`. */
  async runs(sbOffset: number, block: number, first: number, count: number, tx?: SectorTx): Promise<Array<[boolean, number]>> {
    const out: Array<[boolean, number]> = [];
    let s = this.chunkSector(block, first);
    const end = s + count;
    while (s < end) {
      const pageNo = Math.floor(s / BITS_PER_PAGE);
      const p = await this.page(sbOffset + pageNo * LOG_SECTOR, tx);
      const pageEnd = Math.min(end, (pageNo + 1) * BITS_PER_PAGE);
      for (; s < pageEnd; s++) {
        const bit = s - pageNo * BITS_PER_PAGE;
        const v = ((p[bit >> 3]! >> (bit & 7)) & 1) === 1;
        const last = out[out.length - 1];
        if (last && last[0] === v) last[1]++;
        else out.push([v, 1]);
      }
    }
    return out;
  }

  /** Stage setting `count` bits from `first` (block-relative); no-op pages are not staged. */
  async set(tx: SectorTx, sbOffset: number, block: number, first: number, count: number): Promise<void> {
    let s = this.chunkSector(block, first);
    const end = s + count;
    while (s < end) {
      const pageNo = Math.floor(s / BITS_PER_PAGE);
      const off = sbOffset + pageNo * LOG_SECTOR;
      const pageEnd = Math.min(end, (pageNo + 1) * BITS_PER_PAGE);
      const cur = await this.page(off, tx);
      let changed = false;
      for (let t = s; t < pageEnd; t++) {
        const bit = t - pageNo * BITS_PER_PAGE;
        if (((cur[bit >> 3]! >> (bit & 7)) & 1) === 0) {
          changed = true;
          break;
        }
      }
      if (changed) {
        const img = await tx.sector(off, async () => cur.slice());
        let t = s;
        for (; t < pageEnd && ((t - pageNo * BITS_PER_PAGE) & 7) !== 0; t++) {
          const bit = t - pageNo * BITS_PER_PAGE;
          img[bit >> 3] = img[bit >> 3]! | (1 << (bit & 7));
        }
        for (; t + 8 <= pageEnd; t += 8) img[(t - pageNo * BITS_PER_PAGE) >> 3] = 0xff;
        for (; t < pageEnd; t++) {
          const bit = t - pageNo * BITS_PER_PAGE;
          img[bit >> 3] = img[bit >> 3]! | (1 << (bit & 7));
        }
      }
      s = pageEnd;
    }
  }

  /** After a commit: cache the new images of bitmap pages (`exclude` filters BAT/metadata sectors). */
  install(tx: SectorTx, exclude: (off: number) => boolean): void {
    for (const [off, img] of tx.sectors) if (!exclude(off)) this.pages.set(off, img.slice());
  }

  reset(): void {
    this.pages.clear();
  }
}
