// Creating a new, empty disk file for a VM (New-VM -NewVHDPath): the host's one way to make
// a disk, so the daemon never reaches into a format engine itself. The format follows the
// file name (.vhdx or .vhd), as Hyper-V decides it; the file is dynamic, like New-VM's.
import { rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { NodeFile } from '../blockio/index.ts';
import { createVhdx } from '../vhd/index.ts';
import { createVhd } from '../vhd/vhd1/index.ts';

/** Create `path` as a dynamic disk of `virtualSize` bytes; it must not exist. Nothing is left behind on failure. */
export async function createDynamicDisk(path: string, virtualSize: number): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.vhdx' && ext !== '.vhd') {
    throw new VmhostError('INVALID_ARGUMENT', `${path}: a new virtual disk must be named .vhdx or .vhd`, { path, op: 'create-disk' });
  }
  const f = await NodeFile.open(path, { create: true }).catch((e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    throw new VmhostError(code === 'EEXIST' ? 'ALREADY_EXISTS' : 'INVALID_ARGUMENT', `${path}: ${code === 'EEXIST' ? 'the file already exists' : (e as Error).message}`, { path, op: 'create-disk' });
  });
  try {
    if (ext === '.vhdx') await createVhdx(f, { type: 'Dynamic', virtualSize });
    else await createVhd(f, { type: 'Dynamic', size: virtualSize });
    await f.flush();
    await f.close();
  } catch (e) {
    await f.close().catch(() => undefined);
    await rm(path, { force: true });
    throw e;
  }
}
