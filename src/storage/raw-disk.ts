// A raw image (.img/.raw/.iso) as a VirtualDisk over a BlockFile. Block status and sparse
// reads come from the file's own holes (blockio/file-map.ts: SEEK_DATA/SEEK_HOLE when the
// addon is built, else all data). Trim (NBD TRIM, WRITE_ZEROES without NO_HOLE) punches a
// hole with the same addon (fallocate PUNCH_HOLE | KEEP_SIZE), so the file gets sparse again;
// without it, or on a file system that cannot, it writes zeros (correct, not space-saving).
// Requests are sector-aligned except that the last one may end at an unaligned end of file.
// Resizing truncates the file.
import type { BlockFile } from '../blockio/block-file.ts';
import { mapFileData, punchHole } from '../blockio/file-map.ts';
import { copySlice, type FileSlice } from '../blockio/file-copy.ts';
import type { Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';

const ZERO_CHUNK = 1024 * 1024;
const SECTOR = 512;

export class RawDisk implements VirtualDisk {
  readonly format = 'RAW' as const;
  readonly type = 'Fixed' as const;
  readonly logicalSectorSize = SECTOR;
  readonly physicalSectorSize = 4096;
  readonly readOnly: boolean;
  private size: number;
  private zeros: Uint8Array | undefined;
  /**
   * The range `readsZeroNow` last found data in (offset -1: none). The block server asks it
   * first and sends a read it says no to on to `readSparse` in the same turn of the event
   * loop, which then reads without asking the file again. A range can only turn from data to
   * zeros meanwhile (a trim), and a read then returns those zeros, never a wrong byte.
   */
  private seenOffset = -1;
  private seenLength = 0;
  /**
   * A hole the last SEEK_DATA found, [holeStart, holeEnd) (empty when equal): reads inside it
   * are answered without asking the file again — a guest or a copy reading unallocated space
   * in order asks once per hole, not once per read. Only writes through this disk can fill
   * it: a writable open holds the file's exclusive lock (file-lock.ts), a read-only one a
   * shared lock no writer can take beside. So every write and resize forgets the hole it
   * touches before it starts (a read racing a write may see either, as NBD allows).
   */
  private holeStart = 0;
  private holeEnd = 0;
  private constructor(readonly file: BlockFile, size: number, readOnly: boolean) {
    this.size = size;
    this.readOnly = readOnly;
  }

  static async open(file: BlockFile, opts: { readOnly?: boolean } = {}): Promise<RawDisk> {
    return new RawDisk(file, await file.size(), file.readOnly || (opts.readOnly ?? false));
  }

  get virtualSize(): number {
    return this.size;
  }

  private check(op: string, offset: number, length: number, write: boolean): void {
    const ctx = { op, offset, length, file: this.file.name };
    if (write && this.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${this.file.name} is open read-only`, ctx);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${op} outside the disk (${this.size} bytes)`, ctx);
    }
    if (offset % SECTOR !== 0 || (length % SECTOR !== 0 && offset + length !== this.size)) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${op} not aligned to ${SECTOR} bytes`, ctx);
    }
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    this.check('read', offset, buf.length, false);
    await this.file.read(buf, offset);
  }

  async readSparse(offset: number, length: number, buffer: () => Uint8Array): Promise<'zero' | 'data'> {
    this.check('read', offset, length, false);
    const seen = offset === this.seenOffset && length === this.seenLength;
    this.seenOffset = -1;
    if (!seen && !(await this.holdsData(offset, length))) return 'zero';
    await this.file.read(buffer(), offset);
    return 'data';
  }

  /** Whether any byte of the range is file data (not a hole): the remembered hole, or one lseek when the file answers at once. */
  private async holdsData(offset: number, length: number): Promise<boolean> {
    const now = this.dataNow(offset, length);
    return now !== undefined ? now : (await mapFileData(this.file, offset, length)).some((e) => e.data);
  }

  /**
   * Whether the range holds data, answered at once: from the remembered hole, else one
   * SEEK_DATA to the end of the file, whose answer (the next data, or none) is remembered as
   * the hole before it. Undefined when the file cannot answer at once.
   */
  private dataNow(offset: number, length: number): boolean | undefined {
    if (offset >= this.holeStart && offset + length <= this.holeEnd) return false;
    const first = this.file.firstDataNow?.(offset, this.size - offset);
    if (first === undefined) return undefined;
    const holeEnd = first < 0 ? this.size : first;
    if (holeEnd > offset) {
      this.holeStart = offset;
      this.holeEnd = holeEnd;
    }
    return holeEnd < offset + length;
  }

  /** A write or resize is about to change [offset, offset+length): the remembered hole is forgotten if it overlaps. */
  private filling(offset: number, length: number): void {
    if (offset < this.holeEnd && offset + length > this.holeStart) this.holeEnd = this.holeStart;
  }

  /** Holes found at once (the remembered hole, or one SEEK_DATA on the event loop); false when unsure or on any error (`readSparse` then answers). */
  readsZeroNow(offset: number, length: number): boolean {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > this.size) return false;
    if (offset % SECTOR !== 0 || (length % SECTOR !== 0 && offset + length !== this.size)) return false;
    try {
      const data = this.dataNow(offset, length);
      if (data === undefined) return false;
      if (!data) return true;
      this.seenOffset = offset;
      this.seenLength = length;
      return false;
    } catch {
      return false;
    }
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    this.check('write', offset, buf.length, true);
    this.filling(offset, buf.length);
    await this.file.write(buf, offset);
  }

  /** A raw image stores every byte at its own offset. */
  async locate(offset: number, length: number): Promise<FileSlice> {
    this.check('read', offset, length, false);
    return { file: this.file, offset };
  }

  async writeFrom(src: FileSlice, length: number, offset: number): Promise<void> {
    this.check('write', offset, length, true);
    this.filling(offset, length);
    await copySlice(src, length, this.file, offset);
  }

  flush(): Promise<void> {
    return this.file.flush();
  }

  async trim(offset: number, length: number): Promise<void> {
    this.check('trim', offset, length, true);
    if (await punchHole(this.file, offset, length)) return;
    this.zeros ??= new Uint8Array(ZERO_CHUNK);
    for (let o = 0; o < length; o += ZERO_CHUNK) {
      await this.file.write(this.zeros.subarray(0, Math.min(ZERO_CHUNK, length - o)), offset + o);
    }
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.check('blockStatus', offset, length, false);
    return (await mapFileData(this.file, offset, length)).map((e) => ({ offset: e.offset, length: e.length, hole: !e.data, zero: !e.data }));
  }

  /** Grow or shrink the image (the file is truncated; growth reads as zeros). */
  async resize(newSize: number): Promise<void> {
    if (this.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${this.file.name} is open read-only`, { op: 'resize', file: this.file.name });
    if (!Number.isSafeInteger(newSize) || newSize <= 0 || newSize % SECTOR !== 0) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `new size must be a positive multiple of ${SECTOR}`, { op: 'resize', size: newSize, file: this.file.name });
    }
    this.filling(0, Math.max(this.size, newSize));
    await this.file.truncate(newSize);
    await this.file.flush();
    this.size = newSize;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
