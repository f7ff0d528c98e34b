// Changing an existing disk file: Resize-VHD (offline), Merge-VHD, Optimize-VHD, Set-VHD and
// the user metadata items. Every file written is opened through openDiskFile, so it is locked
// exclusive first (parents shared): a file a running VM or another process holds is refused
// (VHD_IN_USE) before a byte of it is written. The CLI and the daemon share these functions.
import { realpath, rm } from 'node:fs/promises';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { isVmhostError } from '../common/errors.ts';
import { compactVhdx, describeVhdx, getUserMetadata, listUserMetadata, mergeVhdx, setUserMetadata, setVhdxParams, type VhdxDisk } from '../vhd/index.ts';
import { mergeVhd, setVhdParent, VhdDisk } from '../vhd/vhd1/index.ts';
import { argError, relativeLocator } from './disk-args.ts';
import { chainFiles, isVhdx } from './disk-info.ts';
import { openDiskFile, resizeDisk, type OpenDiskOptions } from './open-disk.ts';
import { prepareMergeLinkage } from './merge-linkage.ts';

const MiB = 1024 * 1024;

/** Work done of the work there is (bytes, blocks or percent), reported as it goes. */
export type WorkProgress = (done: number, total: number) => void;

async function withDisk<T>(path: string, opts: OpenDiskOptions, fn: (d: VirtualDisk) => Promise<T>): Promise<T> {
  const d = await openDiskFile(path, opts);
  try {
    return await fn(d);
  } finally {
    await d.close().catch(() => undefined);
  }
}

function vhdxOnly(d: VirtualDisk, path: string, why = 'this works on VHDX files only'): VhdxDisk {
  if (!isVhdx(d)) throw argError('Path', `${path} is a ${d.format} file; ${why}`, 'VHD_UNSUPPORTED');
  return d;
}

/** The new size Resize-VHD asks for: `size` (with the caller's check of it against the open disk), or -ToMinimumSize. */
export type ResizeTarget = { size: number; check: (d: VirtualDisk) => void } | { size: 'minimum' };

export async function resizeDiskFile(path: string, target: ResizeTarget, log: (m: string) => void = () => undefined): Promise<void> {
  await withDisk(path, {}, async (d) => {
    if (d.format === 'RAW') throw argError('Path', 'Resize-VHD works on .vhdx and .vhd files; this is a raw image');
    let size: number;
    if (target.size === 'minimum') {
      if (!isVhdx(d)) throw argError('ToMinimumSize', 'a VHD cannot shrink; only VHDX files support -ToMinimumSize', 'VHD_UNSUPPORTED');
      const min = (await describeVhdx(d)).MinimumSize;
      size = min > 0 ? min : Math.min(d.virtualSize, d.blockSize);
    } else {
      size = target.size;
      target.check(d);
      if (isVhdx(d) && size < d.virtualSize) {
        const min = (await describeVhdx(d)).MinimumSize;
        if (size < min) {
          throw argError('SizeBytes', `${size} is below the minimum size ${min} of ${path} (the end of the last block holding data); -ToMinimumSize shrinks as far as possible`, 'VHD_BELOW_MINIMUM_SIZE');
        }
      }
      if (d instanceof VhdDisk && size < d.virtualSize) throw argError('SizeBytes', `a VHD cannot shrink (from ${d.virtualSize} to ${size}); convert it to VHDX first`, 'VHD_UNSUPPORTED');
    }
    log(`resizing ${path} from ${d.virtualSize} to ${size} bytes`);
    await resizeDisk(d, size);
  });
}

/**
 * Merge-VHD: `path` (a differencing disk, real path) into its parent or into `dest` (an
 * ancestor's real path); the merged files are deleted (unless `keepMerged`: a caller that
 * must first re-point its own references deletes them after). The leaf is locked exclusive though
 * only read (it is deleted), the destination exclusive, the ancestors between shared.
 * Returns the destination's path.
 */
