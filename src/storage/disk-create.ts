// New disk files: New-VHD (fixed, dynamic, differencing), Convert-VHD's destination, and the
// daemon's New-VM -NewVHDPath. A new file is created O_EXCL, 0600, locked exclusive while it
// is written, and removed again if anything fails. The format is the caller's (by extension).
// Convert-VHD writes beside its destination under a hidden temporary name and links the file
// in only once it is durable: its copy skips the engines' ordering flushes (vhd/convert.ts), so
// a crash mid-copy must leave nothing at the destination's name.
import { randomBytes } from 'node:crypto';
import { link, lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { convertDisk, createVhdx } from '../vhd/index.ts';
import { createVhd } from '../vhd/vhd1/index.ts';
import { argError, relativeLocator } from './disk-args.ts';
import { isVhdx } from './disk-info.ts';
import { HostFile } from './host-file.ts';
import { openDiskFile } from './open-disk.ts';

export interface NewDiskSpec {
  format: 'VHDX' | 'VHD';
  type: 'Fixed' | 'Dynamic';
  size: number;
  blockSize?: number;
  logicalSectorSize?: 512 | 4096;
  physicalSectorSize?: 512 | 4096;
}

/** Runs `fn` on `path` created new and locked; the file is removed if `fn` (or the creation) fails. */
async function creating<T>(path: string, fn: (f: HostFile) => Promise<T>): Promise<T> {
  const f = HostFile.create(path);
  try {
    await f.lock('exclusive');
    const r = await fn(f);
    await f.close(); // convertDisk closes (after flushing) its destination itself; close is idempotent
    return r;
  } catch (e) {
    await f.close().catch(() => undefined);
    await rm(path, { force: true });
    throw e;
  }
}

/**
 * `creating` under a hidden name beside `path` (same directory: same file system), then the
 * finished, flushed file linked in at `path` (link(2): never over a file that appeared
 * meanwhile; on a file system without hard links, renamed over a name found free just before),
 * the temporary name removed and the directory flushed. A crash before the link leaves only the
 * hidden name (`.<name>.converting-<random>`). An existing `path` is ALREADY_EXISTS, before the
 * work and after it.
 */
async function creatingAside<T>(path: string, fn: (f: HostFile) => Promise<T>): Promise<T> {
  const exists = (cause?: unknown) => new VmhostError('ALREADY_EXISTS', `${path}: the file already exists`, { path, op: 'create-disk' }, { cause });
  const free = async () => {
    if (await lstat(path).then(() => true, () => false)) throw exists();
  };
  await free();
  const tmp = join(dirname(path), `.${basename(path)}.converting-${randomBytes(6).toString('hex')}`);
  const r = await creating(tmp, fn);
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw exists(e);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    await free();
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return r;
}

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };

export async function createDiskFile(path: string, s: NewDiskSpec): Promise<void> {
  await creating(path, async (f) => {
    if (s.format === 'VHDX') {
      await createVhdx(f, {
        type: s.type, virtualSize: s.size, ...opt('blockSize', s.blockSize),
        ...opt('logicalSectorSize', s.logicalSectorSize), ...opt('physicalSectorSize', s.physicalSectorSize),
      });
    } else {
      await createVhd(f, { type: s.type, size: s.size, ...opt('blockSize', s.blockSize) });
    }
    await f.flush();
  });
}

/** A differencing disk of `parentPath` (an absolute real path), in the parent's format, which must be `format`. */
export async function createDifferencingFile(path: string, parentPath: string, s: { format: 'VHDX' | 'VHD'; size?: number; blockSize?: number; logicalSectorSize?: number; physicalSectorSize?: 512 | 4096 }): Promise<void> {
  const parent = await openDiskFile(parentPath, { readOnly: true });
  try {
    if (parent.format !== s.format) throw argError('ParentPath', `the parent is a ${parent.format} file; a ${s.format} child needs a ${s.format} parent`);
    if (s.size !== undefined && s.size !== parent.virtualSize) {
      throw argError('SizeBytes', `a differencing disk has its parent's size (${parent.virtualSize}); omit -SizeBytes or give that size`);
    }
    if (s.logicalSectorSize !== undefined && s.logicalSectorSize !== parent.logicalSectorSize) throw argError('LogicalSectorSizeBytes', `must equal the parent's (${parent.logicalSectorSize})`);
    await creating(path, async (f) => {
      if (isVhdx(parent)) {
        await createVhdx(f, {
          type: 'Differencing', ...opt('blockSize', s.blockSize), ...opt('physicalSectorSize', s.physicalSectorSize),
          parent: {
            dataWriteGuid: parent.dataWriteGuid, virtualSize: parent.virtualSize, logicalSectorSize: parent.logicalSectorSize,
            physicalSectorSize: parent.physicalSectorSize, relativePath: relativeLocator(path, parentPath), absoluteWin32Path: parentPath,
          },
        });
      } else {
        await createVhd(f, { type: 'Differencing', ...opt('blockSize', s.blockSize), parent: { disk: parent, path: parentPath, relativePath: relativeLocator(path, parentPath) } });
      }
      await f.flush();
    });
  } finally {
    await parent.close().catch(() => undefined);
  }
}

/** New-VM -NewVHDPath: a dynamic disk named .vhdx or .vhd; it must not exist. */
export async function createDynamicDisk(path: string, virtualSize: number): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.vhdx' && ext !== '.vhd') {
    throw new VmhostError('INVALID_ARGUMENT', `${path}: a new virtual disk must be named .vhdx or .vhd`, { path, op: 'create-disk' });
  }
  try {
    await createDiskFile(path, { format: ext === '.vhdx' ? 'VHDX' : 'VHD', type: 'Dynamic', size: virtualSize });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) {
      throw new VmhostError(code === 'EEXIST' ? 'ALREADY_EXISTS' : 'INVALID_ARGUMENT', `${path}: ${code === 'EEXIST' ? 'the file already exists' : (e as Error).message}`, { path, op: 'create-disk' });
    }
    throw e;
  }
}

export interface ConvertSpec {
  format: 'VHDX' | 'VHD' | 'RAW';
  /** Default: the source's type (Dynamic for a differencing disk or a raw image). */
  type?: 'Fixed' | 'Dynamic';
  blockSize?: number;
  logicalSectorSize?: 512 | 4096;
  onProgress?: (done: number, total: number) => void;
  /** Checks the open source before anything is created (sizes the destination format allows). */
  check?: (src: VirtualDisk) => void;
}

/** Convert-VHD: the source chain read-only (locked shared: a file a VM writes is refused), copied into a new file (`creatingAside`). */
export async function convertDiskFile(srcPath: string, destPath: string, s: ConvertSpec): Promise<void> {
  const src = await openDiskFile(srcPath, { readOnly: true });
  try {
    s.check?.(src);
    const type = s.type ?? (src.type === 'Fixed' && src.format !== 'RAW' ? 'Fixed' : 'Dynamic');
    await creatingAside(destPath, async (f) => {
      await convertDisk(src, f, { format: s.format, type, ...opt('blockSize', s.blockSize), ...opt('logicalSectorSize', s.logicalSectorSize), ...opt('onProgress', s.onProgress) });
    });
  } finally {
    await src.close().catch(() => undefined);
  }
}
