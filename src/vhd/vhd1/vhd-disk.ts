// An open VHD as a VirtualDisk: the data path (read, write, trim, blockStatus, flush) for
// fixed, dynamic and differencing disks. Dynamic/differencing reads map each guest range
// through the BAT and the block's sector bitmap; clear bits read as zeros (dynamic) or fall
// through to the parent (differencing). Writes to a differencing disk always go to this
// file. Block allocation order is in allocate.ts; metadata loading in load.ts.
import type { BlockFile } from '../../blockio/block-file.ts';
import type { VirtualDisk, Extent, DiskType } from '../../blockio/virtual-disk.ts';
import { DiskTypeCode, type Footer } from './footer.ts';
import type { DynamicHeader } from './dynamic-header.ts';
import { batEntryBytes } from './bat.ts';
import { bitmapBytes, bitRuns, setBits } from './bitmap.ts';
import { allocateBlock } from './allocate.ts';
import { virtualSizeOf } from './geometry.ts';
import { Serial } from './serial.ts';
import { invalidArgument, vhdError } from './errors.ts';
import { SECTOR, UNUSED } from './units.ts';

/** Bitmaps kept in memory at most (bytes); beyond it the cache starts over. */
const BITMAP_CACHE_BYTES = 32 * 1024 * 1024;
/** Largest zero buffer written at once by trim. */
const ZERO_CHUNK = 1024 * 1024;

export interface VhdDiskInit {
  file: BlockFile;
  footer: Footer;
  footerOffset: number;
  header: DynamicHeader | null;
  bat: Uint32Array | null;
  tableCapacity: number;
  parent: VirtualDisk | null;
  parentPaths: string[];
  absoluteParentPath: string | null;
  readOnly: boolean;
}

export class VhdDisk implements VirtualDisk {
  readonly format = 'VHD' as const;
  readonly logicalSectorSize = SECTOR;
  readonly physicalSectorSize = SECTOR;
  readonly readOnly: boolean;
  /** @internal The fields below are shared with resize.ts, describe.ts; not public API. */
  readonly file: BlockFile;
  footer: Footer;
  footerOffset: number;
  header: DynamicHeader | null;
  bat: Uint32Array | null;
  /** BAT entries that fit where the table is (load.ts); resize moves the table beyond that. */
  tableCapacity: number;
  readonly parent: VirtualDisk | null;
  readonly parentPaths: string[];
  readonly absoluteParentPath: string | null;
  readonly serial = new Serial();
  private bitmaps = new Map<number, Uint8Array>();
  private bitmapCacheBytes = 0;
  private closed = false;

  constructor(init: VhdDiskInit) {
    this.file = init.file;
    this.footer = init.footer;
    this.footerOffset = init.footerOffset;
    this.header = init.header;
    this.bat = init.bat;
    this.tableCapacity = init.tableCapacity;
    this.parent = init.parent;
    this.parentPaths = init.parentPaths;
    this.absoluteParentPath = init.absoluteParentPath;
    this.readOnly = init.readOnly;
  }

  get type(): DiskType {
    return this.footer.diskType === DiskTypeCode.Fixed ? 'Fixed' : this.footer.diskType === DiskTypeCode.Dynamic ? 'Dynamic' : 'Differencing';
  }

  get virtualSize(): number {
    return virtualSizeOf(this.footer);
  }

  /** The unique id of this disk (footer), which a child's header names as its parent. */
  get uniqueId(): Uint8Array {
    return this.footer.uniqueId;
  }

  get timeStamp(): number {
    return this.footer.timeStamp;
  }

  get blockSize(): number {
    return this.header?.blockSize ?? 0;
  }

  get bitmapBytes(): number {
    return this.header ? bitmapBytes(this.header.blockSize) : 0;
  }

