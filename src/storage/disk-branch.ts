// A new differencing leaf on top of an open, writable disk: what a checkpoint does to each
// disk of a VM, running or not (Hyper-V's .avhdx). Run with the disk idle and flushed (inside
// BlockServer.swapDisk for a served disk): the old leaf becomes the read-only parent of the
// new one, and writes go on in the new file.
//
// Ownership never lapses (chain-reopen.ts): the old leaf stays locked throughout, so another
// process can never open it for writing under the new child.
import { dirname, resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { HostFile } from './host-file.ts';
import { openDiskFile } from './open-disk.ts';
import { reopenChain } from './chain-reopen.ts';
import { leafFile } from './disk-info.ts';
import { localVolumeOps, type VolumeOps } from './volume-ops.ts';

export interface Branched {
  /** The disk to go on with: the new chain, or after a failure the old leaf reopened read-write. */
  disk: VirtualDisk;
  /** Its leaf file. */
  path: string;
  /** Why the branch failed (the child was removed): `disk` is then the old leaf. */
  error?: unknown;
}

/**
 * Close `current` (an open VHDX or VHD chain, read-write, idle) and open the chain on a new
 * differencing child at `childPath` (in the leaf's format; relative to the leaf's folder).
 * Refusals before anything is touched throw with `current` still open; a failure after it was
 * closed reopens the old leaf and reports the error beside it. Throws after closing only when
 * even that reopen fails. `ops` creates (and on failure deletes) the child file: the old leaf is
 * locked shared meanwhile, so another process — a CSV's coordinator — may read it as the parent.
 */
export async function branchDisk(current: VirtualDisk, childPath: string, ops: VolumeOps = localVolumeOps): Promise<Branched> {
  const file = leafFile(current);
  const ctx = { op: 'branch-disk', path: file?.name, child: childPath };
  if (current.format === 'RAW') throw new VmhostError('STORAGE_UNSUPPORTED', `${file?.name ?? 'the disk'} is a raw image: only VHDX and VHD disks take checkpoints`, ctx);
  if (current.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${file?.name ?? 'the disk'} is open read-only`, ctx);
  if (!(file instanceof HostFile)) throw new VmhostError('STORAGE_UNSUPPORTED', 'only a disk opened from a file by openDiskFile can branch', ctx);
  const leaf = resolve(file.name);
  const child = resolve(dirname(leaf), childPath);
  const format = current.format === 'VHDX' ? 'VHDX' : 'VHD';
  const r = await reopenChain(current, async () => {
    try {
      await ops.run({ Op: 'createDifferencing', Path: child, ParentPath: leaf, Spec: { format } });
      return await openDiskFile(child);
    } catch (e) {
      await ops.run({ Op: 'remove', Path: child }).catch(() => undefined); // the creation's failure is the one to report
      throw e;
    }
  }, {}, 'branch-disk');
  return r.error === undefined ? { disk: r.disk, path: child } : { disk: r.disk, path: leaf, error: r.error };
}

/**
 * The offline twin: a new differencing child at `childPath` (relative to the leaf's folder)
 * of a disk file nobody serves, in the file's own format. Returns the child's path.
 */
export async function branchDiskFile(leafPath: string, childPath: string, ops: VolumeOps = localVolumeOps): Promise<string> {
  const leaf = resolve(leafPath);
  const probe = await openDiskFile(leaf, { readOnly: true, noParent: true });
  const format = probe.format;
  await probe.close();
  if (format === 'RAW') throw new VmhostError('STORAGE_UNSUPPORTED', `${leaf} is a raw image: only VHDX and VHD disks take checkpoints`, { op: 'branch-disk', path: leaf });
  const child = resolve(dirname(leaf), childPath);
  await ops.run({ Op: 'createDifferencing', Path: child, ParentPath: leaf, Spec: { format } });
  return child;
}
