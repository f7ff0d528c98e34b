// Set-VHD on a VHDX: change a system metadata item in place — the physical sector size, the
// page-83 disk identifier, or a differencing disk's parent locator (re-linking a chain after
// the parent moved). Like user metadata, the region image is re-laid and the sectors that
// differ are journaled in one log entry. None of these changes user data, so the
// DataWriteGuid (which children link to) stays.
import { GUID_PAGE83, GUID_PARENT_LOCATOR, GUID_PHYSICAL_SECTOR, invalidArg, put32 } from './format.ts';
import { isGuid, newGuid, normGuid, writeGuid } from './guid.ts';
import { encodeParentLocator, type MetadataItem, type ParentLocator } from './metadata.ts';
import { writeMetadataItems } from './metadata-write.ts';
import type { VhdxDisk } from './disk.ts';

export interface VhdxParamChange {
  physicalSectorSize?: 512 | 4096;
  /** New page-83 identifier (a GUID); `'new'` for a random one (Set-VHD -ResetDiskIdentifier). */
  diskId?: string;
  /**
   * Differencing only: locator entries to set; `parentLinkage` re-links to another parent's
   * DataWriteGuid (and drops parent_linkage2 unless `parentLinkage2` sets it: the GUID the
   * parent will have once a merge has written it).
   */
  parent?: { relativePath?: string; absoluteWin32Path?: string; volumePath?: string; parentLinkage?: string; parentLinkage2?: string };
}

export async function setVhdxParams(d: VhdxDisk, change: VhdxParamChange): Promise<void> {
  const ctx = { op: 'set', file: d.file.name };
  const pss = change.physicalSectorSize;
  if (pss !== undefined && pss !== 512 && pss !== 4096) throw invalidArg(`physical sector size must be 512 or 4096, not ${String(pss)}`, ctx);
  if (pss !== undefined && pss < d.logicalSectorSize) throw invalidArg(`physical sector size ${pss} is smaller than the logical sector size ${d.logicalSectorSize}`, ctx);
  const diskId = change.diskId === 'new' ? newGuid() : change.diskId;
  if (diskId !== undefined && !isGuid(diskId)) throw invalidArg(`not a GUID: ${diskId}`, ctx);
  if (change.parent && !d.params.hasParent) throw invalidArg('only a differencing disk has a parent locator', ctx);
  for (const g of [change.parent?.parentLinkage, change.parent?.parentLinkage2]) if (g !== undefined && !isGuid(g)) throw invalidArg(`not a GUID: ${g}`, ctx);

  await d.exclusive(async () => {
    const params = { ...d.params };
    const replace = (items: MetadataItem[], guid: string, data: Uint8Array) =>
      items.map((it) => (!it.isUser && it.guid === guid ? { ...it, data } : it));
    let items = d.items;
    if (pss !== undefined) {
      const b = new Uint8Array(4);
      put32(b, 0, pss);
      items = replace(items, GUID_PHYSICAL_SECTOR, b);
      params.physicalSectorSize = pss;
    }
    if (diskId !== undefined) {
      const b = new Uint8Array(16);
      writeGuid(b, 0, normGuid(diskId));
      items = replace(items, GUID_PAGE83, b);
      params.page83 = normGuid(diskId);
    }
    if (change.parent) {
      const entries = new Map(params.parentLocator!.entries);
      const p = change.parent;
      if (p.parentLinkage !== undefined) {
        entries.set('parent_linkage', `{${normGuid(p.parentLinkage)}}`);
        entries.delete('parent_linkage2');
      }
      if (p.parentLinkage2 !== undefined) entries.set('parent_linkage2', `{${normGuid(p.parentLinkage2)}}`);
      for (const [key, value] of [['relative_path', p.relativePath], ['volume_path', p.volumePath], ['absolute_win32_path', p.absoluteWin32Path]] as const) {
        if (value !== undefined) entries.set(key, value);
      }
      const locator: ParentLocator = { locatorType: params.parentLocator!.locatorType, entries };
      items = replace(items, GUID_PARENT_LOCATOR, encodeParentLocator(entries));
      params.parentLocator = locator;
    }
    await writeMetadataItems(d, items);
    d.params = params;
  });
}
