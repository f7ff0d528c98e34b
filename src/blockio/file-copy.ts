// File-to-file copies without a JavaScript buffer, for conversion's fast path: copy_file_range(2)
// moves page-cache pages file to file in the kernel (one copy instead of pread's and pwrite's
// two), and a zero scan tells which pieces of a source range hold data (only those are copied:
// a new destination reads zeros elsewhere). Both run in the native addon
// (native/vmhost-holes.c) in libuv's thread pool, between files that expose their descriptor
// (BlockFile.fd). Without the addon, or with VMHOST_NO_NATIVE_COPY=1, copies go through a
// buffer and the scan is left to the caller.
// Into a file that has an O_DIRECT twin (`openDirect`, BlockFile.directFd: a durable
// conversion's destination) aligned copies go through an aligned buffer straight to the disk
// instead, a few pieces side by side: the disk writes while the copy runs, and the final fsync
// has no page cache to write back (BENCHMARKS.md, "Durable raw → VHDX: no writeback burst").
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { BlockFile } from './block-file.ts';
import { loadNativeAddon, type HolesAddon } from './file-map.ts';

/** A place in an open file: where a range of a virtual disk is stored (VirtualDisk.locate). */
export interface FileSlice {
  file: BlockFile;
  offset: number;
}

const BOUNCE = 1024 * 1024;
/** What O_DIRECT asks of file offsets and lengths on every Linux file system and device we meet. */
const DIRECT_ALIGN = 4096;
const DIRECT_PIECE = 2 * 1024 * 1024;

function nativeCopy(): HolesAddon | undefined {
  return process.env.VMHOST_NO_NATIVE_COPY === '1' ? undefined : loadNativeAddon();
}

/** Whether file-to-file copies and zero scans run natively (for tests and benches). */
export function nativeCopyStatus(): boolean {
  return nativeCopy() !== undefined;
}

/**
 * Copy `length` bytes from `src` to `dst` at `dstOffset` (bytes past the end of the source
 * are written as zeros): copy_file_range when both are OS files and the kernel can copy
 * between them, else through a buffer.
 */
export async function copySlice(src: FileSlice, length: number, dst: BlockFile, dstOffset: number): Promise<void> {
  const a = nativeCopy();
  if (a && src.file.fd !== undefined && dst.directFd !== undefined && dstOffset % DIRECT_ALIGN === 0 && length % DIRECT_ALIGN === 0) {
    // Reserved first (fallocate): ext4 then lets the pieces' direct writes run side by side;
    // into a hole each would hold the inode until the disk has written it.
    await a.reserve(dst.directFd, dstOffset, length);
    const pieces: Array<Promise<number>> = [];
    for (let o = 0; o < length; o += DIRECT_PIECE) pieces.push(a.copyDirect(src.file.fd, src.offset + o, dst.directFd, dstOffset + o, Math.min(DIRECT_PIECE, length - o)));
    await Promise.all(pieces);
    return;
  }
  if (a && src.file.fd !== undefined && dst.fd !== undefined) {
    const n = await a.copyRange(src.file.fd, src.offset, dst.fd, dstOffset, length);
    if (n >= 0) {
      if (n < length) await dst.write(new Uint8Array(length - n), dstOffset + n);
      return;
    }
  }
  const buf = new Uint8Array(Math.min(length, BOUNCE));
  for (let o = 0; o < length; o += buf.length) {
    const b = buf.subarray(0, Math.min(buf.length, length - o));
    await src.file.read(b, src.offset + o);
    await dst.write(b, dstOffset + o);
  }
}

/**
 * The [start, end) runs of `granule`-sized pieces of [offset, offset+length) of `file` that
 * hold a non-zero byte (file offsets, merged), found without a JavaScript buffer; undefined
 * when the file is no OS file or there is no addon (the caller reads and looks itself).
 */
export async function nonZeroRuns(file: BlockFile, offset: number, length: number, granule: number): Promise<Array<[number, number]> | undefined> {
  const a = nativeCopy();
  if (!a || file.fd === undefined) return undefined;
  const flat = await a.nonZeroRuns(file.fd, offset, length, granule);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/**
 * An O_DIRECT descriptor of the open file `file` (reopened through /proc/self/fd, so its path
 * is not needed), for `BlockFile.directFd`; undefined without the addon (nothing would use it),
 * without a descriptor, or where the file system refuses O_DIRECT (tmpfs: EINVAL). The caller
 * closes it, and still fsyncs `file`: direct writes skip the page cache, not the disk's own
 * cache, and the file system's metadata (the extents they filled) is written by the fsync.
 */
export async function openDirect(file: BlockFile): Promise<{ fd: number; close(): Promise<void> } | undefined> {
  if (!nativeCopy() || file.fd === undefined || file.readOnly) return undefined;
  try {
    const h = await open(`/proc/self/fd/${file.fd}`, constants.O_WRONLY | constants.O_DIRECT);
    return { fd: h.fd, close: () => h.close() };
  } catch {
    return undefined;
  }
}
