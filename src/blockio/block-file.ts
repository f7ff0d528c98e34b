// The small file-handle interface that format engines (vhd/) do all their I/O through.
// Engines never touch node:fs: the caller hands them a BlockFile, so the same engine runs
// on a real file, an in-memory file, or a crash-simulating recorder in tests.
// Offsets and lengths are byte numbers; 64 TB stays well inside Number.MAX_SAFE_INTEGER.

import type { FileExtent } from './file-map.ts';

export interface BlockFile {
  /** Fill `buf` from `offset`. Bytes past the end of the file read as zeros. */
  read(buf: Uint8Array, offset: number): Promise<void>;
  /** Write all of `buf` at `offset`, growing the file if needed. */
  write(buf: Uint8Array, offset: number): Promise<void>;
  /** Make every completed write durable (fsync). */
  flush(): Promise<void>;
  size(): Promise<number>;
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Data and holes of [offset, offset+length), covering it exactly (file-map.ts). Optional:
   * files that cannot tell (in memory, wrappers) are all data; use `mapFileData`.
   */
  mapData?(offset: number, length: number): Promise<FileExtent[]>;
  /**
   * The first byte of data in [offset, offset+length), -1 when it is all hole, answered at once
   * when that is one cheap system call on an open OS file (lseek(SEEK_DATA) on the event loop:
   * the block server's "is this read all zeros?"); undefined when it cannot be. Optional.
   */
  firstDataNow?(offset: number, length: number): number | undefined;
  /**
   * The OS file descriptor, when this is an open OS file: file-copy.ts copies between two such
   * files in the kernel. Nothing else uses it; absent on in-memory and test files.
   */
  readonly fd?: number;
  /**
   * A second descriptor of the same file opened O_DIRECT (`openDirect` in file-copy.ts), set
   * by an owner whose bulk copies should bypass the page cache (a durable conversion): copies
   * into 4 KiB-aligned ranges go through it. Absent everywhere else.
   */
  readonly directFd?: number;
  /** A human name for error messages (usually the path). */
  readonly name: string;
  readonly readOnly: boolean;
}
