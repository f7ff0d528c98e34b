// A mirror target that is a local disk file (Move-VMStorage): created new, shaped like the
// served disk (size, sector sizes), opened writable and locked; discarded means closed and
// deleted. Without a parent it is a dynamic disk of the served disk's format that the flattened
// chain is copied into; with one, a differencing disk over the copy of the served leaf's
// parent, which takes the leaf's own ranges (a chain moved file by file). `createFileTarget`:
// a plain file of a known size that another host's file arrives in as its data runs
// (file-copy.ts `sendFileData` over a disk stream: a frozen parent, a checkpoint's memory).
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { createDifferencingFile, createDiskFile } from './disk-create.ts';
import type { MirrorTarget } from './mirror.ts';
import { openDiskFile } from './open-disk.ts';
import { openNodeFile } from '../blockio/index.ts';
import { RawDisk } from './raw-disk.ts';

/** What the new file takes from the served disk: the disk itself, or (another host's) its description. */
export type DiskShape = Pick<VirtualDisk, 'format' | 'type' | 'virtualSize' | 'logicalSectorSize' | 'physicalSectorSize'>;

export async function createMirrorFile(served: DiskShape, path: string, parentPath?: string): Promise<MirrorTarget> {
  const file = resolve(path);
  const format = served.format === 'VHD' ? 'VHD' : 'VHDX';
  const physicalSectorSize = served.physicalSectorSize === 512 ? 512 : 4096;
  if (parentPath === undefined) {
    // Dynamic whatever the source is: the copy writes only what holds data.
    const logicalSectorSize = served.logicalSectorSize === 4096 ? 4096 : 512;
    await createDiskFile(file, { format, type: 'Dynamic', size: served.virtualSize, ...(format === 'VHDX' ? { logicalSectorSize, physicalSectorSize } : {}) });
  } else {
    if (served.type !== 'Differencing') throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${file}: only a differencing disk is mirrored over a parent`, { op: 'mirror', path: file });
    await createDifferencingFile(file, resolve(parentPath), { format, ...(format === 'VHDX' ? { physicalSectorSize } : {}) });
  }
  let disk: VirtualDisk;
  try {
    disk = await openDiskFile(file);
  } catch (e) {
    await rm(file, { force: true });
    throw e;
  }
  return fileTarget(disk, file);
}

/** A new file of `size` bytes (refused when it exists), written as a raw disk: the bytes land where they are written, the rest are holes. */
export async function createFileTarget(path: string, size: number): Promise<MirrorTarget> {
  const file = resolve(path);
  const f = await openNodeFile(file, { create: true }).catch((e: NodeJS.ErrnoException) => {
    throw new VmhostError(e.code === 'EEXIST' ? 'ALREADY_EXISTS' : 'IO_ERROR', `cannot create ${file}: ${e.message}`, { op: 'mirror', path: file }, { cause: e });
  });
  let disk: VirtualDisk;
  try {
    await f.truncate(size);
    disk = await RawDisk.open(f);
  } catch (e) {
    await f.close().catch(() => undefined);
    await rm(file, { force: true });
    throw e;
  }
  return fileTarget(disk, file);
}

/** A target that is a file of its own: discarding it closes the disk and deletes the file. */
function fileTarget(disk: VirtualDisk, file: string): MirrorTarget {
  return {
    disk,
    path: file,
    discard: async () => {
      await disk.close().catch(() => undefined);
      await rm(file, { force: true });
    },
  };
}
