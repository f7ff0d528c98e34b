// Sets of changed 64 KiB blocks as an extended replication keeps them, pure: the blocks each
// recovery point applied on the Replica server wrote, merged until the next cycle to the third
// host sends them, and turned back into byte extents to read.
import type { ChangedExtent } from '../storage/index.ts';

export type BlockSets = Record<string, number[]>;

/** The union of two per-drive block lists, each sorted and without duplicates. */
export function mergeBlocks(a: BlockSets, b: Readonly<Record<string, Iterable<number>>>): BlockSets {
  const out: BlockSets = {};
  for (const id of new Set([...Object.keys(a), ...Object.keys(b)])) {
    out[id] = [...new Set([...(a[id] ?? []), ...(b[id] ?? [])])].sort((x, y) => x - y);
  }
  return out;
}

/** Sorted blocks as byte extents (adjacent blocks joined), the last one clipped to the disk. */
export function blocksToExtents(blocks: readonly number[], blockSize: number, virtualSize: number): ChangedExtent[] {
  const out: ChangedExtent[] = [];
  for (const b of blocks) {
    const offset = b * blockSize;
    if (offset >= virtualSize) continue;
    const length = Math.min(blockSize, virtualSize - offset);
    const last = out.at(-1);
    if (last && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length });
  }
  return out;
}
