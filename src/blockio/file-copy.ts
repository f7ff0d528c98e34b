// File-to-file copies without a JavaScript buffer, for conversion's fast path: copy_file_range(2)
// moves page-cache pages file to file in the kernel (one copy instead of pread's and pwrite's
// two), and a zero scan tells which pieces of a source range hold data (only those are copied:
// a new destination reads zeros elsewhere). Both run in the native addon
// (native/vmhost-holes.c) in libuv's thread pool, between files that expose their descriptor
// (BlockFile.fd). Without the addon, or with VMHOST_NO_NATIVE_COPY=1, copies go through a
// buffer and the scan is left to the caller.
import type { BlockFile } from './block-file.ts';
import { loadNativeAddon, type HolesAddon } from './file-map.ts';

/** A place in an open file: where a range of a virtual disk is stored (VirtualDisk.locate). */
export interface FileSlice {
  file: BlockFile;
  offset: number;
}

const BOUNCE = 1024 * 1024;

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
