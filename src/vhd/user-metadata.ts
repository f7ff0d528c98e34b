// User metadata items (2.6.1, IsUser = 1): list, read, set and remove. A change re-lays the
// metadata region image and journals the sectors that differ in one log entry.
import { invalidArg } from './format.ts';
import { isGuid, normGuid } from './guid.ts';
import type { MetadataItem } from './metadata.ts';
import { writeMetadataItems } from './metadata-write.ts';
import type { VhdxDisk } from './disk.ts';

export interface UserMetadataItem {
  guid: string;
  data: Uint8Array;
  isVirtualDisk: boolean;
  isRequired: boolean;
}

export function listUserMetadata(d: VhdxDisk): UserMetadataItem[] {
  return d.items.filter((i) => i.isUser).map((i) => ({ guid: i.guid, data: i.data.slice(), isVirtualDisk: i.isVirtualDisk, isRequired: i.isRequired }));
}

export function getUserMetadata(d: VhdxDisk, guid: string): Uint8Array | undefined {
  const g = normGuid(guid);
  return d.items.find((i) => i.isUser && i.guid === g)?.data.slice();
}

/** Set (or with `data` undefined, remove) a user item. */
export async function setUserMetadata(
  d: VhdxDisk, guid: string, data: Uint8Array | undefined, opts: { isVirtualDisk?: boolean; isRequired?: boolean } = {},
): Promise<void> {
  if (!isGuid(guid)) throw invalidArg(`not a GUID: ${guid}`, { file: d.file.name });
  const g = normGuid(guid);
  if (data && data.length > 1024 * 1024) throw invalidArg('user metadata items are limited to 1 MiB', { file: d.file.name });
  await d.exclusive(async () => {
    const items: MetadataItem[] = d.items.filter((i) => !(i.isUser && i.guid === g));
    if (data) items.push({ guid: g, data: data.slice(), isUser: true, isVirtualDisk: opts.isVirtualDisk ?? false, isRequired: opts.isRequired ?? false });
    if (items.filter((i) => i.isUser).length > 1024) throw invalidArg('at most 1024 user metadata items', { file: d.file.name });
    await writeMetadataItems(d, items);
  });
}
