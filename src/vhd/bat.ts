// The Block Allocation Table (2.5): geometry (chunk ratio, interleaved sector-bitmap
// entries), entry encoding, and a paged in-memory cache of the BAT region. Pages are loaded
// on demand so a 64 TiB disk's table never has to be read whole. Changes are staged as
// whole 4 KiB page images in a SectorTx and installed only after the log committed them.
import type { BlockFile } from '../blockio/block-file.ts';
import {
  SECTORS_PER_BITMAP_BLOCK, MiB, MAX_FILE_OFFSET, LOG_SECTOR, corrupt, put32, u32,
  PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED, PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT,
  SB_NOT_PRESENT, SB_PRESENT,
} from './format.ts';
import type { SectorTx } from './tx.ts';

export interface BatGeometry {
  blockSize: number;
  logicalSectorSize: number;
  virtualSize: number;
  hasParent: boolean;
  chunkRatio: number;
  dataBlocks: number;
  sbBlocks: number;
  totalEntries: number;
}

export function batGeometry(blockSize: number, logicalSectorSize: number, virtualSize: number, hasParent: boolean): BatGeometry {
  const chunkRatio = (SECTORS_PER_BITMAP_BLOCK * logicalSectorSize) / blockSize;
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const sbBlocks = Math.ceil(dataBlocks / chunkRatio);
  const totalEntries = hasParent ? sbBlocks * (chunkRatio + 1) : dataBlocks + Math.floor((dataBlocks - 1) / chunkRatio);
  return { blockSize, logicalSectorSize, virtualSize, hasParent, chunkRatio, dataBlocks, sbBlocks, totalEntries };
}

/** BAT index of payload block `block`. */
export function payloadIndex(g: BatGeometry, block: number): number {
  return block + Math.floor(block / g.chunkRatio);
}
/** BAT index of the sector bitmap entry of chunk `chunk`. */
export function sbIndex(g: BatGeometry, chunk: number): number {
  return chunk * (g.chunkRatio + 1) + g.chunkRatio;
}

export interface BatEntry {
  state: number;
  /** Byte offset in the file (FileOffsetMB × 1 MiB). */
  offset: number;
}

const PAGE = LOG_SECTOR;
const PER_PAGE = PAGE / 8;

export function decodeEntry(p: Uint8Array, o: number): BatEntry {
  const lo = u32(p, o), hi = u32(p, o + 4);
  return { state: lo & 7, offset: ((lo >>> 20) + hi * 4096) * MiB };
}
export function encodeEntry(p: Uint8Array, o: number, e: BatEntry): void {
  const mb = e.offset / MiB;
  put32(p, o, (e.state & 7) | ((mb % 4096) << 20));
  put32(p, o + 4, Math.floor(mb / 4096));
}

const VALID_PAYLOAD = new Set([PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED, PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT]);

export class Bat {
  readonly file: BlockFile;
  /** Region offset and length in bytes. */
  offset: number;
  length: number;
  g: BatGeometry;
  private pages = new Map<number, Uint8Array>();

  constructor(file: BlockFile, offset: number, length: number, g: BatGeometry) {
    this.file = file;
    this.offset = offset;
    this.length = length;
    this.g = g;
    if (g.totalEntries * 8 > length) {
      throw corrupt(`BAT region (${length} bytes) too small for ${g.totalEntries} entries`, { structure: 'BAT', offset, file: file.name });
    }
  }

  /** File offset of the 4 KiB page holding entry `index`. */
  pageOffset(index: number): number {
    return this.offset + Math.floor(index / PER_PAGE) * PAGE;
  }

  async page(pageNo: number): Promise<Uint8Array> {
    let p = this.pages.get(pageNo);
    if (!p) {
      p = new Uint8Array(PAGE);
      await this.file.read(p, this.offset + pageNo * PAGE);
      this.pages.set(pageNo, p);
    }
    return p;
  }

  /** Raw entry (no validation). */
  async raw(index: number, tx?: SectorTx): Promise<BatEntry> {
    const pageNo = Math.floor(index / PER_PAGE);
    const staged = tx?.peek(this.offset + pageNo * PAGE);
    const p = staged ?? (await this.page(pageNo));
    return decodeEntry(p, (index % PER_PAGE) * 8);
  }

