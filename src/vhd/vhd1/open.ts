// Opening a VHD: load and validate the metadata (load.ts), repair the trailing footer when
// it had to be recovered from the copy at offset 0, and for a differencing disk obtain the
// parent through the caller's resolver and check that it is the disk the child was made
// from (unique id and time stamp in the child's header).
import type { BlockFile } from '../../blockio/block-file.ts';
import type { VirtualDisk } from '../../blockio/virtual-disk.ts';
import { isVmhostError } from '../../common/errors.ts';
import { loadVhd, type Problem } from './load.ts';
import { encodeFooter, formatUniqueId, sameId, DiskTypeCode } from './footer.ts';
import { VhdDisk } from './vhd-disk.ts';
import { vhdError } from './errors.ts';

export interface OpenVhdOptions {
  /** Open read-only even if the file is writable. */
  readOnly?: boolean;
  /**
   * Opens the parent of a differencing disk. `paths` come from the parent locators in
   * preference order: relative (W2ru, relative to the child's directory) first, then
   * absolute (W2ku), the deprecated Wi2r/Wi2k, MacX, and finally the bare parent file name.
   * The child owns the returned disk and closes it on close().
   */
  openParent?: (paths: string[]) => Promise<VirtualDisk>;
  /** Open a differencing disk without its parent (metadata only; reads falling through fail). */
  withoutParent?: boolean;
  /** Accept a parent whose time stamp differs from the one the child recorded. Default false. */
  ignoreParentTimeStamp?: boolean;
}

/** Identity a VHD parent exposes so that the child can check it (our VhdDisk has it). */
interface VhdIdentity {
  uniqueId: Uint8Array;
  timeStamp: number;
}

function identityOf(d: VirtualDisk): VhdIdentity | null {
  const x = d as Partial<VhdIdentity> & VirtualDisk;
  return d.format === 'VHD' && x.uniqueId instanceof Uint8Array && typeof x.timeStamp === 'number'
    ? { uniqueId: x.uniqueId, timeStamp: x.timeStamp } : null;
}

function problemError(file: BlockFile, p: Problem): Error {
  return vhdError(p.code === 'TOO_LARGE' ? 'VHD_TOO_LARGE' : 'VHD_CORRUPT', `${file.name}: ${p.structure} at offset ${p.offset}: ${p.message}`,
    { path: file.name, structure: p.structure, offset: p.offset, problem: p.code });
}

export async function openVhd(file: BlockFile, options: OpenVhdOptions = {}): Promise<VhdDisk> {
  const { loaded, problems } = await loadVhd(file);
  const firstError = problems.find((p) => p.severity === 'error');
  if (firstError || !loaded) throw problemError(file, firstError ?? problems[0]!);
  const readOnly = file.readOnly || options.readOnly === true;

  let parent: VirtualDisk | null = null;
  if (loaded.footer.diskType === DiskTypeCode.Differencing && !options.withoutParent) {
    if (!options.openParent) {
      throw vhdError('VHD_INVALID_ARGUMENT', `${file.name}: differencing disk needs an openParent resolver`, { path: file.name });
    }
    try {
      parent = await options.openParent(loaded.parentPaths);
    } catch (e) {
      if (isVmhostError(e)) throw e;
      throw vhdError('VHD_PARENT_MISSING', `${file.name}: cannot open the parent (${loaded.parentPaths.join(', ')})`, { path: file.name }, e);
    }
    const id = identityOf(parent);
    const h = loaded.header!;
    const mismatch = id === null ? null
      : !sameId(id.uniqueId, h.parentUniqueId) ? `unique id ${formatUniqueId(id.uniqueId)}, the child expects ${formatUniqueId(h.parentUniqueId)}`
      : !options.ignoreParentTimeStamp && id.timeStamp !== h.parentTimeStamp ? `time stamp ${id.timeStamp}, the child expects ${h.parentTimeStamp}`
      : null;
    if (mismatch) {
      await parent.close().catch(() => undefined);
      throw vhdError('VHD_PARENT_MISMATCH', `${file.name}: parent has ${mismatch}`, { path: file.name });
    }
  }

  const disk = new VhdDisk({
    file, footer: loaded.footer, footerOffset: loaded.footerOffset, header: loaded.header, bat: loaded.bat, tableCapacity: loaded.tableCapacity,
    parent, parentPaths: loaded.parentPaths, absoluteParentPath: loaded.absoluteParentPath, readOnly,
  });
  if (loaded.footerRecovered && !readOnly) {
    await file.write(encodeFooter(loaded.footer), loaded.footerOffset);
    await file.flush();
  }
  return disk;
}
