// Closing a served chain and opening the one to go on with (a checkpoint's new leaf, a chain
// re-linked by a merge) without the leaf's ownership ever lapsing: its exclusive lock turns
// shared, a second shared open ("keeper") holds it, the old chain closes (which retires its
// log, so it can be reopened or become a clean read-only parent), `next` opens its chain with
// the old leaf taken shared at most, and the new leaf's lock becomes exclusive once the keeper
// is gone. Another process never finds the old leaf unlocked, so it can never open it for
// writing in between. Used by disk-branch.ts and served-merge.ts.
import { resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { HostFile } from './host-file.ts';
import { leafFile } from './disk-info.ts';
import { lockedFile, openDiskFile, type OpenDiskOptions } from './open-disk.ts';

export interface Reopened {
  /** The disk to go on with: `next`'s, or after its failure the old leaf reopened. */
  disk: VirtualDisk;
  /** Why `next` failed: `disk` is then the old leaf. */
  error?: unknown;
}

/**
 * Close `current` (idle and flushed) and open `next()` in its place. Refusals before anything
 * is touched throw with `current` still open; when `next` fails, the old leaf is reopened
 * (with `reopen`'s options) and the failure reported beside it. Throws after the close only
 * when even that reopen fails.
 */
export async function reopenChain(current: VirtualDisk, next: () => Promise<VirtualDisk>, reopen: OpenDiskOptions, op: string): Promise<Reopened> {
  const file = leafFile(current);
  if (!(file instanceof HostFile)) throw new VmhostError('STORAGE_UNSUPPORTED', 'only a disk opened from a file by openDiskFile can be reopened under its clients', { op });
  const leaf = resolve(file.name);
  await file.lock('shared');
  const keeper = await lockedFile(leaf, { readOnly: true }, 'shared').catch(async (e: unknown) => {
    await file.lock('exclusive');
    throw e;
  });
  let out: Reopened;
  try {
    await current.close();
    try {
      out = { disk: await next() };
    } catch (error) {
      try {
        out = { disk: await openDiskFile(leaf, { ...reopen, leafLock: 'shared' }), error };
      } catch (e) {
        throw new VmhostError('STORAGE_IO_ERROR', `${op} of ${leaf} failed (${(error as Error).message}) and the file could not be reopened: ${(e as Error).message}`, { op, path: leaf }, { cause: e });
      }
    }
  } finally {
    await keeper.close();
  }
  await (leafFile(out.disk) as HostFile).lock('exclusive');
  return out;
}
