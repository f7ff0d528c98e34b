// Conversion (Convert-VHD): copy any VirtualDisk (VHDX, VHD, raw; a differencing leaf reads
// through its chain) into a new VHDX, VHD or raw image in `dst`, with the type, block size and
// sector sizes chosen by the caller. Only data is copied: the source's block status skips
// holes and zero ranges, and data is checked for all-zero granules, which are skipped too
// (the new destination reads zeros everywhere until written). Reads run ahead of the writer
// (a few requests in flight, large chunks); writes are issued in disk order so a dynamic
// destination's blocks land in the file in order (no fragmentation).
// Fast path: a chunk the source stores in one piece of an OS file (a raw image, a fully
// present VHDX block) is scanned for zeros and its data copied file to file by the kernel
// (blockio/file-copy.ts: copy_file_range), never through a JavaScript buffer, a span of up to
// FILE_SPAN at a time where the chunks of a data extent lie in one piece (fewer system calls
// and thread-pool trips; no buffer to keep cache-sized).
// Depends on: blockio (types, file copies), vhd engine (create/open), vhd1 engine (create/open). No node:fs.
import type { BlockFile } from '../blockio/block-file.ts';
import { copySlice, nativeCopyStatus, nonZeroRuns, openDirect, type FileSlice } from '../blockio/file-copy.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import type { ErrorCode } from '../common/error-codes.ts';
import { MiB, MAX_VIRTUAL_SIZE, roundUp } from './format.ts';
import { createVhdx } from './create.ts';
import { openVhdx } from './open.ts';
import { createVhd, openVhd } from './vhd1/index.ts';
import { MAX_VHD_SIZE } from './vhd1/units.ts';

export interface ConvertOptions {
  format: 'VHDX' | 'VHD' | 'RAW';
  type: 'Fixed' | 'Dynamic';
  /** Destination block size (VHDX: 1–256 MiB, VHD: 4 KiB–256 MiB); the engine's default when omitted. Ignored for raw. */
  blockSize?: number;
  /** VHDX only (512 or 4096); default: the source's. A VHD has 512-byte sectors only. */
  logicalSectorSize?: 512 | 4096;
  /** VHDX only (512 or 4096); default: the source's when 512 or 4096, else 4096. */
  physicalSectorSize?: 512 | 4096;
  /** Called after each chunk: bytes of the virtual disk dealt with so far, and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Copy unit in bytes (default 1 MiB: buffers stay in the CPU cache) and how many reads run ahead of the writer (default 8). */
  chunkSize?: number;
  depth?: number;
  /**
   * true (default): the destination is flushed once at the end, before convertDisk returns.
   * false: no flush at all (the page cache writes it back later), like `qemu-img convert`'s default cache=unsafe.
   */
  durable?: boolean;
}

export interface ConvertResult {
  virtualSize: number;
  /** Bytes read from the source (data ranges only). */
  bytesRead: number;
  /** Bytes written to the destination (non-zero data only). */
  bytesWritten: number;
}

const WINDOW = 1024 * MiB;
/** Most bytes one in-kernel copy (and its zero scan) takes at once: a span within one block of the usual sizes. */
const FILE_SPAN = 8 * MiB;
/**
 * The same for direct copies (a durable conversion), which file-copy.ts splits into pieces
 * that run side by side anyway: the span is what is queued at once, and a dynamic VHDX runs
 * writes into a new block one after another, so a block's worth (the usual 32 MiB) per write
 * leaves no gap between a block's spans (1.2–1.6 s against 1.7–2.5 s for 1 GiB with 8 MiB,
 * three alternated pairs, BENCHMARKS.md).
 */
const DIRECT_SPAN = 32 * MiB;
/**
 * Zero detection unit. Only non-zero granules are written (runs of them in one write), so a
 * destination block that receives only zeros is never allocated, and a fixed or raw
 * destination stays sparse where the source was zero.
 */
