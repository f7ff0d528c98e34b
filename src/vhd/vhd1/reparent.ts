// Set-VHD -ParentPath on a differencing VHD: rewrite the parent locators (W2ru relative,
// W2ku absolute, MacX file URL, and the deprecated Wi2r/Wi2k if present) and the header's
// parent name in place, optionally re-linking to another parent's unique id and time stamp.
// Locator data is rewritten inside the space the file already reserves for it; a path that
// does not fit is refused (VHD_UNSUPPORTED). Order: locator data, flush, header, flush.
import { encodeDynamicHeader, type DynamicHeader, type LocatorEntry } from './dynamic-header.ts';
import { Platform, encodeUtf16le, fileUrl, baseName } from './parent-locator.ts';
import { invalidArgument, vhdError } from './errors.ts';
import { SECTOR } from './units.ts';
import type { VhdDisk } from './vhd-disk.ts';

export interface VhdParentChange {
  /** Absolute path of the parent (W2ku, MacX, Wi2k). */
  path: string;
  /** Path relative to the child's directory (W2ru, Wi2r). */
  relativePath: string;
  /** Link to this parent identity instead of the recorded one (Set-VHD -IgnoreIdMismatch). */
  relink?: { uniqueId: Uint8Array; timeStamp: number };
}

/** Bytes a locator may hold: Windows writes the space in bytes, the specification in sectors. */
function capacity(l: LocatorEntry): number {
  return l.platformDataSpace < SECTOR ? l.platformDataSpace * SECTOR : l.platformDataSpace;
}

export async function setVhdParent(disk: VhdDisk, change: VhdParentChange): Promise<void> {
  const where = disk.file.name;
  if (disk.readOnly) throw vhdError('VHD_READ_ONLY', `${where}: cannot change a read-only disk`, { path: where });
  if (disk.type !== 'Differencing' || !disk.header) throw invalidArgument(`${where}: only a differencing disk has a parent`, { path: where });
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  const dataFor = (code: number): Uint8Array | null => {
    switch (code) {
      case Platform.W2ru: return encodeUtf16le(change.relativePath);
      case Platform.W2ku: return encodeUtf16le(change.path);
      case Platform.MacX: return new TextEncoder().encode(fileUrl(change.path));
      case Platform.Wi2r: return ascii(change.relativePath);
      case Platform.Wi2k: return ascii(change.path);
      default: return null;
    }
  };
  await disk.serial.run(async () => {
    const h = disk.header!;
    const writes: Array<{ offset: number; data: Uint8Array }> = [];
    const locators = h.locators.map((l) => {
      const data = dataFor(l.platformCode);
      if (!data) return l;
      const room = capacity(l);
      if (data.length > room) {
        throw vhdError('VHD_UNSUPPORTED', `${where}: the new parent path needs ${data.length} bytes but the locator holds ${room}`, { path: where });
      }
      const padded = new Uint8Array(room);
      padded.set(data);
      writes.push({ offset: l.platformDataOffset, data: padded });
      return { ...l, platformDataLength: data.length };
    });
    if (writes.length === 0) throw vhdError('VHD_UNSUPPORTED', `${where}: no parent locator this engine can rewrite`, { path: where });
    for (const w of writes) await disk.file.write(w.data, w.offset);
    await disk.file.flush();
    const header: DynamicHeader = {
      ...h, locators, parentUnicodeName: baseName(change.path),
      ...(change.relink ? { parentUniqueId: change.relink.uniqueId.slice(), parentTimeStamp: change.relink.timeStamp } : {}),
    };
    await disk.file.write(encodeDynamicHeader(header), disk.footer.dataOffset!);
    await disk.file.flush();
    disk.header = header;
  });
}
