// What every disk format engine (VHDX, VHD, raw) offers to the layers above: the block
// server, conversion and the cmdlets see only this, never a format's internals.
import type { FileSlice } from './file-copy.ts';

export type DiskFormat = 'VHDX' | 'VHD' | 'RAW';
export type DiskType = 'Fixed' | 'Dynamic' | 'Differencing';

/** A run of the virtual disk with one allocation state (for NBD base:allocation, qemu-img map). */
export interface Extent {
  offset: number;
  length: number;
  /** true when no data is stored for the range in this file or any parent: it reads as zeros. */
  hole: boolean;
  /** true when the range is known to read as zeros (holes always do). */
  zero: boolean;
}

export interface VirtualDisk {
  readonly format: DiskFormat;
  readonly type: DiskType;
  /** Bytes the guest sees. */
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly readOnly: boolean;
  /** Offset and length must be multiples of logicalSectorSize and inside virtualSize. */
  read(buf: Uint8Array, offset: number): Promise<void>;
  /**
   * Read [offset, offset+length) unless all of it reads as zeros (unallocated or zero blocks,
   * file holes): then resolve 'zero' without reading and without asking for a buffer. Otherwise
   * call `buffer()` once (a buffer of `length` bytes), fill it and resolve 'data'. Optional:
   * the block server serves holes from it without a per-request buffer.
   */
  readSparse?(offset: number, length: number, buffer: () => Uint8Array): Promise<'zero' | 'data'>;
  /**
   * Whether [offset, offset+length) is known at once, without waiting for I/O, to read as zeros
   * (a cached map says so); false when unsure or when the range is invalid (then `readSparse`
   * answers, or refuses it). Optional: the block server answers such reads without a promise.
   */
  readsZeroNow?(offset: number, length: number): boolean;
  write(buf: Uint8Array, offset: number): Promise<void>;
  /**
   * Where [offset, offset+length) is stored, when it is stored in one piece of one file
   * (conversion copies it file to file); undefined when it is not (holes, a parent, pieces of
   * several blocks). The answer holds while nothing writes the disk. Optional.
   */
  locate?(offset: number, length: number): Promise<FileSlice | undefined>;
  /** `write` of bytes taken from another file (`copySlice`: in the kernel when both files can). Optional. */
  writeFrom?(src: FileSlice, length: number, offset: number): Promise<void>;
  /** Durable: data and the metadata that makes it reachable survive a power loss. */
  flush(): Promise<void>;
  /** Discard a range: it reads as zeros afterwards; whole blocks may be freed. */
  trim(offset: number, length: number): Promise<void>;
  /** Allocation map of [offset, offset+length), covering it exactly with extents in order. */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
  close(): Promise<void>;
}
