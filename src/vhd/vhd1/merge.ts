// Merging a differencing VHD into its parent or an ancestor further up (Merge-VHD): every
// block stored in the merged layers is read through the chain (so it carries what the
// child shows, parent data included where the child's bitmap is clear) and written into the
// target, which must be open read-write; blocks that read as zeros are trimmed there instead.
// Ranges no merged layer stores already read the same in the target. The merged layers are
// closed afterwards without closing the target; the caller deletes their files.
import type { VirtualDisk } from '../../blockio/virtual-disk.ts';
import { invalidArgument, vhdError } from './errors.ts';
import { UNUSED } from './units.ts';
import { VhdDisk } from './vhd-disk.ts';

const CHUNK = 1024 * 1024;

export async function mergeVhd(leaf: VhdDisk, levels = 1): Promise<VirtualDisk> {
  const where = leaf.file.name;
  if (!Number.isInteger(levels) || levels < 1) throw invalidArgument(`${where}: levels must be at least 1`, { path: where, levels });
  const layers: VhdDisk[] = [];
  let cur: VirtualDisk | null = leaf;
  for (let i = 0; i < levels; i++) {
    if (!(cur instanceof VhdDisk) || cur.type !== 'Differencing' || !cur.parent) {
      throw invalidArgument(`${where}: the chain has fewer than ${levels} parents`, { path: where, levels });
    }
    layers.push(cur);
    cur = cur.parent;
  }
  const target = cur!;
  if (target.readOnly) throw vhdError('VHD_READ_ONLY', `${where}: the merge target is open read-only`, { path: where });
  if (target.virtualSize < leaf.virtualSize) throw invalidArgument(`${where}: the merge target is smaller than the child`, { path: where });
  // Union of the block ranges the merged layers store, in order.
  const ranges: Array<[number, number]> = [];
  for (const l of layers) {
    l.bat!.forEach((e, b) => {
      if (e !== UNUSED) ranges.push([b * l.blockSize, Math.min((b + 1) * l.blockSize, leaf.virtualSize)]);
    });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else if (r[0] < r[1]) merged.push([r[0], r[1]]);
  }
  const buf = new Uint8Array(CHUNK);
  const zeros = new Uint8Array(CHUNK);
  for (const [s, e] of merged) {
    for (let o = s; o < e; o += CHUNK) {
      const b = buf.subarray(0, Math.min(CHUNK, e - o));
      await leaf.read(b, o);
      if (Buffer.from(b.buffer, 0, b.length).equals(Buffer.from(zeros.buffer, 0, b.length))) await target.trim(o, b.length);
      else await target.write(b, o);
    }
  }
  await target.flush();
  for (const l of layers) await l.closeSelf();
  return target;
}
