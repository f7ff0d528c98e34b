// Resize (grow any type; shrink down to the minimum size = end of the last block holding
// data). Growing past what the BAT region can describe moves the BAT: the new table is
// written to free space at the end of the file and flushed, then the region tables and the
// virtual-size item are switched in one log entry.
import { VmhostError } from '../common/errors.ts';
import {
  MiB, MAX_VIRTUAL_SIZE, REGION1_OFFSET, REGION2_OFFSET, REGION_TABLE_SIZE, LOG_SECTOR, GUID_BAT_REGION, GUID_VIRTUAL_DISK_SIZE,
  PAYLOAD_FULLY_PRESENT, invalidArg, put64, roundUp, u32,
} from './format.ts';
import { batGeometry, payloadIndex, sbIndex } from './bat.ts';
import { encodeRegionTable } from './region.ts';
import { readGuid } from './guid.ts';
import { SectorTx } from './tx.ts';
import { minimumSize } from './space.ts';
import type { VhdxDisk } from './disk.ts';

export async function resizeVhdx(d: VhdxDisk, newSize: number): Promise<void> {
  const ctx = { op: 'resize', file: d.file.name, size: newSize };
  if (!Number.isSafeInteger(newSize) || newSize <= 0 || newSize % d.logicalSectorSize !== 0) {
    throw invalidArg(`new size must be a positive multiple of ${d.logicalSectorSize}`, ctx);
  }
  if (newSize > MAX_VIRTUAL_SIZE) throw new VmhostError('VHDX_TOO_LARGE', `size ${newSize} exceeds the 64 TB VHDX limit`, ctx);
  await d.exclusive(async () => {
    const old = d.g;
    if (newSize === d.virtualSize) return;
    if (newSize < d.virtualSize) {
      const min = await minimumSize(d);
      if (newSize < min) throw invalidArg(`cannot shrink below the minimum size ${min} (end of the last block in use)`, { ...ctx, minimumSize: min });
    }
    await d.beginWrite(true);
    const ng = batGeometry(d.blockSize, d.logicalSectorSize, newSize, d.params.hasParent);
    const limit = Math.max(1, Math.floor(d.logArea.length / LOG_SECTOR / 2) - 40);
    let tx = new SectorTx();
    // Shrink: clear entries of blocks and chunks that fall outside the new size.
    if (ng.dataBlocks < old.dataBlocks) {
      const dirty: number[] = [];
      await d.bat.forEachPayload(ng.dataBlocks, old.dataBlocks, (b, e) => {
        if (e.state !== 0 || e.offset !== 0) dirty.push(payloadIndex(old, b));
      });
      for (const i of dirty) {
        await d.bat.stage(tx, i, { state: 0, offset: 0 });
        if (tx.size >= limit) {
          await d.commit(tx);
          tx = new SectorTx();
        }
      }
      for (let c = ng.sbBlocks; c < old.sbBlocks; c++) {
        const i = sbIndex(old, c);
        if (i * 8 >= d.batRegion.length) continue;
        const e = await d.bat.raw(i, tx);
        if (e.state !== 0 || e.offset !== 0) await d.bat.stage(tx, i, { state: 0, offset: 0 });
      }
      await d.commit(tx);
      tx = new SectorTx();
    }
    // BAT too small: write a bigger copy at the end of the file, then switch both region
    // tables in one log entry (same size, bigger table: valid at every step).
    if (ng.totalEntries * 8 > d.batRegion.length) {
      const len = roundUp(ng.totalEntries * 8, MiB);
      const off = await d.allocate(len);
      const chunk = new Uint8Array(MiB);
      for (let o = 0; o < d.batRegion.length; o += MiB) {
        await d.file.read(chunk, d.batRegion.fileOffset + o);
        await d.file.write(chunk, off + o);
      }
      const newRegions = d.regions.map((r) => (r.guid === GUID_BAT_REGION ? { ...r, fileOffset: off, length: len } : r));
      const table = encodeRegionTable(newRegions);
      for (const base of [REGION1_OFFSET, REGION2_OFFSET]) {
        for (let o = 0; o < REGION_TABLE_SIZE; o += LOG_SECTOR) tx.put(base + o, table.slice(o, o + LOG_SECTOR));
      }
      await d.file.flush();
      await d.commit(tx);
      tx = new SectorTx();
      d.regions = newRegions;
      d.batRegion = newRegions.find((r) => r.guid === GUID_BAT_REGION)!;
      d.resetCaches();
    }
    // Fixed disks: allocate the new blocks (invisible until the size changes).
    if (d.type === 'Fixed' && ng.dataBlocks > old.dataBlocks) {
      for (let b = old.dataBlocks; b < ng.dataBlocks; b++) {
        const off = await d.allocate(d.blockSize);
        await d.bat.stage(tx, payloadIndex(ng, b), { state: PAYLOAD_FULLY_PRESENT, offset: off });
        if (tx.size >= limit) {
          await d.file.flush();
          await d.commit(tx);
          tx = new SectorTx();
        }
      }
    }
    // The virtual size item, patched in place.
    const m = d.metadataImage;
    const count = m[10]! | (m[11]! << 8);
    let itemOffset = -1;
    for (let i = 0; i < count; i++) {
      const o = 32 + i * 32;
      if (readGuid(m, o) === GUID_VIRTUAL_DISK_SIZE && (u32(m, o + 24) & 1) === 0) itemOffset = u32(m, o + 16);
    }
    if (itemOffset < 0) throw invalidArg('virtual size item not found', ctx);
    const secOff = Math.floor(itemOffset / LOG_SECTOR) * LOG_SECTOR;
    const img = tx.peek(d.metadataRegion.fileOffset + secOff)?.slice() ?? m.slice(secOff, secOff + LOG_SECTOR);
    put64(img, itemOffset - secOff, newSize);
    if (itemOffset - secOff + 8 > LOG_SECTOR) throw invalidArg('virtual size item straddles a sector', ctx);
    tx.put(d.metadataRegion.fileOffset + secOff, img);
    await d.file.flush();
    await d.commit(tx);
    d.params = { ...d.params, virtualSize: newSize };
    d.g = ng;
    d.items = d.items.map((it) => (it.guid === GUID_VIRTUAL_DISK_SIZE && !it.isUser ? { ...it, data: img.slice(itemOffset - secOff, itemOffset - secOff + 8) } : it));
    d.resetCaches();
  });
}