  /** The payload entry of `block` if its BAT page is cached (no I/O, no validation), else undefined. */
  cachedPayload(block: number): BatEntry | undefined {
    const idx = payloadIndex(this.g, block);
    const p = this.pages.get(Math.floor(idx / PER_PAGE));
    return p ? decodeEntry(p, (idx % PER_PAGE) * 8) : undefined;
  }

  /** `payload` answered at once when the entry's BAT page is cached (validated the same way), else undefined. */
  payloadNow(block: number): BatEntry | undefined {
    const e = this.cachedPayload(block);
    return e && this.validPayload(block, payloadIndex(this.g, block), e);
  }

  /** Payload entry of `block`, validated against the disk type. */
  async payload(block: number, tx?: SectorTx): Promise<BatEntry> {
    const idx = payloadIndex(this.g, block);
    return this.validPayload(block, idx, await this.raw(idx, tx));
  }

  private validPayload(block: number, idx: number, e: BatEntry): BatEntry {
    if (VALID_PAYLOAD.has(e.state) && e.state !== PAYLOAD_PARTIALLY_PRESENT && e.state !== PAYLOAD_FULLY_PRESENT) return e;
    const ctx = { structure: 'BAT', offset: this.offset + idx * 8, file: this.file.name, block };
    if (!VALID_PAYLOAD.has(e.state)) throw corrupt(`BAT entry for block ${block} has reserved state ${e.state}`, ctx);
    if (e.state === PAYLOAD_PARTIALLY_PRESENT && !this.g.hasParent) {
      throw corrupt(`block ${block} partially present in a disk without a parent`, ctx);
    }
    if (e.offset < MiB || e.offset + this.g.blockSize > MAX_FILE_OFFSET) {
      throw corrupt(`BAT entry for block ${block} points at bad file offset ${e.offset}`, ctx);
    }
    return e;
  }

  /** Visit raw entries [from, to) by BAT index, one page read at a time (no validation). */
  async forEachRaw(from: number, to: number, fn: (index: number, e: BatEntry) => void): Promise<void> {
    let pageNo = -1;
    let p: Uint8Array | undefined;
    for (let i = from; i < to; i++) {
      const pn = Math.floor(i / PER_PAGE);
      if (pn !== pageNo) {
        p = await this.page(pn);
        pageNo = pn;
      }
      fn(i, decodeEntry(p!, (i % PER_PAGE) * 8));
    }
  }

  /** Visit the validated payload entries of blocks [from, to) in order, one page read at a time. */
  async forEachPayload(from: number, to: number, fn: (block: number, e: BatEntry) => void): Promise<void> {
    let pageNo = -1;
    let p: Uint8Array | undefined;
    for (let b = from; b < to; b++) {
      const idx = payloadIndex(this.g, b);
      const pn = Math.floor(idx / PER_PAGE);
      if (pn !== pageNo) {
        p = await this.page(pn);
        pageNo = pn;
      }
      fn(b, this.validPayload(b, idx, decodeEntry(p!, (idx % PER_PAGE) * 8)));
    }
  }

  async sectorBitmap(chunk: number, tx?: SectorTx): Promise<BatEntry> {
    const idx = sbIndex(this.g, chunk);
    const e = await this.raw(idx, tx);
    const ctx = { structure: 'BAT', offset: this.offset + idx * 8, file: this.file.name, chunk };
    if (e.state !== SB_NOT_PRESENT && e.state !== SB_PRESENT) throw corrupt(`sector bitmap entry ${chunk} has bad state ${e.state}`, ctx);
    if (e.state === SB_PRESENT && (!this.g.hasParent || e.offset < MiB || e.offset > MAX_FILE_OFFSET)) {
      throw corrupt(`sector bitmap entry ${chunk} is invalid`, ctx);
    }
    return e;
  }

  /** Stage an entry change into `tx`. */
  async stage(tx: SectorTx, index: number, e: BatEntry): Promise<void> {
    const pageNo = Math.floor(index / PER_PAGE);
    const off = this.offset + pageNo * PAGE;
    const img = await tx.sector(off, async () => (await this.page(pageNo)).slice());
    encodeEntry(img, (index % PER_PAGE) * 8, e);
  }

  /** After a commit: take the new page images that fall inside the BAT. */
  install(tx: SectorTx): void {
    for (const [off, img] of tx.sectors) {
      if (off >= this.offset && off < this.offset + this.length) this.pages.set((off - this.offset) / PAGE, img.slice());
    }
  }

  /** Forget cached pages (after the region moved or was replayed). */
  reset(): void {
    this.pages.clear();
  }
}
