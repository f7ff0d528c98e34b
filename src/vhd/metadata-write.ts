// Rewriting the metadata region: the new image is laid out whole, and only the 4 KiB sectors
// that differ from the current image are journaled, in one log entry. Shared by user metadata
// items and Set-VHD's parameter changes. Call inside the disk's exclusive section.
import { encodeMetadataRegion, type MetadataItem } from './metadata.ts';
import { SectorTx } from './tx.ts';
import type { VhdxDisk } from './disk.ts';

export async function writeMetadataItems(d: VhdxDisk, items: MetadataItem[]): Promise<void> {
  const img = encodeMetadataRegion(items, d.metadataRegion.length);
  const tx = new SectorTx();
  for (let o = 0; o < img.length; o += 4096) {
    const a = img.subarray(o, o + 4096), b = d.metadataImage.subarray(o, o + 4096);
    if (!a.every((v, i) => v === b[i])) tx.put(d.metadataRegion.fileOffset + o, a.slice());
  }
  await d.beginWrite(false);
  await d.commit(tx);
  d.items = items;
}
