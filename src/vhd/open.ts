// Opening a VHDX file (2.2–2.6 in order): file identifier, current header, log replay when
// the header names a pending log (refused for read-only opens), region table, metadata, BAT,
// then the parent chain for differencing disks. Every size read from the file is bounded
// before anything is allocated from it.
import type { BlockFile } from '../blockio/block-file.ts';
import { VmhostError } from '../common/errors.ts';
import {
  SIG_FILE, HEADER_SECTION_SIZE, HEADER1_OFFSET, MAX_METADATA_REGION, MiB, ascii, corrupt, roundUp,
} from './format.ts';
import { readCurrentHeader, HeaderState } from './header.ts';
import { readRegions } from './region.ts';
import { decodeMetadataRegion, parseDiskParams } from './metadata.ts';
import { pendingLog, replayLog, ZERO_GUID } from './log.ts';
import { newGuid } from './guid.ts';
import { VhdxDisk, geometryOf } from './disk.ts';
import { locatorPaths, checkLinkage, MAX_CHAIN_DEPTH, type ParentResolver } from './chain.ts';

export interface OpenOptions {
  readOnly?: boolean;
  /** Needed to open a differencing disk's parents. */
  openParent?: ParentResolver;
  /** Open a differencing disk without its parent (describe/check); reads needing the parent fail. */
  noParent?: boolean;
}

export async function openVhdx(file: BlockFile, opts: OpenOptions = {}, depth = 0): Promise<VhdxDisk> {
  const readOnly = (opts.readOnly ?? false) || file.readOnly;
  const name = file.name;
  const size = await file.size();
  const id = new Uint8Array(8);
  await file.read(id, 0);
  if (ascii(id, 0, 8) !== SIG_FILE) throw corrupt('not a VHDX file (no "vhdxfile" identifier)', { structure: 'file identifier', offset: 0, file: name });
  if (size < HEADER_SECTION_SIZE) throw corrupt(`file too short (${size} bytes)`, { file: name });

  const cur = await readCurrentHeader(file);
  const headers = new HeaderState(cur.header, cur.slot);
  const logArea = { offset: cur.header.logOffset, length: cur.header.logLength };
  if (logArea.offset + logArea.length > size) {
    throw corrupt(`log (${logArea.offset}+${logArea.length}) outside the file (${size} bytes)`, { structure: 'header', offset: HEADER1_OFFSET, file: name });
  }
  if (cur.header.logGuid !== ZERO_GUID) {
    const pending = await pendingLog(file, logArea, cur.header.logGuid);
    if (pending) {
      if (readOnly) {
        throw new VmhostError('VHDX_LOG_REPLAY_NEEDED', `${name} has a log that must be replayed; open it read-write first`, {
          file: name, structure: 'log', offset: logArea.offset,
        });
      }
      await headers.update(file, { fileWriteGuid: newGuid() });
      await replayLog(file, logArea, pending);
      await file.flush();
      await headers.update(file, { logGuid: ZERO_GUID });
    }
  }

  const regions = await readRegions(file);
  const ctxM = { structure: 'metadata', offset: regions.metadata.fileOffset, file: name };
  for (const r of regions.all) {
    if (r.fileOffset < logArea.offset + logArea.length && logArea.offset < r.fileOffset + r.length) {
      throw corrupt(`region ${r.guid} overlaps the log`, { structure: 'region table', file: name });
    }
  }
  if (regions.metadata.length > MAX_METADATA_REGION) {
    throw corrupt(`metadata region of ${regions.metadata.length} bytes is larger than supported`, ctxM);
  }
  const metadataImage = new Uint8Array(regions.metadata.length);
  await file.read(metadataImage, regions.metadata.fileOffset);
  const items = decodeMetadataRegion(metadataImage, ctxM);
  const params = parseDiskParams(items, ctxM);
  const g = geometryOf(params);
  if (g.totalEntries * 8 > regions.bat.length) {
    throw corrupt(`BAT region too small: ${g.totalEntries} entries need ${g.totalEntries * 8} bytes`, { structure: 'BAT', offset: regions.bat.fileOffset, file: name });
  }
  let fileEnd = roundUp(size, MiB);
  for (const r of regions.all) fileEnd = Math.max(fileEnd, r.fileOffset + r.length);
  fileEnd = Math.max(fileEnd, logArea.offset + logArea.length);

  const disk = new VhdxDisk({
    file, readOnly, headers, logArea, regions: regions.all, batRegion: regions.bat, metadataRegion: regions.metadata,
    metadataImage, items, params, fileEnd, problems: [...cur.problems, ...regions.problems],
  });

  if (params.hasParent && !opts.noParent) {
    if (!opts.openParent) throw new VmhostError('VHDX_PARENT_REQUIRED', `${name} is a differencing disk; a parent resolver is needed`, { file: name });
    if (depth >= MAX_CHAIN_DEPTH) throw new VmhostError('VHDX_CHAIN_TOO_DEEP', `chain deeper than ${MAX_CHAIN_DEPTH}`, { file: name });
    const paths = locatorPaths(params.parentLocator!);
    let pf: BlockFile;
    try {
      pf = await opts.openParent(paths, { child: name, depth });
    } catch (e) {
      if (e instanceof VmhostError) throw e;
      throw new VmhostError('VHDX_PARENT_NOT_FOUND', `cannot open the parent of ${name} (${paths.relativePath ?? paths.absoluteWin32Path ?? paths.volumePath ?? 'no path'})`, {
        file: name, relativePath: paths.relativePath, absoluteWin32Path: paths.absoluteWin32Path,
      }, { cause: e });
    }
    let parent: VhdxDisk;
    try {
      parent = await openVhdx(pf, { ...opts, readOnly: pf.readOnly }, depth + 1);
    } catch (e) {
      await pf.close().catch(() => undefined);
      throw e;
    }
    try {
      checkLinkage(paths, parent.dataWriteGuid, name, pf.name);
      if (parent.logicalSectorSize !== params.logicalSectorSize) {
        throw new VmhostError('VHDX_PARENT_MISMATCH', 'parent and child logical sector sizes differ', { file: name, parent: pf.name });
      }
    } catch (e) {
      await parent.close().catch(() => undefined);
      throw e;
    }
    disk.parent = parent;
  }
  return disk;
}
