// Where a file holds data and where it has holes, without reading the holes. Node has no
// lseek(SEEK_DATA/SEEK_HOLE), so a small Node-API addon (native/vmhost-holes.c, built by
// scripts/build-holes.sh into .cache/bin/<hash of its source>/) does the seeking. Without the
// addon, or with VMHOST_NO_HOLE_MAP=1, every range is reported as data: callers then read
// the zeros, which is slower but never wrong. The same addon does flock(2) (`nativeLock`) and
// file-to-file copies (file-copy.ts).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlockFile } from './block-file.ts';

/** A run of a file that is either data or a hole (reads as zeros, takes no space). */
export interface FileExtent {
  offset: number;
  length: number;
  data: boolean;
}

export interface HolesAddon {
  mapData(fd: number, offset: number, length: number): number[];
  /** The first data byte in [offset, offset+length), -1 when it is all hole: one lseek(SEEK_DATA). */
  firstData(fd: number, offset: number, length: number): number;
  lockFd(fd: number, exclusive: boolean): boolean;
  /** file-copy.ts: copy_file_range(2) off the event loop; -1 when the kernel cannot copy between these files. */
  copyRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number>;
  /** file-copy.ts: [start, end, …] of the granules holding a non-zero byte, read off the event loop. */
  nonZeroRuns(fd: number, offset: number, length: number, granule: number): Promise<number[]>;
  /** file-copy.ts: pread into an aligned buffer, pwrite to an O_DIRECT descriptor (offOut and length 4 KiB multiples); resolves to length. */
  copyDirect(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number>;
  /** file-copy.ts: fallocate(KEEP_SIZE) off the event loop: the range allocated, reading as zeros; false when the file system cannot. */
  reserve(fd: number, offset: number, length: number): Promise<boolean>;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE) off the event loop; false when the file system cannot. */
  punchHole(fd: number, offset: number, length: number): Promise<boolean>;
}

// The bundled CLI (dist/cli/) sits at the same depth as src/blockio, so the repo resolves alike.
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let addon: HolesAddon | undefined;
let loadError: string | undefined;
let loaded = false;

/** The addon build-holes.sh made from the current source, or undefined (`holeMapStatus` says why). */
export function loadNativeAddon(): HolesAddon | undefined {
  if (loaded) return addon;
  loaded = true;
  try {
    const src = readFileSync(join(repo, 'native/vmhost-holes.c'));
    const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
    const path = join(process.env.VMHOST_BIN_CACHE ?? join(repo, '.cache/bin'), hash, 'vmhost-holes.node');
    if (!existsSync(path)) loadError = `${path} is not built (scripts/build-holes.sh)`;
    else addon = createRequire(import.meta.url)(path) as HolesAddon;
  } catch (e) {
    loadError = e instanceof Error ? e.message : String(e);
  }
  return addon;
}

/**
 * flock(2) without waiting, through the same addon (Node has no flock either): true when taken,
 * false when a conflicting lock is held elsewhere; undefined without the addon (or with
 * VMHOST_NO_NATIVE_LOCK=1), for the caller's fallback (storage/file-lock.ts runs flock(1)).
 */
export function nativeLock(fd: number, exclusive: boolean): boolean | undefined {
  const a = process.env.VMHOST_NO_NATIVE_LOCK === '1' ? undefined : loadNativeAddon();
  return a?.lockFd(fd, exclusive);
}

/** Whether holes are found natively, and if not, why (for tests and diagnostics). */
export function holeMapStatus(): { native: boolean; reason?: string } {
  if (process.env.VMHOST_NO_HOLE_MAP === '1') return { native: false, reason: 'VMHOST_NO_HOLE_MAP=1' };
  return loadNativeAddon() ? { native: true } : { native: false, reason: loadError ?? 'unknown' };
}

/**
 * The data and holes of [offset, offset+length) of the open file `fd`, covering the range
 * exactly, in order. Bytes past the end of the file are a hole. Synchronous: two lseek calls
 * per data run, answered from the file system's extent tree without touching the data.
 */
export function mapFd(fd: number, offset: number, length: number): FileExtent[] {
  if (length === 0) return [];
  const a = process.env.VMHOST_NO_HOLE_MAP === '1' ? undefined : loadNativeAddon();
  if (!a) return [{ offset, length, data: true }];
  const runs = a.mapData(fd, offset, length);
  const out: FileExtent[] = [];
  let at = offset;
  for (let i = 0; i < runs.length; i += 2) {
    const s = runs[i]!, e = runs[i + 1]!;
    if (s > at) out.push({ offset: at, length: s - at, data: false });
    out.push({ offset: s, length: e - s, data: true });
    at = e;
  }
  if (at < offset + length) out.push({ offset: at, length: offset + length - at, data: false });
  return out;
}

/**
 * Where the first byte of data in [offset, offset+length) of the open file `fd` is, -1 when the
 * range is all hole (past the end of the file included). Without the addon: `offset` (all
 * data, as `mapFd` says). Synchronous, one lseek: for "does this read hold any data?".
 */
export function firstDataFd(fd: number, offset: number, length: number): number {
  if (length === 0) return -1;
  const a = process.env.VMHOST_NO_HOLE_MAP === '1' ? undefined : loadNativeAddon();
  return a ? a.firstData(fd, offset, length) : offset;
}

/**
 * Make [offset, offset+length) of an OS file a hole (reads as zeros, takes no space, size
 * unchanged). False when it cannot (no addon, VMHOST_NO_HOLE_MAP=1, no descriptor, a file
 * system without hole punching): the caller writes zeros instead.
 */
export async function punchHole(file: BlockFile, offset: number, length: number): Promise<boolean> {
  const a = process.env.VMHOST_NO_HOLE_MAP === '1' ? undefined : loadNativeAddon();
  if (!a || file.fd === undefined || length === 0) return false;
  return a.punchHole(file.fd, offset, length);
}

/** `file.mapData` when the file has it, else the whole range as data. */
export async function mapFileData(file: BlockFile, offset: number, length: number): Promise<FileExtent[]> {
  if (length === 0) return [];
  return file.mapData ? file.mapData(offset, length) : [{ offset, length, data: true }];
}
