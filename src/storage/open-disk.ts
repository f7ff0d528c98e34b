// Opening a disk file by its content: VHDX ("vhdxfile" at offset 0), VHD ("conectix" footer
// at the end, or its copy at the start), else raw when the extension says so (.img, .raw,
// .iso). Differencing parents are found through the child's locators — relative to the
// child's directory first, then absolute, as Hyper-V does — and opened read-only; the
// returned VirtualDisk is the leaf of the chain and closes its parents with it. Also:
// resizing any opened disk.
//
// The rule for a parent, since a locator is chosen by whoever made the image: the first
// candidate path that exists is the parent; it must be a regular file (no device, FIFO or
// socket) and of the child's own format, and the engine then checks that it is the disk
// the child was made from (VHDX: DataWriteGuid = parent_linkage; VHD: unique id and time
// stamp) and bounds the chain (64 parents; VHD also names a cycle, VHDX meets the depth
// limit). A mismatch is refused, never "the next candidate": to read another file through
// its unallocated blocks, an image would have to name a disk of its own format whose
// 128-bit identity it already knows.
import { access, realpath } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import type { BlockFile } from '../blockio/block-file.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError, isVmhostError } from '../common/errors.ts';
import { openVhdx, resizeVhdx, type ParentLocatorPaths, type VhdxDisk } from '../vhd/index.ts';
import { openVhd, resizeVhd, resolveLocatorPath, VhdDisk } from '../vhd/vhd1/index.ts';
import { RawDisk } from './raw-disk.ts';
import { HostFile } from './host-file.ts';
import type { LockMode } from './file-lock.ts';

export type DetectedFormat = 'VHDX' | 'VHD' | 'RAW';

const RAW_EXTENSIONS = new Set(['.img', '.raw', '.iso', '.bin']);

async function readAscii(file: BlockFile, offset: number, n: number): Promise<string> {
  const b = new Uint8Array(n);
  await file.read(b, offset);
  return String.fromCharCode(...b);
}

