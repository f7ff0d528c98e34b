// The files of a VM's checkpoint tree on disk: which file is whose parent, and folding a file
// that no checkpoint freezes any more into its place (Remove-VMSnapshot). Offline: none of the
// files may be served.
import { rm } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { describeDiskFile, mergeDiskFile, setDiskParent } from '../storage/index.ts';

async function parentOf(path: string): Promise<string | null> {
  const p = (await describeDiskFile(path).catch(() => undefined))?.ParentPath;
  return p ? resolve(p) : null;
}

/**
 * `frozen` was a checkpoint's file; `inUse` are the files still named by the VM or other
 * checkpoints. With one child among them, the child (the newer data) is merged into `frozen`,
 * the child's own children re-linked to `frozen` (its content is the child's now), and
 * {from: child, to: frozen} returned for the caller to re-point references. With none, a file
 * vmhost made (`madeByUs` matches its name) is deleted; with several it stays, a branch point.
 * Known gap: a crash between the merge and the re-link leaves grandchildren pointing at the
 * deleted child (Set-VHD -ParentPath <frozen> -IgnoreIdMismatch repairs them).
 */
export async function foldIntoParent(frozen: string, inUse: string[], madeByUs: RegExp): Promise<{ from: string; to: string } | undefined> {
  const parents = new Map<string, string | null>();
  for (const f of inUse) parents.set(f, await parentOf(f));
  const children = inUse.filter((f) => f !== frozen && parents.get(f) === frozen);
  if (children.length === 1) {
    const child = children[0]!;
    const grandchildren = inUse.filter((f) => parents.get(f) === child);
    await mergeDiskFile(child, frozen);
    for (const g of grandchildren) await setDiskParent(g, frozen, true);
    return { from: child, to: frozen };
  }
  if (children.length === 0 && !inUse.includes(frozen) && madeByUs.test(basename(frozen, extname(frozen)))) await rm(frozen, { force: true });
  return undefined;
}
