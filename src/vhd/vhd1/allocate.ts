// Allocating a block of a dynamic or differencing disk, in crash-safe order.
//
// The new block goes where the trailing footer is now (the end of all data). Order:
//   1. the footer is written at its new place after the block (the file grows);
//   2. the block's data, then its sector bitmap (which overwrites the old footer);
//   3. flush — a barrier: nothing below may reach the disk before the above;
//   4. the BAT entry pointing to the block (its four bytes: atomic within one sector).
// The footer is issued before the data and bitmap (all three are before the barrier, so
// their order is not a durability order) so that the old footer is never overwritten while
// no footer exists at the new end. A crash before 3 leaves the BAT without the block: the old contents are intact and, if
// the old footer was already overwritten, open recovers from the footer copy at offset 0
// (load.ts). A crash after 3 leaves a complete block that the BAT may or may not reach —
// both are states the guest could have seen before its flush. The write is reachable as
// soon as the BAT entry is written (before the caller's write() returns), and durable at
// the caller's next flush().
import type { BlockFile } from '../../blockio/block-file.ts';
import { batEntryBytes } from './bat.ts';
import { encodeFooter, type Footer } from './footer.ts';
import { SECTOR } from './units.ts';

export interface AllocationTarget {
  file: BlockFile;
  footer: Footer;
  footerOffset: number;
  tableOffset: number;
  bat: Uint32Array;
  bitmapBytes: number;
  blockSize: number;
}

/**
 * Writes `data` at `offsetInBlock` of the new block `index` with `bitmap` already marking
 * the written sectors, links the block, and returns the new footer offset.
 */
export async function allocateBlock(t: AllocationTarget, index: number, offsetInBlock: number, data: Uint8Array, bitmap: Uint8Array): Promise<number> {
  const start = t.footerOffset;
  const newFooterOffset = start + t.bitmapBytes + t.blockSize;
  await t.file.write(encodeFooter(t.footer), newFooterOffset);
  await t.file.write(data, start + t.bitmapBytes + offsetInBlock);
  await t.file.write(bitmap, start);
  await t.file.flush();
  t.bat[index] = start / SECTOR;
  await t.file.write(batEntryBytes(t.bat, index), t.tableOffset + index * 4);
  return newFooterOffset;
}
