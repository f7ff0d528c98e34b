// Merge a differencing disk into its parent (or an ancestor further up): every range the
// leaf and the layers between define is read through the chain and written (or trimmed,
// when it reads as zeros) into the target, which must be open read-write. The merged
// children are closed afterwards; the caller deletes their files. The target stays open.
// The pieces (which ranges, how one is copied down) are shared with the block server's live
// merge (storage/served-merge.ts), which runs the same copy beside a guest's I/O.
import { VmhostError } from '../common/errors.ts';
import { MiB } from './format.ts';
import { VhdxDisk } from './disk.ts';
import { resizeVhdx } from './resize.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';

/** The ranges a merge of `layers` copies: the union of what each defines (data or zero blocks), sorted, as [start, end). */
export async function mergeRanges(layers: VhdxDisk[]): Promise<Array<[number, number]>> {
  const ranges: Array<[number, number]> = [];
  for (const l of layers) for (const r of await l.ownRanges()) ranges.push([r.offset, r.offset + r.length]);
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/**
 * Copies ranges down a chain: reads through `source` (the chain as the merged child sees it)
 * and writes into `target`, or trims the target where a piece reads as zeros (a trimmed
 * differencing block reads as zeros, it does not fall through to the target's parent).
 */
export class CopyDown {
  private readonly buf: Uint8Array;
  private readonly zeros: Uint8Array;

  constructor(private readonly source: VirtualDisk, private readonly target: VirtualDisk, readonly chunk = 4 * MiB) {
    this.buf = new Uint8Array(chunk);
    this.zeros = new Uint8Array(chunk);
  }

  /** Copy [offset, offset + length) in pieces of at most `chunk` bytes. One caller at a time (one buffer). */
  async range(offset: number, length: number): Promise<void> {
    for (let o = offset; o < offset + length; o += this.chunk) {
      const b = this.buf.subarray(0, Math.min(this.chunk, offset + length - o));
      await this.source.read(b, o);
      if (Buffer.from(b.buffer, b.byteOffset, b.length).equals(this.zeros.subarray(0, b.length))) await this.target.trim(o, b.length);
      else await this.target.write(b, o);
    }
  }
}

/** The layers a merge of `levels` parents into the ancestor above them folds, and that ancestor. */
export function mergeLayers(leaf: VhdxDisk, levels: number): { layers: VhdxDisk[]; target: VirtualDisk } {
  const ctx = { op: 'merge', file: leaf.file.name, levels };
  if (!Number.isInteger(levels) || levels < 1) throw new VmhostError('VHDX_INVALID_ARGUMENT', 'levels must be ≥ 1', ctx);
  const layers: VhdxDisk[] = [];
  let cur: VirtualDisk | undefined = leaf;
  for (let i = 0; i < levels; i++) {
    if (!(cur instanceof VhdxDisk) || !cur.parent) throw new VmhostError('VHDX_INVALID_ARGUMENT', `the chain has fewer than ${levels} parents`, ctx);
    layers.push(cur);
    cur = cur.parent;
  }
  const target = cur!;
  if (target.readOnly) throw new VmhostError('VHDX_READ_ONLY', 'merge target is open read-only', ctx);
  return { layers, target };
}

/** `onProgress`: bytes copied of the total the merged layers define, after each range piece. */
export async function mergeVhdx(leaf: VhdxDisk, levels = 1, onProgress: (done: number, total: number) => void = () => undefined): Promise<VirtualDisk> {
  const { layers, target } = mergeLayers(leaf, levels);
  if (target.virtualSize < leaf.virtualSize) {
    if (!(target instanceof VhdxDisk)) throw new VmhostError('VHDX_INVALID_ARGUMENT', 'merge target is smaller than the child', { op: 'merge', file: leaf.file.name });
    await resizeVhdx(target, leaf.virtualSize);
  }
  const copy = new CopyDown(leaf, target);
  const ranges = await mergeRanges(layers);
  const total = ranges.reduce((n, [s, e]) => n + e - s, 0);
  let done = 0;
  for (const [s, e] of ranges) {
    for (let o = s; o < e; o += copy.chunk) {
      const n = Math.min(copy.chunk, e - o);
      await copy.range(o, n);
      onProgress((done += n), total);
    }
  }
  await target.flush();
  for (const l of layers) await l.closeSelf();
  return target;
}
