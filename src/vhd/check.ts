// Integrity check (Test-VHD): opens the file read-only and lists every problem found —
// structures that fail to parse, a pending log, BAT entries with reserved states, blocks
// outside the file or overlapping other blocks or structures, sector bitmap entries where
// the disk type forbids them, and a broken parent linkage when a resolver is given.
import type { BlockFile } from '../blockio/block-file.ts';
import { isVmhostError } from '../common/errors.ts';
import { MiB, PAYLOAD_PARTIALLY_PRESENT, PAYLOAD_FULLY_PRESENT, SB_PRESENT, SB_NOT_PRESENT } from './format.ts';
import { openVhdx } from './open.ts';
import type { ParentResolver } from './chain.ts';
import { usedRanges } from './space.ts';

export async function checkVhdx(file: BlockFile, opts: { openParent?: ParentResolver } = {}): Promise<string[]> {
  const problems: string[] = [];
  let d;
  try {
    d = await openVhdx(file, { readOnly: true, noParent: !opts.openParent, ...(opts.openParent ? { openParent: opts.openParent } : {}) });
  } catch (e) {
    if (isVmhostError(e)) return [`${e.code}: ${e.message}`];
    throw e;
  }
  try {
    problems.push(...d.openProblems);
    const size = await file.size();
    const g = d.g;
    const sbState = new Map<number, number>();
    const partial: number[] = [];
    await d.bat.forEachRaw(0, Math.min(g.totalEntries, d.batRegion.length / 8), (i, e) => {
      const isSb = i % (g.chunkRatio + 1) === g.chunkRatio;
      if (isSb) {
        const c = (i - g.chunkRatio) / (g.chunkRatio + 1);
        sbState.set(c, e.state);
        if (e.state !== SB_NOT_PRESENT && e.state !== SB_PRESENT) problems.push(`sector bitmap entry ${i} has reserved state ${e.state}`);
        else if (e.state === SB_PRESENT && !d.params.hasParent) problems.push(`sector bitmap entry ${i} is present in a disk without a parent`);
        else if (e.state === SB_PRESENT && e.offset < MiB) problems.push(`sector bitmap entry ${i} points into the header section`);
        return;
      }
      const b = i - Math.floor(i / (g.chunkRatio + 1));
      if (b >= g.dataBlocks) return;
      if (e.state === 4 || e.state === 5) problems.push(`BAT entry ${i} (block ${b}) has reserved state ${e.state}`);
      else if (e.state === PAYLOAD_PARTIALLY_PRESENT && !d.params.hasParent) problems.push(`block ${b} is partially present in a disk without a parent`);
      else if ((e.state === PAYLOAD_PARTIALLY_PRESENT || e.state === PAYLOAD_FULLY_PRESENT) && e.offset < MiB) problems.push(`block ${b} points into the header section`);
      if (e.state === PAYLOAD_PARTIALLY_PRESENT) partial.push(b);
    });
    for (const b of partial) {
      if (sbState.get(Math.floor(b / g.chunkRatio)) !== SB_PRESENT) problems.push(`block ${b} is partially present but its sector bitmap block is not`);
    }
    let used: Awaited<ReturnType<typeof usedRanges>> = [];
    try {
      used = await usedRanges(d);
    } catch (e) {
      if (!isVmhostError(e)) throw e;
    }
    for (let i = 0; i < used.length; i++) {
      const u = used[i]!;
      if ((u.kind === 'payload' || u.kind === 'bitmap') && u.start + u.length > Math.ceil(size / MiB) * MiB) {
        problems.push(`${u.kind} block (BAT entry ${u.batIndex}) at ${u.start} lies beyond the end of the file (${size})`);
      }
      const next = used[i + 1];
      if (next && u.start + u.length > next.start) {
        problems.push(`${u.kind} at ${u.start} (+${u.length}) overlaps ${next.kind} at ${next.start}${next.batIndex !== undefined ? ` (BAT entry ${next.batIndex})` : ''}`);
      }
    }
  } finally {
    await d.close();
  }
  return problems;
}
