// A metadata transaction: a set of whole 4 KiB sector images (BAT pages, sector-bitmap
// pages, metadata and region-table sectors) that must reach the file atomically. The log
// (log.ts) journals and applies it; caches install the images after the commit.
export class SectorTx {
  readonly sectors = new Map<number, Uint8Array>();

  peek(offset: number): Uint8Array | undefined {
    return this.sectors.get(offset);
  }

  /** The staged image of the sector at `offset`, loading the current contents the first time. */
  async sector(offset: number, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    let s = this.sectors.get(offset);
    if (!s) {
      s = await load();
      this.sectors.set(offset, s);
    }
    return s;
  }

  put(offset: number, img: Uint8Array): void {
    this.sectors.set(offset, img);
  }

  get size(): number {
    return this.sectors.size;
  }
}