/** Which engine a file needs, judged by its bytes (and, for raw, its extension). */
export async function detectFormat(file: BlockFile, path: string): Promise<DetectedFormat> {
  const size = await file.size();
  if (size >= 8 && (await readAscii(file, 0, 8)) === 'vhdxfile') return 'VHDX';
  if (size >= 512) {
    // Current footers are 512 bytes; very old writers left 511.
    for (const at of [size - 512, size - 511, 0]) {
      if (at >= 0 && (await readAscii(file, at, 8)) === 'conectix') return 'VHD';
    }
  }
  if (RAW_EXTENSIONS.has(extname(path).toLowerCase())) return 'RAW';
  throw new VmhostError('STORAGE_UNKNOWN_FORMAT', `${path} is neither VHDX nor VHD, and its extension does not mark it as a raw image (.img, .raw, .iso)`, { path });
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Candidate parent paths, in order, for a child at `childPath` (locator paths relative to it, or absolute). */
function parentCandidates(childPath: string, locatorPaths: Array<string | undefined>): string[] {
  const out: string[] = [];
  for (const p of locatorPaths) {
    if (!p) continue;
    const unix = p.replace(/\\/g, '/');
    const c = isAbsolute(unix) ? unix : resolveLocatorPath(resolve(childPath), unix);
    if (!out.includes(c)) out.push(c);
    // A Windows absolute path (C:/x/y.vhdx): also look for its file name beside the child.
    if (/^[A-Za-z]:\//.test(unix)) {
      const near = resolve(dirname(childPath), unix.split('/').pop()!);
      if (!out.includes(near)) out.push(near);
    }
  }
  return out;
}

/** The parent file a child's locator paths lead to: the first candidate that exists (STORAGE_PARENT_NOT_FOUND if none). */
export async function locateParent(child: string, locatorPaths: Array<string | undefined>): Promise<string> {
  const paths = parentCandidates(child, locatorPaths);
  for (const p of paths) if (await exists(p)) return p;
  throw new VmhostError('STORAGE_PARENT_NOT_FOUND', `parent of ${child} not found (tried ${paths.join(', ') || 'no locator'})`, { path: child });
}

export interface OpenDiskOptions {
  readOnly?: boolean;
  /** Requests up to this size use synchronous pread/pwrite (see host-file.ts); 0: always asynchronous. */
  syncMaxBytes?: number;
  /** The file alone, without its parents (metadata only: Get-VHD, Set-VHD, metadata work on broken chains too). */
  noParent?: boolean;
  /** The leaf's lock when not the one its mode implies (a merge reads the leaf and then deletes it: exclusive). */
  leafLock?: LockMode;
  /** Merge: the ancestor (an absolute path, compared after realpath) opened read-write and locked exclusive. */
  writableAncestor?: string;
}

/**
 * Open a VHDX, VHD or raw file (with its parents) as a VirtualDisk. Every file is locked
 * (file-lock.ts) before an engine reads it: the leaf exclusive when writable, else shared;
 * parents shared (read-only). A conflicting holder makes it VHD_IN_USE, and nothing was written.
 * A read-only open never replays a VHDX log: it is VHDX_LOG_REPLAY_NEEDED, naming what does.
 */
export async function openDiskFile(path: string, opts: OpenDiskOptions = {}): Promise<VirtualDisk> {
  // A parent left with a log to replay (a crash while a live merge wrote it: served-merge.ts)
  // is replayed when its chain is opened for writing: whoever writes the leaf owns the chain.
  for (let replayed = 0; ; replayed++) {
    try {
      return await openOnce(path, opts);
    } catch (e) {
      const parent = isVmhostError(e, 'VHDX_LOG_REPLAY_NEEDED') ? String(e.context['file'] ?? '') : '';
      if (opts.readOnly || parent === '' || resolve(parent) === resolve(path) || replayed >= MAX_REPLAYS) throw e;
      await (await openOnce(parent, { noParent: true })).close();
    }
  }
}

/** A chain has at most 64 parents (open.ts): each replayed at most once. */
const MAX_REPLAYS = 64;

async function openOnce(path: string, opts: OpenDiskOptions): Promise<VirtualDisk> {
  const readOnly = opts.readOnly ?? false;
  const fileOpts = opts.syncMaxBytes === undefined ? {} : { syncMaxBytes: opts.syncMaxBytes };
  const openParentFile = async (p: string): Promise<HostFile> => {
    const writable = opts.writableAncestor !== undefined && (await realpath(p)) === opts.writableAncestor;
    return lockedFile(p, { readOnly: !writable, regularOnly: true, ...fileOpts }, writable ? 'exclusive' : 'shared');
  };
  const file = await lockedFile(path, { readOnly, ...fileOpts }, opts.leafLock ?? (readOnly ? 'shared' : 'exclusive'));
  try {
    const format = await detectFormat(file, path);
    if (format === 'VHDX') {
      return await openVhdx(file, {
        readOnly,
        noParent: opts.noParent ?? false,
        openParent: async (loc: ParentLocatorPaths, ctx: { child: string }) =>
          openParentFile(await locateParent(ctx.child, [loc.relativePath, loc.absoluteWin32Path, loc.volumePath])),
      }).catch((e: unknown) => { throw replayNeeded(e); });
    }
    if (format === 'VHD') {
      return await openVhd(file, {
        readOnly,
        withoutParent: opts.noParent ?? false,
        // The engine opens the parent as a VHD itself: never a raw image or a VHDX.
        openParent: async (paths, ctx) => openParentFile(await locateParent(ctx.child, paths)),
      });
    }
    return await RawDisk.open(file, { readOnly });
  } catch (e) {
    await file.close().catch(() => undefined);
    throw e;
  }
}

/** Open and lock one file; closed again when the lock is refused (storage-internal: the facades use it). */
export async function lockedFile(path: string, opts: { readOnly: boolean; regularOnly?: boolean; syncMaxBytes?: number }, mode: LockMode): Promise<HostFile> {
  const f = HostFile.open(path, opts);
  try {
    await f.lock(mode);
    return f;
  } catch (e) {
    await f.close();
    throw e;
  }
}

/** The engine's "open it read-write first", with what does that here (a read-only open never writes the file). */
function replayNeeded(e: unknown): unknown {
  if (!isVmhostError(e, 'VHDX_LOG_REPLAY_NEEDED')) return e;
  const file = String(e.context['file'] ?? '');
  return new VmhostError('VHDX_LOG_REPLAY_NEEDED',
    `${file} has a log that must be replayed, and a read-only open does not write the file: a read-write open replays it (starting the VM that uses it, Mount-VHD without -ReadOnly, or a cmdlet that changes it, such as Resize-VHD or Optimize-VHD)`,
    e.context, { cause: e });
}

/** Change a disk's virtual size with its engine's resize (VHDX grow/shrink, VHD grow, raw truncate). */
export async function resizeDisk(disk: VirtualDisk, newSize: number): Promise<void> {
  if (disk.readOnly) throw new VmhostError('STORAGE_READ_ONLY', 'cannot resize a disk served read-only', { op: 'resize', size: newSize });
  if (disk instanceof RawDisk) return disk.resize(newSize);
  if (disk instanceof VhdDisk) return resizeVhd(disk, newSize);
  // The VHDX engine exports VhdxDisk as a type only, so it is recognised by its format.
  if (disk.format === 'VHDX') return resizeVhdx(disk as VhdxDisk, newSize);
  throw new VmhostError('STORAGE_UNSUPPORTED', `resizing a ${disk.format} disk is not supported`, { op: 'resize', format: disk.format });
}
