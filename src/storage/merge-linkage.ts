// A merge writes into a parent that a child links to by the parent's DataWriteGuid, which the
// first write changes. To keep the chain openable whatever moment a crash picks, the child's
// locator first names the parent's current GUID as parent_linkage and the GUID the merge will
// install as parent_linkage2 (MS-VHDX 2.6.2.6.3 provides it for this); the target's open disk
// is then told to install exactly that GUID (VhdxDisk.presetDataWriteGuid). Used by the
// offline merge (disk-change.ts) and the live one (served-merge.ts).
import type { VhdxDisk } from '../vhd/index.ts';
import { setVhdxParams } from '../vhd/index.ts';
import { newGuid } from '../vhd/guid.ts';
import { openDiskFile } from './open-disk.ts';
import type { LockMode } from './file-lock.ts';

export interface Relink {
  relativePath?: string;
  absoluteWin32Path?: string;
  parentLinkage: string;
  parentLinkage2?: string;
}

/** Rewrite one VHDX file's parent locator, the file opened alone (`lock`: shared while a keeper holds the leaf). */
export async function relinkFile(path: string, parent: Relink, lock: LockMode = 'exclusive'): Promise<void> {
  const d = await openDiskFile(path, { noParent: true, leafLock: lock });
  try {
    await setVhdxParams(d as VhdxDisk, { parent });
  } finally {
    await d.close();
  }
}

/**
 * Before `target` is opened to take `child`'s data: link the child to the target's GUID now
 * and to the one the merge will install. Returns that GUID, for presetDataWriteGuid.
 */
export async function prepareMergeLinkage(child: string, target: string, lock: LockMode = 'exclusive'): Promise<string> {
  // Read-write, alone: a log left by an earlier crash is replayed, nothing else is written.
  const t = await openDiskFile(target, { noParent: true });
  const current = (t as VhdxDisk).dataWriteGuid;
  await t.close();
  const next = newGuid();
  await relinkFile(child, { parentLinkage: current, parentLinkage2: next }, lock);
  return next;
}
