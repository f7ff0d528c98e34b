// Growing a VHD (shrinking is not supported). Fixed: the footer moves to the new end of
// the data. Dynamic/differencing: the BAT needs an entry per block; when the sector-padded
// table has no room, a bigger table is written at the end of the file and the header is
// switched to it. Order, each step flushed before the next:
//   1. new BAT entries (in the slack, or a whole new table at the end followed by the
//      unchanged footer) — not yet referenced by anything;
//   2. the dynamic header (table offset, max table entries) — more entries than the
//      footer's size needs is a valid state;
//   3. the footers (copy at 0, trailing) with the new size.
// A disk sized by CHS (creator "vpc "/"qemu") becomes creator "win " so its size is
// exactly the requested one.
import { encodeBat } from './bat.ts';
import { encodeDynamicHeader, type DynamicHeader } from './dynamic-header.ts';
import { encodeFooter, FOOTER_SIZE, type Footer } from './footer.ts';
import { geometryForSize, usesChsSize } from './geometry.ts';
import { checkVirtualSize, CREATOR_APP } from './create.ts';
import { invalidArgument, vhdError } from './errors.ts';
import { UNUSED } from './units.ts';
import type { VhdDisk } from './vhd-disk.ts';

export async function resizeVhd(disk: VhdDisk, newSize: number): Promise<void> {
  const where = disk.file.name;
  if (disk.readOnly) throw vhdError('VHD_READ_ONLY', `${where}: cannot resize a read-only disk`, { path: where });
  checkVirtualSize(newSize, where);
  if (newSize < disk.virtualSize) {
    throw invalidArgument(`${where}: shrinking from ${disk.virtualSize} to ${newSize} bytes is not supported`, { path: where, size: newSize });
  }
  await disk.serial.run(async () => {
    const f = disk.file;
    const footer: Footer = {
      ...disk.footer, currentSize: newSize, geometry: geometryForSize(newSize),
      creatorApp: usesChsSize(disk.footer) ? CREATOR_APP : disk.footer.creatorApp,
    };
    if (newSize === disk.footer.currentSize && footer.creatorApp === disk.footer.creatorApp) return;

    if (disk.type === 'Fixed') {
      const oldFooter = disk.footerOffset;
      // Bytes between the old data end and the old footer (a file with slack) become data: zero them.
      for (let p = disk.footer.currentSize; p < Math.min(newSize, oldFooter); p += 1024 * 1024) {
        await f.write(new Uint8Array(Math.min(1024 * 1024, Math.min(newSize, oldFooter) - p)), p);
      }
      await f.write(encodeFooter(footer), newSize);
      await f.flush();
      if (newSize !== oldFooter) await f.write(new Uint8Array(FOOTER_SIZE), oldFooter); // the old footer is data now
      await f.truncate(newSize + FOOTER_SIZE);
      await f.flush();
      disk.footer = footer;
      disk.footerOffset = newSize;
      return;
    }

    const header = disk.header!, bat = disk.bat!;
    const entries = Math.ceil(newSize / header.blockSize);
    let newHeader: DynamicHeader = header;
    let newBat = bat;
    if (entries > bat.length) {
      newBat = new Uint32Array(entries).fill(UNUSED);
      newBat.set(bat);
      if (entries <= disk.tableCapacity) {
        await f.write(encodeBat(newBat, newBat.length * 4), header.tableOffset);
        newHeader = { ...header, maxTableEntries: entries };
      } else {
        const tableOffset = disk.footerOffset;
        const bytes = encodeBat(newBat);
        await f.write(bytes, tableOffset);
        disk.footerOffset = tableOffset + bytes.length;
        await f.write(encodeFooter(disk.footer), disk.footerOffset);
        newHeader = { ...header, maxTableEntries: entries, tableOffset };
        disk.tableCapacity = bytes.length / 4;
      }
      await f.flush();
      await f.write(encodeDynamicHeader(newHeader), disk.footer.dataOffset!);
      await f.flush();
      disk.header = newHeader;
      disk.bat = newBat;
    }
    const fb = encodeFooter(footer);
    await f.write(fb, 0);
    await f.write(fb, disk.footerOffset);
    await f.flush();
    disk.footer = footer;
  });
}