const GRANULE = 64 * 1024;

function convertError(message: string, ctx: Record<string, string | number | undefined>, code: ErrorCode = 'VHDX_INVALID_ARGUMENT'): VmhostError {
  return new VmhostError(code, message, { op: 'convert', ...ctx });
}

/**
 * Create the destination in `dst` and copy `src` into it. `dst` is emptied first and closed at
 * the end (also on failure). `src` is only read and stays open.
 */
export async function convertDisk(src: VirtualDisk, dst: BlockFile, opts: ConvertOptions): Promise<ConvertResult> {
  const ctx = { file: dst.name, format: opts.format };
  const lss = opts.logicalSectorSize ?? (opts.format === 'VHDX' && src.logicalSectorSize === 4096 ? 4096 : 512);
  if (opts.format === 'VHD') {
    if (opts.logicalSectorSize !== undefined && opts.logicalSectorSize !== 512) {
      throw convertError(`a VHD has 512-byte logical sectors only (asked for ${opts.logicalSectorSize}); convert to VHDX for 4096`, ctx, 'VHD_INVALID_ARGUMENT');
    }
    if (opts.physicalSectorSize !== undefined && opts.physicalSectorSize !== 512) {
      throw convertError(`a VHD has 512-byte physical sectors only (asked for ${opts.physicalSectorSize}); convert to VHDX for 4096`, ctx, 'VHD_INVALID_ARGUMENT');
    }
  }
  if (opts.type !== 'Fixed' && opts.type !== 'Dynamic') throw convertError(`destination type must be Fixed or Dynamic, not ${String(opts.type)}`, ctx);
  // A raw source may end inside a sector: its last sector is padded with zeros.
  const size = roundUp(src.virtualSize, 512);
  if (size % lss !== 0) {
    throw convertError(`virtual size ${src.virtualSize} is not a multiple of the ${lss}-byte logical sector; resize the disk first`, ctx);
  }
  if (opts.format === 'VHDX' && size > MAX_VIRTUAL_SIZE) {
    throw convertError(`virtual size ${size} exceeds the VHDX limit of 64 TB (${MAX_VIRTUAL_SIZE} bytes)`, ctx, 'VHDX_TOO_LARGE');
  }
  if (opts.format === 'VHD' && size > MAX_VHD_SIZE) {
    throw convertError(`virtual size ${size} exceeds the VHD limit of 2040 GB (${MAX_VHD_SIZE} bytes); convert to VHDX`, ctx, 'VHD_TOO_LARGE');
  }
  const chunk = opts.chunkSize ?? 1 * MiB;
  const depth = Math.max(1, opts.depth ?? 8);
  if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % GRANULE !== 0) throw convertError(`chunk size ${chunk} must be a multiple of 64 KiB`, ctx);

  // A destination being converted into is nobody's disk until convertDisk returns (a failed
  // conversion's file is garbage either way), so the engines' ordering flushes are not needed:
  // they become no-ops and one flush at the end makes the finished file durable.
  // For the same reason its size is whatever we made it: known here, not asked of the file
  // system (an fstat round trip per block allocation and per log commit).
  let dstSize: number | undefined;
  // Durable: the copied data goes to the disk as it is copied (O_DIRECT, file-copy.ts), not
  // all at once in the final fsync; what is written through the page cache (headers, BAT, log,
  // data read through buffers) is small and the fsync writes it.
  const durable = opts.durable ?? true;
  const direct = durable ? await openDirect(dst) : undefined;
  const file: BlockFile = {
    name: dst.name, readOnly: dst.readOnly,
    // For file-to-file copies, which land only where a write was sized for (an allocated
    // block, the truncated raw file), so `dstSize` stays right.
    ...(dst.fd !== undefined ? { fd: dst.fd } : {}),
    ...(direct ? { directFd: direct.fd } : {}),
    read: (b, o) => dst.read(b, o),
    write: async (b, o) => {
      await dst.write(b, o);
      if (dstSize !== undefined) dstSize = Math.max(dstSize, o + b.length);
    },
    size: async () => (dstSize ??= await dst.size()),
    truncate: async (n) => {
      // The engines lay a new file out from size 0 (truncate(0) first); a destination that is
      // already that size is left alone. On ext4 a truncate to 0 marks the file for
      // auto_da_alloc: its close then starts writeback of every page written since, inside the
      // close call (0.25–0.35 s for the bench's 1 GiB on a loaded machine, BENCHMARKS.md), where
      // qemu-img, whose create truncates on a handle it closes before writing, pays nothing.
      if (n === (await file.size())) return;
      await dst.truncate(n);
      dstSize = n;
    },
    flush: async () => {},
    close: async () => {
      try {
        if (durable) await dst.flush();
      } finally {
        await direct?.close();
        await dst.close();
      }
    },
  };
  // The destination: a VirtualDisk for VHDX/VHD, the file itself for raw.
  let out: Pick<VirtualDisk, 'write' | 'writeFrom' | 'close'>;
  try {
    if (opts.format === 'VHDX') {
      const pss = opts.physicalSectorSize ?? (src.physicalSectorSize === 512 ? 512 : 4096);
      await createVhdx(file, {
        type: opts.type, virtualSize: size, logicalSectorSize: lss as 512 | 4096, physicalSectorSize: pss,
        ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      });
      out = await openVhdx(file);
    } else if (opts.format === 'VHD') {
      await createVhd(file, { type: opts.type, size, ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}) });
      out = await openVhd(file);
    } else {
      await file.truncate(0);
      await file.truncate(size);
      out = { write: (b, o) => file.write(b, o), writeFrom: (from, n, o) => copySlice(from, n, file, o), close: () => file.close() };
    }
  } catch (e) {
    await direct?.close().catch(() => undefined);
    await dst.close().catch(() => undefined); // no flush: the file is removed
    throw e;
  }

  const result: ConvertResult = { virtualSize: size, bytesRead: 0, bytesWritten: 0 };
  const granule = GRANULE;
  const zeros = new Uint8Array(granule);
  const isZero = (b: Uint8Array, at: number, n: number) =>
    Buffer.from(b.buffer, b.byteOffset + at, n).equals(Buffer.from(zeros.buffer, 0, n));
  const pool: Uint8Array[] = [];
  const take = () => pool.pop() ?? new Uint8Array(chunk);
  const srcEnd = src.virtualSize;

  /** A chunk ready to write: its data runs [start, end) within it, in `buf` or at `slice`. */
  interface Job { offset: number; length: number; runs: Array<[number, number]>; buf?: Uint8Array; slice?: FileSlice }
  /** A range stored at `slice`: its non-zero granules, found by the native scan (undefined without it). */
  const scanned = async (offset: number, length: number, slice: FileSlice): Promise<Job | undefined> => {
    const runs = await nonZeroRuns(slice.file, slice.offset, length, granule);
    if (!runs) return undefined;
    result.bytesRead += length;
    return { offset, length, slice, runs: runs.map(([s, e]) => [s - slice.offset, e - slice.offset]) };
  };
  const read = async (offset: number, length: number): Promise<Job> => {
    const inside = Math.min(length, srcEnd - offset);
    if (out.writeFrom && src.locate && inside === length) {
      const slice = await src.locate(offset, length);
      const job = slice && (await scanned(offset, length, slice));
      if (job) return job;
    }
    const buf = take();
    const b = buf.subarray(0, length);
    if (inside < length) b.fill(0, inside);
    // A raw source's last read may end inside a sector; every other read is sector aligned.
    await src.read(b.subarray(0, inside), offset);
    result.bytesRead += inside;
    const runs: Array<[number, number]> = [];
    for (let at = 0; at < length; at += granule) {
      const n = Math.min(granule, length - at);
      if (isZero(buf, at, n)) continue;
      const last = runs[runs.length - 1];
      if (last && last[1] === at) last[1] = at + n;
      else runs.push([at, at + n]);
    }
    return { offset, length, runs, buf };
  };
  /**
   * Writes a chunk's data runs (zero granules stay unwritten). Every run is issued at once,
   * before the next chunk's: the engines serve requests in arrival order, so blocks are
   * allocated in disk order while several writes are in flight.
   */
  const write = (j: Job): Promise<void> => {
    const pending = j.runs.map(([s, e]) => {
      result.bytesWritten += e - s;
      return j.slice ? out.writeFrom!({ file: j.slice.file, offset: j.slice.offset + s }, e - s, j.offset + s) : out.write(j.buf!.subarray(s, e), j.offset + s);
    });
    return Promise.all(pending).then(() => {
      if (j.buf) pool.push(j.buf);
      opts.onProgress?.(j.offset + j.length, size);
    });
  };

  const fileCopies = out.writeFrom !== undefined && src.locate !== undefined && nativeCopyStatus();
  const span = direct ? DIRECT_SPAN : FILE_SPAN;
  const reads: Array<Promise<Job>> = [];
  const writes: Array<Promise<void>> = [];
  // Oldest read → its write; at most `depth` writes pending.
  const pump = async (): Promise<void> => {
    const w = write(await reads.shift()!);
    w.catch(() => undefined); // awaited below; keeps an early failure from being "unhandled"
    writes.push(w);
    if (writes.length >= depth) await writes.shift();
  };
  const align = Math.max(lss, src.logicalSectorSize);
  let done = 0;
  try {
    for (let w = 0; w < size; w += WINDOW) {
      const wlen = Math.min(WINDOW, size - w);
      const statusLen = Math.min(wlen, roundDown(srcEnd - w, src.logicalSectorSize));
      const extents = statusLen > 0 ? await src.blockStatus(w, statusLen) : [];
      // The unaligned tail of a raw source (past the last whole sector) counts as data.
      if (statusLen < wlen && w + statusLen < srcEnd) extents.push({ offset: w + statusLen, length: srcEnd - w - statusLen, hole: false, zero: false });
      for (const e of extents) {
        if (e.hole || e.zero) continue;
        // Widen to sectors of both disks (a 512-byte source extent into a 4096-byte target).
        const start = Math.max(done, Math.floor(e.offset / align) * align);
        const end = Math.min(roundUp(e.offset + e.length, align), size);
        for (let o = start; o < end;) {
          let n = Math.min(end, (Math.floor(o / chunk) + 1) * chunk) - o;
          let p: Promise<Job> | undefined;
          // Stored in one piece of an OS file: scanned and copied by the kernel a span at a
          // time, not a chunk (no buffer to keep small; fewer, larger copies and scans).
          const wide = fileCopies ? Math.min(end, srcEnd, (Math.floor(o / span) + 1) * span) - o : 0;
          if (wide > n) {
            const slice = await src.locate!(o, wide);
            if (slice) {
              n = wide;
              const at = o, len = n;
              // No scan (a file without a descriptor): the span is copied whole, zeros and all.
              p = scanned(at, len, slice).then((j) => {
                if (j) return j;
                result.bytesRead += len;
                return { offset: at, length: len, slice, runs: [[0, len]] };
              });
            }
          }
          p ??= read(o, n);
          p.catch(() => undefined);
          reads.push(p);
          if (reads.length >= depth) await pump();
          o += n;
        }
        done = Math.max(done, end);
      }
    }
    while (reads.length > 0) await pump();
    while (writes.length > 0) await writes.shift();
    opts.onProgress?.(size, size);
  } catch (e) {
    await Promise.allSettled([...reads, ...writes]);
    await out.close().catch(() => undefined);
    throw e;
  }
  await out.close();
  return result;
}

function roundDown(n: number, to: number): number {
  return Math.max(0, Math.floor(n / to) * to);
}
