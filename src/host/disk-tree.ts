// The files of a VM's checkpoint tree on disk: which file is whose parent, and what removing
// a checkpoint does to the file it froze (Remove-VMSnapshot): merged with its one child, left
// as a branch point, or deleted. The merge itself runs live in the block server when the
// child is in a running VM's served chain (storage/served-merge.ts), else offline here.
import { basename, extname } from 'node:path';
import { localVolumeOps, mergeDiskFile, setDiskParent, type VolumeOps } from '../storage/index.ts';

/** What removing a checkpoint does to a file it froze. */
export type Fold =
  /** Merge `child` (the newer data) into the frozen file; `grandchildren` then hang from the frozen file. */
  | { kind: 'merge'; child: string; grandchildren: string[] }
  /** Nothing names it any more and vmhost made it. */
  | { kind: 'delete' }
  /** A branch point (several children), a file still named, or the user's own file. */
  | { kind: 'keep' };

/**
 * `frozen` was a checkpoint's file; `inUse` are the files still named by the VM or other
 * checkpoints. With one child among them it is merged; with none, a file vmhost made
 * (`madeByUs` matches its name) is deleted; with several it stays, a branch point.
 * `parentOf` must answer for served files too (from the open chain: they are locked), and
 * throw rather than guess: a wrong "no children" would drop a checkpoint without its merge.
 */
export async function planFold(frozen: string, inUse: string[], madeByUs: RegExp, parentOf: (file: string) => Promise<string | null>): Promise<Fold> {
  const parents = new Map<string, string | null>();
  for (const f of inUse) parents.set(f, await parentOf(f));
  const children = inUse.filter((f) => f !== frozen && parents.get(f) === frozen);
  if (children.length === 1) {
    const child = children[0]!;
    return { kind: 'merge', child, grandchildren: inUse.filter((f) => parents.get(f) === child) };
  }
  if (children.length === 0 && !inUse.includes(frozen) && madeByUs.test(basename(frozen, extname(frozen)))) return { kind: 'delete' };
  return { kind: 'keep' };
}

/**
 * The offline merge of a planned fold: the child into the frozen file, the child's own
 * children re-linked to the frozen file (its content is the child's now), `commit` (the
 * caller re-points its references), and only then the child deleted, so a crash at any step
 * leaves every reference naming a file that exists and reads right. `ops` deletes the child (volume-ops.ts).
 */
export async function foldOffline(
  frozen: string, fold: { child: string; grandchildren: string[] }, commit: () => Promise<void>, onProgress?: (done: number, total: number) => void, ops: VolumeOps = localVolumeOps,
): Promise<void> {
  await mergeDiskFile(fold.child, frozen, undefined, { keepMerged: true, ...(onProgress ? { onProgress } : {}) });
  await relinkAll(fold.grandchildren, frozen);
  await commit();
  await ops.run({ Op: 'remove', Path: fold.child });
}

/** Re-link files to a new parent (the one their parent was merged into). */
export async function relinkAll(files: string[], parent: string): Promise<void> {
  for (const g of files) await setDiskParent(g, parent, true);
}
