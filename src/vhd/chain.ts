// Differencing chains: the parent locator's paths, the caller-supplied resolver that turns
// them into a BlockFile, and the linkage check (parent's DataWriteGuid must equal the
// child's parent_linkage, 2.6.2.6). The engine itself never looks up files.
import type { BlockFile } from '../blockio/block-file.ts';
import { VmhostError } from '../common/errors.ts';
import type { ParentLocator } from './metadata.ts';
import { normGuid } from './guid.ts';

export interface ParentLocatorPaths {
  parentLinkage: string;
  parentLinkage2?: string;
  relativePath?: string;
  volumePath?: string;
  absoluteWin32Path?: string;
  /** Every key/value of the locator as stored. */
  entries: Record<string, string>;
}

/** Finds and opens the parent file. Return a writable BlockFile only when the parent will be written (merge). */
export type ParentResolver = (locator: ParentLocatorPaths, ctx: { child: string; depth: number }) => Promise<BlockFile>;

export const MAX_CHAIN_DEPTH = 64;

export function locatorPaths(pl: ParentLocator): ParentLocatorPaths {
  const get = (k: string) => pl.entries.get(k);
  const out: ParentLocatorPaths = { parentLinkage: get('parent_linkage') ?? '', entries: Object.fromEntries(pl.entries) };
  const l2 = get('parent_linkage2'), rp = get('relative_path'), vp = get('volume_path'), ap = get('absolute_win32_path');
  if (l2 !== undefined) out.parentLinkage2 = l2;
  if (rp !== undefined) out.relativePath = rp;
  if (vp !== undefined) out.volumePath = vp;
  if (ap !== undefined) out.absoluteWin32Path = ap;
  return out;
}

/** Throws VHDX_PARENT_MISMATCH unless the parent's DataWriteGuid matches the child's linkage. */
export function checkLinkage(paths: ParentLocatorPaths, parentDataWriteGuid: string, child: string, parent: string): void {
  const want = [paths.parentLinkage, paths.parentLinkage2].filter((x): x is string => !!x).map(normGuid);
  if (!want.includes(normGuid(parentDataWriteGuid))) {
    throw new VmhostError('VHDX_PARENT_MISMATCH', `parent ${parent} was modified or is not the parent of ${child} (DataWriteGuid ${parentDataWriteGuid} ≠ parent_linkage ${paths.parentLinkage})`, {
      file: child, parent, structure: 'parent locator',
    });
  }
}
