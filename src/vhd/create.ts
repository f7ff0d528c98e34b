// Creating a new VHDX file: fixed, dynamic or differencing. Layout (like Hyper-V's):
// 0–1 MiB header section, 1 MiB log (1 MiB), 2 MiB metadata region (1 MiB), 3 MiB BAT
// (rounded up to 1 MiB, with room to grow), then payload blocks. A fixed disk gets every
// payload block allocated up front and LeaveBlocksAllocated set. Nothing here goes through
// the log: the file is not a valid VHDX until the headers are written last and flushed.
import type { BlockFile } from '../blockio/block-file.ts';
import { VmhostError } from '../common/errors.ts';
import {
  MiB, KiB, HEADER1_OFFSET, HEADER2_OFFSET, REGION1_OFFSET, REGION2_OFFSET, DEFAULT_BLOCK_SIZE, DEFAULT_LOG_SIZE,
  MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, MAX_VIRTUAL_SIZE, GUID_BAT_REGION, GUID_METADATA_REGION, SIG_FILE,
  PAYLOAD_FULLY_PRESENT, invalidArg, isPow2, putAscii, roundUp,
} from './format.ts';
import { encodeHeader } from './header.ts';
import { encodeRegionTable } from './region.ts';
import { encodeMetadataRegion, systemItems, type DiskParams } from './metadata.ts';
import { batGeometry, encodeEntry, payloadIndex } from './bat.ts';
import { newGuid, ZERO_GUID } from './guid.ts';

export interface CreateOptions {
  type: 'Fixed' | 'Dynamic' | 'Differencing';
  /** Bytes; multiple of the logical sector size, ≤ 64 TiB. Differencing: defaults to the parent's. */
  virtualSize?: number;
  /** 1–256 MiB power of two; default 32 MiB (2 MiB for differencing, as Hyper-V). */
  blockSize?: number;
  logicalSectorSize?: 512 | 4096;
  physicalSectorSize?: 512 | 4096;
  /** Page-83 disk identifier; random when omitted. */
  diskId?: string;
  /** Differencing: the parent's facts and where to find it. */
  parent?: {
    dataWriteGuid: string;
    virtualSize: number;
    logicalSectorSize: number;
    physicalSectorSize: number;
    relativePath?: string;
    absoluteWin32Path?: string;
    volumePath?: string;
  };
  creator?: string;
}

export interface CreatedLayout {
  virtualSize: number;
  blockSize: number;
  fileSize: number;
}

export const BAT_OFFSET = 3 * MiB;

