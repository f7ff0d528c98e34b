// The sha256 of a virtual disk's whole content as a guest sees it (through our engine: VHDX,
// VHD or raw, chains followed), to compare a backup's or a replica's disk with the source's.
import { createHash } from 'node:crypto';
import { openDiskFile } from '../../src/storage/index.ts';

export async function sha256OfDisk(path: string): Promise<string> {
  const d = await openDiskFile(path, { readOnly: true });
  try {
    const h = createHash('sha256');
    const buf = new Uint8Array(4 << 20);
    for (let o = 0; o < d.virtualSize; o += buf.length) {
      await d.read(buf, o);
      h.update(buf);
    }
    return h.digest('hex');
  } finally {
    await d.close();
  }
}