  private checkRange(op: string, offset: number, length: number): void {
    if (this.closed) throw vhdError('VHD_CLOSED', `${this.file.name}: ${op} on a closed disk`, { path: this.file.name, op });
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
        offset % SECTOR !== 0 || length % SECTOR !== 0 || offset + length > this.virtualSize) {
      throw invalidArgument(`${this.file.name}: ${op} of ${length} bytes at ${offset} is not sector aligned or not inside the ${this.virtualSize}-byte disk`,
        { path: this.file.name, op, offset, length });
    }
  }

  private checkWritable(op: string): void {
    if (this.readOnly) throw vhdError('VHD_READ_ONLY', `${this.file.name}: ${op} on a read-only disk`, { path: this.file.name, op });
  }

  /** Splits [offset, offset+length) at block boundaries. */
  private *chunks(offset: number, length: number): Generator<{ block: number; inBlock: number; pos: number; len: number }> {
    const bs = this.blockSize;
    for (let pos = offset; pos < offset + length;) {
      const block = Math.floor(pos / bs);
      const inBlock = pos - block * bs;
      const len = Math.min(bs - inBlock, offset + length - pos);
      yield { block, inBlock, pos, len };
      pos += len;
    }
  }

  private blockStart(block: number): number | null {
    const e = this.bat?.[block];
    return e === undefined || e === UNUSED ? null : e * SECTOR;
  }

  private async bitmap(block: number, start: number): Promise<Uint8Array> {
    const cached = this.bitmaps.get(block);
    if (cached) return cached;
    const bm = new Uint8Array(this.bitmapBytes);
    await this.file.read(bm, start);
    if (this.bitmapCacheBytes + bm.length > BITMAP_CACHE_BYTES) {
      this.bitmaps.clear();
      this.bitmapCacheBytes = 0;
    }
    this.bitmaps.set(block, bm);
    this.bitmapCacheBytes += bm.length;
    return bm;
  }

  /** What a sector not stored in this file reads as: the parent's data, or zeros. */
  private async readBelow(buf: Uint8Array, pos: number): Promise<void> {
    if (this.type !== 'Differencing') {
      buf.fill(0);
      return;
    }
    if (!this.parent) {
      throw vhdError('VHD_PARENT_MISSING', `${this.file.name}: read falls through to a parent that was not opened`, { path: this.file.name, offset: pos });
    }
    const inParent = Math.max(0, Math.min(buf.length, this.parent.virtualSize - pos));
    if (inParent > 0) await this.parent.read(buf.subarray(0, inParent), pos);
    buf.fill(0, inParent);
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    this.checkRange('read', offset, buf.length);
    if (this.type === 'Fixed') {
      const inData = Math.max(0, Math.min(buf.length, this.footer.currentSize - offset));
      if (inData > 0) await this.file.read(buf.subarray(0, inData), offset);
      buf.fill(0, inData);
      return;
    }
    await Promise.all(Array.from(this.chunks(offset, buf.length), async ({ block, inBlock, pos, len }) => {
      const sub = buf.subarray(pos - offset, pos - offset + len);
      const start = this.blockStart(block);
      if (start === null) return this.readBelow(sub, pos);
      const bm = await this.bitmap(block, start);
      const dataStart = start + this.bitmapBytes;
      for (const run of bitRuns(bm, inBlock / SECTOR, len / SECTOR)) {
        const part = sub.subarray(run.start * SECTOR - inBlock, (run.start + run.length) * SECTOR - inBlock);
        if (run.set) await this.file.read(part, dataStart + run.start * SECTOR);
        else await this.readBelow(part, block * this.blockSize + run.start * SECTOR);
      }
    }));
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    this.checkRange('write', offset, buf.length);
    this.checkWritable('write');
    if (this.type === 'Fixed') {
      this.checkInData(offset, buf.length);
      await this.file.write(buf, offset);
      return;
    }
    await this.serial.run(async () => {
      for (const { block, inBlock, pos, len } of this.chunks(offset, buf.length)) {
        await this.writeInBlock(block, inBlock, buf.subarray(pos - offset, pos - offset + len));
      }
    });
  }

  private checkInData(offset: number, length: number): void {
    if (offset + length > this.footer.currentSize) {
      throw invalidArgument(`${this.file.name}: write at ${offset} past the ${this.footer.currentSize}-byte data area`, { path: this.file.name, offset });
    }
  }

  /**
   * Data first, then the bitmap. In a differencing disk a clear bit shows the parent's
   * sector, so a bitmap update waits behind a flush of the data: after a crash each sector
   * reads as its old (parent) or its new contents, never as unwritten space. In a dynamic
   * disk a clear bit reads zeros and so does an unwritten sector of the block, so no
   * barrier is needed. Caller holds `serial`.
   */
  private async writeInBlock(block: number, inBlock: number, data: Uint8Array): Promise<void> {
    const bat = this.bat!, header = this.header!;
    if (block >= bat.length) {
      throw invalidArgument(`${this.file.name}: block ${block} is past the BAT (${bat.length} entries)`, { path: this.file.name, block });
    }
    const start = this.blockStart(block);
    if (start === null) {
      const bm = new Uint8Array(this.bitmapBytes);
      setBits(bm, inBlock / SECTOR, data.length / SECTOR);
      this.footerOffset = await allocateBlock({
        file: this.file, footer: this.footer, footerOffset: this.footerOffset, tableOffset: header.tableOffset,
        bat, bitmapBytes: this.bitmapBytes, blockSize: header.blockSize,
      }, block, inBlock, data, bm);
      this.bitmaps.set(block, bm);
      this.bitmapCacheBytes += bm.length;
      return;
    }
    await this.file.write(data, start + this.bitmapBytes + inBlock);
    const bm = await this.bitmap(block, start);
    const updated = bm.slice();
    if (!setBits(updated, inBlock / SECTOR, data.length / SECTOR)) return;
    if (this.type === 'Differencing') await this.file.flush();
    await this.file.write(updated, start);
    bm.set(updated);
  }

  /**
   * Trim: the range reads as zeros afterwards. Fixed disks get zeros written. Dynamic disks
   * free whole blocks (the BAT entry alone changes, so either state survives a crash; the
   * space is not reused) and zero partial ones. Differencing disks must hide the parent,
   * so the range is written with zeros in this file.
   */
  async trim(offset: number, length: number): Promise<void> {
    this.checkRange('trim', offset, length);
    this.checkWritable('trim');
    if (this.type === 'Fixed') {
      this.checkInData(offset, length);
      for (let p = offset; p < offset + length; p += ZERO_CHUNK) {
        await this.file.write(new Uint8Array(Math.min(ZERO_CHUNK, offset + length - p)), p);
      }
      return;
    }
    await this.serial.run(async () => {
      for (const { block, inBlock, len } of this.chunks(offset, length)) {
        const start = this.blockStart(block);
        if (this.type === 'Dynamic') {
          if (start === null) continue;
          if (len === this.blockSize) {
            this.bat![block] = UNUSED;
            const dropped = this.bitmaps.get(block);
            if (dropped) this.bitmapCacheBytes -= dropped.length;
            this.bitmaps.delete(block);
            await this.file.write(batEntryBytes(this.bat!, block), this.header!.tableOffset + block * 4);
            continue;
          }
          // Zero the stored data; bits stay as they are (clear bits already read as zeros).
          for (let p = 0; p < len; p += ZERO_CHUNK) {
            await this.file.write(new Uint8Array(Math.min(ZERO_CHUNK, len - p)), start + this.bitmapBytes + inBlock + p);
          }
          continue;
        }
        for (let p = 0; p < len; p += ZERO_CHUNK) {
          await this.writeInBlock(block, inBlock + p, new Uint8Array(Math.min(ZERO_CHUNK, len - p)));
        }
      }
    });
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkRange('blockStatus', offset, length);
    const out: Extent[] = [];
    const push = (e: Extent) => {
      const last = out[out.length - 1];
      if (e.length === 0) return;
      if (last && last.hole === e.hole && last.zero === e.zero && last.offset + last.length === e.offset) last.length += e.length;
      else out.push({ ...e });
    };
    const below = async (pos: number, len: number) => {
      if (this.type === 'Differencing' && this.parent) {
        const inParent = Math.max(0, Math.min(len, this.parent.virtualSize - pos));
        if (inParent > 0) for (const e of await this.parent.blockStatus(pos, inParent)) push(e);
        push({ offset: pos + inParent, length: len - inParent, hole: true, zero: true });
      } else {
        push({ offset: pos, length: len, hole: true, zero: true });
      }
    };
    if (this.type === 'Fixed') return [{ offset, length, hole: false, zero: false }];
    for (const { block, inBlock, pos, len } of this.chunks(offset, length)) {
      const start = this.blockStart(block);
      if (start === null) {
        await below(pos, len);
        continue;
      }
      const bm = await this.bitmap(block, start);
      for (const run of bitRuns(bm, inBlock / SECTOR, len / SECTOR)) {
        const p = block * this.blockSize + run.start * SECTOR;
        if (run.set) push({ offset: p, length: run.length * SECTOR, hole: false, zero: false });
        else await below(p, run.length * SECTOR);
      }
    }
    return out;
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    await this.serial.run(() => this.file.flush());
  }

  /** Flushes and closes this file only, leaving the parent open (merge.ts). */
  async closeSelf(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.file.close();
  }

  /** Flushes and closes the file, then the parent this disk was opened with. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.file.close();
    await this.parent?.close();
  }
}
