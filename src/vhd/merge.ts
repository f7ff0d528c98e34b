// Merge a differencing disk into its parent (or an ancestor further up): every range the
// leaf and the layers between define is read through the chain and written (or trimmed,
// when it reads as zeros) into the target, which must be open read-write. The merged
// children are closed afterwards; the caller deletes their files. The target stays open.
import { VmhostError } from '../common/errors.ts';
import { MiB } from './format.ts';
import { VhdxDisk } from './disk.ts';
import { resizeVhdx } from './resize.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';

export async function mergeVhdx(leaf: VhdxDisk, levels = 1): Promise<VirtualDisk> {
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
  if (target.virtualSize < leaf.virtualSize) {
    if (!(target instanceof VhdxDisk)) throw new VmhostError('VHDX_INVALID_ARGUMENT', 'merge target is smaller than the child', ctx);
    await resizeVhdx(target, leaf.virtualSize);
  }
  // Union of the ranges the merged layers define.
  const ranges: Array<[number, number]> = [];
  for (const l of layers) for (const r of await l.ownRanges()) ranges.push([r.offset, r.offset + r.length]);
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const buf = new Uint8Array(4 * MiB);
  const zeros = new Uint8Array(4 * MiB);
  const isZero = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).equals(zeros.subarray(0, b.length));
  for (const [s, e] of merged) {
    for (let o = s; o < e; o += buf.length) {
      const n = Math.min(buf.length, e - o);
      const b = buf.subarray(0, n);
      await leaf.read(b, o);
      if (isZero(b)) await target.trim(o, n);
      else await target.write(b, o);
    }
  }
  await target.flush();
  for (const l of layers) await l.closeSelf();
  return target;
}
