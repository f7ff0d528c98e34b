// Opening a VHD: load and validate the metadata (load.ts), repair the trailing footer when
// it had to be recovered from the copy at offset 0, and for a differencing disk open the
// parent chain. The caller's resolver only finds the parent's file; the engine opens it as
// a VHD itself, so a crafted child cannot make a raw image or a VHDX (another host disk)
// its parent. Each parent must be the disk its child was made from (the unique id and time
// stamp in the child's header) and appear once in the chain; chains are at most
// MAX_CHAIN_DEPTH deep, as VHDX chains are.
import type { BlockFile } from '../../blockio/block-file.ts';
import { isVmhostError } from '../../common/errors.ts';
import { MAX_CHAIN_DEPTH } from '../chain.ts';
import { loadVhd, type Problem } from './load.ts';
import { encodeFooter, formatUniqueId, sameId, DiskTypeCode } from './footer.ts';
import { VhdDisk } from './vhd-disk.ts';
import { vhdError } from './errors.ts';

/**
 * Finds and opens the parent's file. `paths` come from the parent locators in preference
 * order: relative (W2ru, relative to the child's directory) first, then absolute (W2ku),
 * the deprecated Wi2r/Wi2k, MacX, and finally the bare parent file name. `child` names the
 * file whose parent is wanted, `depth` its distance from the leaf. Return a writable file
 * only when the parent will be written (merge). The child owns the file once returned.
 */
export type VhdParentResolver = (paths: string[], ctx: { child: string; depth: number }) => Promise<BlockFile>;

export interface OpenVhdOptions {
  /** Open read-only even if the file is writable. */
  readOnly?: boolean;
  openParent?: VhdParentResolver;
  /** Open a differencing disk without its parent (metadata only; reads falling through fail). */
  withoutParent?: boolean;
  /** Accept a parent whose time stamp differs from the one the child recorded. Default false. */
  ignoreParentTimeStamp?: boolean;
}

/** What a parent must be: the identity its child recorded, and the disks below it in the chain. */
interface Expected {
  child: string;
  uniqueId: Uint8Array;
  timeStamp: number;
  /** Unique ids of every disk from the leaf down to the child. */
  below: Uint8Array[];
}

function problemError(file: BlockFile, p: Problem): Error {
  return vhdError(p.code === 'TOO_LARGE' ? 'VHD_TOO_LARGE' : 'VHD_CORRUPT', `${file.name}: ${p.structure} at offset ${p.offset}: ${p.message}`,
    { path: file.name, structure: p.structure, offset: p.offset, problem: p.code });
}

export function openVhd(file: BlockFile, options: OpenVhdOptions = {}): Promise<VhdDisk> {
  return openLevel(file, options, 0, undefined);
}

async function openLevel(file: BlockFile, options: OpenVhdOptions, depth: number, expected: Expected | undefined): Promise<VhdDisk> {
  const { loaded, problems } = await loadVhd(file);
  const firstError = problems.find((p) => p.severity === 'error');
  if (expected && (firstError?.code === 'FOOTER_COOKIE' || firstError?.code === 'FILE_TOO_SMALL')) {
    throw vhdError('VHD_PARENT_MISMATCH', `${expected.child}: its parent ${file.name} is not a VHD file (the parent of a VHD must be a VHD)`, {
      path: expected.child, parent: file.name, op: 'open parent',
    });
  }
  if (firstError || !loaded) throw problemError(file, firstError ?? problems[0]!);
  const readOnly = file.readOnly || options.readOnly === true;
  const footer = loaded.footer;

  if (expected) {
    const mismatch = !sameId(footer.uniqueId, expected.uniqueId) ? `unique id ${formatUniqueId(footer.uniqueId)}, the child expects ${formatUniqueId(expected.uniqueId)}`
      : !options.ignoreParentTimeStamp && footer.timeStamp !== expected.timeStamp ? `time stamp ${footer.timeStamp}, the child expects ${expected.timeStamp}`
      : null;
    if (mismatch) {
      throw vhdError('VHD_PARENT_MISMATCH', `${expected.child}: its parent ${file.name} has ${mismatch}`, { path: expected.child, parent: file.name, op: 'open parent' });
    }
    if (expected.below.some((id) => sameId(id, footer.uniqueId))) {
      throw vhdError('VHD_CHAIN_CYCLE', `${expected.child}: its parent ${file.name} (unique id ${formatUniqueId(footer.uniqueId)}) is already in the chain below it`, {
        path: expected.child, parent: file.name, op: 'open parent', depth,
      });
    }
  }

  let parent: VhdDisk | null = null;
  if (footer.diskType === DiskTypeCode.Differencing && !options.withoutParent) {
    if (!options.openParent) {
      throw vhdError('VHD_INVALID_ARGUMENT', `${file.name}: differencing disk needs an openParent resolver`, { path: file.name });
    }
    if (depth >= MAX_CHAIN_DEPTH) {
      throw vhdError('VHD_CHAIN_TOO_DEEP', `${file.name}: the chain is deeper than ${MAX_CHAIN_DEPTH} disks`, { path: file.name, op: 'open parent', depth });
    }
    let pf: BlockFile;
    try {
      pf = await options.openParent(loaded.parentPaths, { child: file.name, depth });
    } catch (e) {
      if (isVmhostError(e)) throw e;
      throw vhdError('VHD_PARENT_MISSING', `${file.name}: cannot open the parent (${loaded.parentPaths.join(', ')})`, { path: file.name }, e);
    }
    const h = loaded.header!;
    try {
      parent = await openLevel(pf, { ...options, readOnly: pf.readOnly }, depth + 1, {
        child: file.name, uniqueId: h.parentUniqueId, timeStamp: h.parentTimeStamp, below: [...(expected?.below ?? []), footer.uniqueId],
      });
    } catch (e) {
      await pf.close().catch(() => undefined);
      throw e;
    }
  }

  const disk = new VhdDisk({
    file, footer, footerOffset: loaded.footerOffset, header: loaded.header, bat: loaded.bat, tableCapacity: loaded.tableCapacity,
    parent, parentPaths: loaded.parentPaths, absoluteParentPath: loaded.absoluteParentPath, readOnly,
  });
  if (loaded.footerRecovered && !readOnly) {
    await file.write(encodeFooter(footer), loaded.footerOffset);
    await file.flush();
  }
  return disk;
}