export async function createVhdx(file: BlockFile, opts: CreateOptions): Promise<CreatedLayout> {
  const ctx = { op: 'create', file: file.name };
  const diff = opts.type === 'Differencing';
  if (diff && !opts.parent) throw invalidArg('a differencing disk needs a parent', ctx);
  const lss = opts.logicalSectorSize ?? (diff ? opts.parent!.logicalSectorSize : 512);
  const pss = opts.physicalSectorSize ?? (diff ? opts.parent!.physicalSectorSize : 4096);
  const virtualSize = opts.virtualSize ?? (diff ? opts.parent!.virtualSize : 0);
  const blockSize = opts.blockSize ?? (diff ? 2 * MiB : DEFAULT_BLOCK_SIZE);
  if (lss !== 512 && lss !== 4096) throw invalidArg(`logical sector size must be 512 or 4096, not ${lss}`, ctx);
  if (pss !== 512 && pss !== 4096) throw invalidArg(`physical sector size must be 512 or 4096, not ${pss}`, ctx);
  if (!isPow2(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw invalidArg(`block size must be a power of two from 1 MiB to 256 MiB, not ${blockSize}`, ctx);
  }
  if (virtualSize > MAX_VIRTUAL_SIZE) {
    throw new VmhostError('VHDX_TOO_LARGE', `virtual size ${virtualSize} exceeds the VHDX limit of 64 TB (${MAX_VIRTUAL_SIZE} bytes)`, ctx);
  }
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize % lss !== 0) {
    throw invalidArg(`virtual size ${virtualSize} must be a positive multiple of ${lss}`, ctx);
  }
  if (diff && opts.parent!.logicalSectorSize !== lss) throw invalidArg('child and parent logical sector sizes must match', ctx);

  const params: DiskParams = {
    blockSize, leaveBlocksAllocated: opts.type === 'Fixed', hasParent: diff, virtualSize,
    page83: opts.diskId ?? newGuid(), logicalSectorSize: lss, physicalSectorSize: pss,
  };
  if (diff) {
    const p = opts.parent!;
    const entries = new Map<string, string>([['parent_linkage', `{${p.dataWriteGuid}}`]]);
    if (p.relativePath) entries.set('relative_path', p.relativePath);
    if (p.volumePath) entries.set('volume_path', p.volumePath);
    if (p.absoluteWin32Path) entries.set('absolute_win32_path', p.absoluteWin32Path);
    params.parentLocator = { locatorType: '', entries };
  }
  const g = batGeometry(blockSize, lss, virtualSize, diff);
  const logOffset = 1 * MiB;
  const metadataOffset = 2 * MiB;
  const metadataLength = 1 * MiB;
  const batLength = roundUp(g.totalEntries * 8, MiB);
  const payloadStart = BAT_OFFSET + batLength;

  // File identifier.
  const fid = new Uint8Array(64 * KiB);
  putAscii(fid, 0, SIG_FILE);
  const creator = opts.creator ?? 'vmhost';
  for (let i = 0; i < Math.min(creator.length, 255); i++) {
    fid[8 + i * 2] = creator.charCodeAt(i) & 0xff;
    fid[9 + i * 2] = creator.charCodeAt(i) >> 8;
  }
  await file.truncate(0);
  await file.write(fid, 0);

  const regions = encodeRegionTable([
    { guid: GUID_BAT_REGION, fileOffset: BAT_OFFSET, length: batLength, required: true },
    { guid: GUID_METADATA_REGION, fileOffset: metadataOffset, length: metadataLength, required: true },
  ]);
  await file.write(regions, REGION1_OFFSET);
  await file.write(regions, REGION2_OFFSET);
  await file.write(encodeMetadataRegion(systemItems(params), metadataLength), metadataOffset);

  let fileSize = payloadStart;
  if (opts.type === 'Fixed') {
    // All payload blocks allocated in order right after the BAT.
    const PAGE = 1 * MiB;
    const page = new Uint8Array(PAGE);
    let pageStart = -1;
    for (let b = 0; b < g.dataBlocks; b++) {
      const idx = payloadIndex(g, b);
      const byte = idx * 8;
      const ps = Math.floor(byte / PAGE) * PAGE;
      if (ps !== pageStart) {
        if (pageStart >= 0) await file.write(page, BAT_OFFSET + pageStart);
        page.fill(0);
        pageStart = ps;
      }
      encodeEntry(page, byte - ps, { state: PAYLOAD_FULLY_PRESENT, offset: payloadStart + b * blockSize });
    }
    if (pageStart >= 0) await file.write(page, BAT_OFFSET + pageStart);
    fileSize = payloadStart + g.dataBlocks * blockSize;
  }
  await file.truncate(fileSize);
  await file.flush();

  // Headers last: the file becomes a VHDX only once they are durable.
  const fw = newGuid();
  const h = { fileWriteGuid: fw, dataWriteGuid: newGuid(), logGuid: ZERO_GUID, logVersion: 0, version: 1, logLength: DEFAULT_LOG_SIZE, logOffset };
  await file.write(encodeHeader({ ...h, sequenceNumber: 1n }), HEADER1_OFFSET);
  await file.write(encodeHeader({ ...h, sequenceNumber: 2n }), HEADER2_OFFSET);
  await file.flush();
  return { virtualSize, blockSize, fileSize };
}
