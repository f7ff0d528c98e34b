// A mirror target that is a local disk file (Move-VMStorage): created new beside nothing else,
// shaped like the served disk (size, sector sizes), opened writable and locked; discarded means
// closed and deleted. 'all' makes a dynamic disk the flattened chain is copied into; 'own' a
// differencing disk over the copy of the served leaf's parent (a chain moved file by file).
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { createDifferencingFile, createDiskFile } from './disk-create.ts';
import type { MirrorTarget } from './mirror.ts';
import { openDiskFile } from './open-disk.ts';

export async function createMirrorFile(served: VirtualDisk, path: string, parentPath?: string): Promise<MirrorTarget> {
  const file = resolve(path);
  const format = served.format === 'VHD' ? 'VHD' : 'VHDX';
  const physicalSectorSize = served.physicalSectorSize === 512 ? 512 : 4096;
  if (parentPath === undefined) {
    const logicalSectorSize = served.logicalSectorSize === 4096 ? 4096 : 512;
    await createDiskFile(file, { format: 'VHDX', type: 'Dynamic', size: served.virtualSize, logicalSectorSize, physicalSectorSize });
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
  return {
    disk,
    path: file,
    discard: async () => {
      await disk.close().catch(() => undefined);
      await rm(file, { force: true });
    },
  };
}