export async function mergeDiskFile(path: string, dest: string | undefined, log: (m: string) => void = () => undefined, opts: { keepMerged?: boolean; onProgress?: WorkProgress } = {}): Promise<string> {
  const probe = await openDiskFile(path, { readOnly: true, noParent: true, leafLock: 'exclusive' });
  const format = probe.format, type = probe.type;
  await probe.close();
  if (format === 'RAW') throw argError('Path', `${path} is a raw image; only a differencing disk can be merged`);
  if (type !== 'Differencing') throw argError('Path', `${path} is a ${type.toLowerCase()} disk; only a differencing disk can be merged`);
  // Opened read-write: a parent's log left by a crash (of an earlier merge) is replayed.
  const chain = await withDisk(path, { leafLock: 'exclusive' }, (c) => Promise.all(chainFiles(c).map((p) => realpath(p))));
  const target = dest ?? chain[1]!;
  const levels = chain.indexOf(target);
  if (levels < 1) throw argError('DestinationPath', `${dest} is not an ancestor of ${path} (its chain: ${chain.slice(1).join(' → ')})`);
  const nextGuid = format === 'VHDX' ? await prepareMergeLinkage(chain[levels - 1]!, target) : undefined;
  const leaf = await openDiskFile(path, { readOnly: true, leafLock: 'exclusive', writableAncestor: target });
  if (nextGuid !== undefined) {
    let t: VirtualDisk = leaf;
    for (let i = 0; i < levels; i++) t = (t as VhdxDisk).parent!;
    (t as VhdxDisk).presetDataWriteGuid(nextGuid);
  }
  let merged: VirtualDisk;
  try {
    log(`merging ${chain.slice(0, levels).join(', ')} into ${target}`);
    const t0 = Date.now();
    if (isVhdx(leaf)) merged = await mergeVhdx(leaf, levels, opts.onProgress);
    else if (leaf instanceof VhdDisk) merged = await mergeVhd(leaf, levels);
    else throw argError('Path', `${path} is a ${leaf.format} file; only a differencing disk can be merged`);
    log(`merged in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    await leaf.close().catch(() => undefined);
    throw e;
  }
  await merged.close();
  if (opts.keepMerged !== true) for (const f of chain.slice(0, levels)) await rm(f, { force: true });
  return target;
}

/** Full mode: stored blocks that hold only zeros are trimmed first, so compaction can drop them. */
async function trimZeroBlocks(d: VhdxDisk, onProgress: WorkProgress): Promise<number> {
  const bs = d.blockSize;
  const buf = new Uint8Array(bs);
  let trimmed = 0;
  const blocks = new Set<number>();
  for (const r of await d.ownRanges()) if (!r.zero) for (let b = Math.floor(r.offset / bs); b * bs < r.offset + r.length; b++) blocks.add(b);
  const sorted = [...blocks].sort((x, y) => x - y);
  for (const [i, b] of sorted.entries()) {
    // blockReadsZero reads only the block's data runs (file holes read zero without a read).
    if (await d.blockReadsZero(b, buf)) {
      await d.trim(b * bs, Math.min(bs, d.virtualSize - b * bs));
      trimmed++;
    }
    onProgress(i + 1, sorted.length);
  }
  return trimmed;
}

/**
 * Optimize-VHD of a dynamic or differencing VHDX; `zeros`: release all-zero blocks too (Full,
 * Prezeroed). `onProgress` gets percent (the zero scan is the first half when there is one).
 */
export async function optimizeDiskFile(path: string, zeros: boolean, log: (m: string) => void = () => undefined, onProgress: WorkProgress = () => undefined): Promise<void> {
  await withDisk(path, {}, async (disk) => {
    const d = vhdxOnly(disk, path, 'Optimize-VHD compacts VHDX files (Convert-VHD to a new dynamic file reclaims its space)');
    if (d.type === 'Fixed') throw argError('Path', `${path} is a fixed disk; only dynamic and differencing disks can be compacted`, 'VHD_UNSUPPORTED');
    const share = (from: number, span: number): WorkProgress => (done, total) => onProgress(from + (total === 0 ? span : (span * done) / total), 100);
    if (zeros) log(`${path}: ${await trimZeroBlocks(d, share(0, 50))} all-zero blocks released`);
    const r = await compactVhdx(d, zeros ? share(50, 50) : share(0, 100));
    log(`${path}: ${r.fileSizeBefore} → ${r.fileSizeAfter} bytes, ${r.blocksMoved} blocks moved`);
  });
}

/** Set-VHD -PhysicalSectorSizeBytes (VHDX). */
export async function setDiskSectorSize(path: string, pss: 512 | 4096): Promise<void> {
  await withDisk(path, { noParent: true }, async (disk) => {
    const d = vhdxOnly(disk, path);
    if (pss < d.logicalSectorSize) throw argError('PhysicalSectorSizeBytes', `cannot be smaller than the logical sector size (${d.logicalSectorSize})`);
    await setVhdxParams(d, { physicalSectorSize: pss });
  });
}

/** Set-VHD -ResetDiskIdentifier (VHDX). */
export async function resetDiskIdentifier(path: string): Promise<void> {
  await withDisk(path, { noParent: true }, (d) => setVhdxParams(vhdxOnly(d, path), { diskId: 'new' }));
}

/** Set-VHD -ParentPath: re-point a differencing disk (real path) to its moved parent (real path); `force`: link even when it is not the disk it was made from. */
export async function setDiskParent(path: string, parentPath: string, force: boolean): Promise<void> {
  await withDisk(path, { noParent: true }, async (d) => {
    if (d.type !== 'Differencing') throw argError('Path', `${path} is not a differencing disk; it has no parent`);
    const parent = await openDiskFile(parentPath, { readOnly: true }).catch((e: unknown) => {
      throw argError('ParentPath', `cannot open ${parentPath}: ${e instanceof Error ? e.message : String(e)}`, isVmhostError(e) ? e.code : 'VHD_INVALID_ARGUMENT');
    });
    try {
      if (d instanceof VhdDisk) {
        if (!(parent instanceof VhdDisk)) throw argError('ParentPath', `the parent of a VHD must be a VHD file; ${parentPath} is ${parent.format}`);
        const h = d.header!;
        const same = Buffer.from(parent.uniqueId).equals(Buffer.from(h.parentUniqueId)) && parent.timeStamp === h.parentTimeStamp;
        if (!same && !force) {
          throw argError('ParentPath', `${parentPath} is not the parent ${path} was made from (unique id or time stamp differ); -IgnoreIdMismatch links it anyway`, 'VHD_PARENT_MISMATCH');
        }
        await setVhdParent(d, {
          path: parentPath, relativePath: relativeLocator(path, parentPath),
          ...(same ? {} : { relink: { uniqueId: parent.uniqueId, timeStamp: parent.timeStamp } }),
        });
        return;
      }
      const child = vhdxOnly(d, path);
      if (!isVhdx(parent)) throw argError('ParentPath', `the parent of a VHDX must be a VHDX file; ${parentPath} is ${parent.format}`);
      if (parent.logicalSectorSize !== child.logicalSectorSize) throw argError('ParentPath', `logical sector sizes differ (${parent.logicalSectorSize} vs ${child.logicalSectorSize})`);
      const loc = child.params.parentLocator!.entries;
      const want = [loc.get('parent_linkage'), loc.get('parent_linkage2')].filter((x): x is string => !!x).map((g) => g.replace(/[{}]/g, '').toLowerCase());
      const matches = want.includes(parent.dataWriteGuid.toLowerCase());
      if (!matches && !force) {
        throw argError('ParentPath', `${parentPath} is not the parent ${path} was made from (DataWriteGuid ${parent.dataWriteGuid} ≠ parent_linkage ${want[0] ?? '?'}); -IgnoreIdMismatch links it anyway`, 'VHDX_PARENT_MISMATCH');
      }
      await setVhdxParams(child, {
        parent: { relativePath: relativeLocator(path, parentPath), absoluteWin32Path: parentPath, ...(matches ? {} : { parentLinkage: parent.dataWriteGuid }) },
      });
    } finally {
      await parent.close().catch(() => undefined);
    }
  });
}

export interface MetadataItem { Id: string; data: Uint8Array; IsVirtualDisk?: boolean; IsRequired?: boolean }

/** Get-VHDMetadata: every user metadata item of a VHDX, or the one `id` (VHD_METADATA_NOT_FOUND without it). */
export async function readDiskMetadata(path: string, id?: string): Promise<MetadataItem[]> {
  return withDisk(path, { readOnly: true, noParent: true }, async (disk) => {
    const d = vhdxOnly(disk, path, 'only VHDX files hold user metadata');
    if (id === undefined) return listUserMetadata(d).map((i) => ({ Id: i.guid, data: i.data, IsVirtualDisk: i.isVirtualDisk, IsRequired: i.isRequired }));
    const data = getUserMetadata(d, id);
    if (!data) throw argError('Id', `${path} has no user metadata item ${id}`, 'VHD_METADATA_NOT_FOUND');
    return [{ Id: id, data }];
  });
}

/** Set-VHDMetadata: set (`data`) or remove (undefined) one user metadata item of a VHDX. */
export async function writeDiskMetadata(path: string, id: string, data: Uint8Array | undefined): Promise<void> {
  await withDisk(path, { noParent: true }, async (disk) => {
    const d = vhdxOnly(disk, path, 'only VHDX files hold user metadata');
    if (data === undefined && !getUserMetadata(d, id)) throw argError('Id', `${path} has no user metadata item ${id}`, 'VHD_METADATA_NOT_FOUND');
    if (data !== undefined && data.length > MiB) throw argError('Value', `${data.length} bytes is more than the 1MB an item may hold`);
    await setUserMetadata(d, id, data);
  });
}
