// Get-VHD and Test-VHD of a disk file, for the CLI (a file no running VM holds, opened here
// read-only and locked shared) and for the daemon (a file it serves, answered from the open
// disk: its live BAT and log state, never a second reading of a file that is being written).
// One description, in Hyper-V's property names and order, whoever answers.
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { BlockFile } from '../blockio/block-file.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { isVmhostError } from '../common/errors.ts';
import { checkVhdx, describeVhdx, type VhdxDisk } from '../vhd/index.ts';
import { checkVhd, describeVhd, VhdDisk } from '../vhd/vhd1/index.ts';
import { detectFormat, lockedFile, openDiskFile, type DetectedFormat } from './open-disk.ts';
import { RawDisk } from './raw-disk.ts';

export interface VirtualHardDisk {
  ComputerName: string;
  Path: string;
  VhdFormat: DetectedFormat;
  VhdType: 'Fixed' | 'Dynamic' | 'Differencing';
  FileSize: number;
  Size: number;
  MinimumSize: number | null;
  LogicalSectorSize: number;
  PhysicalSectorSize: number;
  BlockSize: number;
  ParentPath: string | null;
  DiskIdentifier: string | null;
  FragmentationPercentage: number | null;
  Alignment: number;
  Attached: boolean;
  DiskNumber: null;
  IsDeleted: boolean;
  Number: null;
}

export const VHD_PROPERTIES: ReadonlyArray<keyof VirtualHardDisk> = ['ComputerName', 'Path', 'VhdFormat', 'VhdType', 'FileSize', 'Size', 'MinimumSize',
  'LogicalSectorSize', 'PhysicalSectorSize', 'BlockSize', 'ParentPath', 'DiskIdentifier', 'FragmentationPercentage', 'Alignment', 'Attached',
  'DiskNumber', 'IsDeleted', 'Number'];

export function isVhdx(d: VirtualDisk): d is VhdxDisk {
  return d.format === 'VHDX';
}

/** The file a disk layer reads, and the layer under it (differencing disks). */
function layer(d: VirtualDisk): { file: BlockFile | undefined; parent: VirtualDisk | undefined } {
  if (isVhdx(d)) return { file: d.file, parent: d.parent };
  if (d instanceof VhdDisk) return { file: d.file, parent: d.parent ?? undefined };
  if (d instanceof RawDisk) return { file: d.file, parent: undefined };
  return { file: undefined, parent: undefined };
}

/** The open file of a chain's leaf: the one whose lock says who owns the disk (file-lock.ts). */
export function leafFile(d: VirtualDisk): BlockFile | undefined {
  return layer(d).file;
}

/** The files of an open chain, leaf first, as they were opened (the daemon's holder check walks these). */
export function chainFiles(d: VirtualDisk): string[] {
  const out: string[] = [];
  for (let l: VirtualDisk | undefined = d; l; l = layer(l).parent) {
    const name = layer(l).file?.name;
    if (name) out.push(resolve(name));
  }
  return out;
}

/** Get-VHD of a file nobody holds for writing: opened alone, read-only, locked shared. */
export async function describeDiskFile(path: string): Promise<VirtualHardDisk> {
  const d = await openDiskFile(path, { readOnly: true, noParent: true });
  try {
    return await describeOpenDisk(d, path, false, await parentPathOf(path, d));
  } finally {
    await d.close().catch(() => undefined);
  }
}

/** Get-VHD of an open disk (the daemon's served one: `attached`), properties in Hyper-V's order. */
export async function describeOpenDisk(d: VirtualDisk, path: string, attached: boolean, parentPath?: string | null): Promise<VirtualHardDisk> {
  const base = { ComputerName: hostname(), Path: path, Attached: attached, DiskNumber: null, IsDeleted: false, Number: null };
  const parent = parentPath !== undefined ? parentPath : (chainFiles(d)[1] ?? null);
  let x: VirtualHardDisk;
  if (isVhdx(d)) {
    const v = await describeVhdx(d);
    x = {
      ...base, VhdFormat: 'VHDX', VhdType: v.VhdType, FileSize: v.FileSize, Size: v.Size, MinimumSize: v.MinimumSize,
      LogicalSectorSize: v.LogicalSectorSize, PhysicalSectorSize: v.PhysicalSectorSize, BlockSize: v.BlockSize,
      ParentPath: v.ParentPath === null ? null : parent, DiskIdentifier: v.DiskIdentifier,
      FragmentationPercentage: v.FragmentationPercentage, Alignment: 1,
    };
  } else if (d instanceof VhdDisk) {
    const v = await describeVhd(d);
    // Data blocks follow a 512-byte-multiple sector bitmap: aligned to 4 KiB only when that bitmap is.
    const aligned = !d.bat || [...d.bat].every((e) => e === 0xffffffff || (e * 512 + d.bitmapBytes) % 4096 === 0);
    x = {
      ...base, VhdFormat: 'VHD', VhdType: v.VhdType, FileSize: v.FileSize, Size: v.Size, MinimumSize: v.MinimumSize,
      LogicalSectorSize: 512, PhysicalSectorSize: 512, BlockSize: v.BlockSize,
      ParentPath: v.ParentPath === null ? null : parent, DiskIdentifier: v.DiskIdentifier,
      FragmentationPercentage: v.FragmentationPercentage, Alignment: aligned ? 1 : 0,
    };
  } else {
    x = {
      ...base, VhdFormat: 'RAW', VhdType: 'Fixed', FileSize: (await stat(path)).size, Size: d.virtualSize, MinimumSize: null,
      LogicalSectorSize: d.logicalSectorSize, PhysicalSectorSize: d.physicalSectorSize, BlockSize: 0, ParentPath: null,
      DiskIdentifier: null, FragmentationPercentage: null, Alignment: 1,
    };
  }
  return Object.fromEntries(VHD_PROPERTIES.map((k) => [k, x[k]])) as unknown as VirtualHardDisk;
}

/** Where a differencing disk's parent is on this host: the file its chain opens, else the locator's path. */
async function parentPathOf(path: string, alone: VirtualDisk): Promise<string | null> {
  const locator = isVhdx(alone) ? (await describeVhdx(alone)).ParentPath : alone instanceof VhdDisk ? (await describeVhd(alone)).ParentPath : null;
  if (locator === null) return null;
  try {
    const chain = await openDiskFile(path, { readOnly: true });
    const found = chainFiles(chain)[1];
    await chain.close();
    if (found) return found;
  } catch {
    /* a broken chain still shows where the locator points */
  }
  const unix = locator.replace(/\\/g, '/');
  return isAbsolute(unix) ? unix : resolve(dirname(path), unix);
}

const message = (e: unknown): string => `${isVmhostError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`;

/** The problems of one file by itself (opened read-only, locked shared), each prefixed with its path. */
async function fileProblems(p: string): Promise<string[]> {
  let f;
  try {
    f = await lockedFile(p, { readOnly: true }, 'shared');
  } catch (e) {
    return [`${p}: ${message(e)}`];
  }
  try {
    let format: DetectedFormat;
    try {
      format = await detectFormat(f, p);
    } catch (e) {
      return [`${p}: ${e instanceof Error ? e.message : String(e)}`];
    }
    if (format === 'VHDX') return (await checkVhdx(f)).map((m) => `${p}: ${m}`);
    if (format === 'VHD') return await vhdProblems(p, f); // awaited: the finally below closes f
    return [];
  } finally {
    await f.close().catch(() => undefined);
  }
}

async function vhdProblems(p: string, f: BlockFile): Promise<string[]> {
  return (await checkVhd(f)).filter((x) => x.severity === 'error').map((x) => `${p}: ${x.structure} at offset ${x.offset}: ${x.message}`);
}

/** Test-VHD of a file nobody holds for writing: every problem of it and its whole parent chain. */
export async function testDiskFile(path: string): Promise<string[]> {
  const problems = await fileProblems(path);
  if (problems.length > 0) return problems;
  let chain: VirtualDisk;
  try {
    chain = await openDiskFile(path, { readOnly: true });
  } catch (e) {
    return [`${path}: ${message(e)}`];
  }
  try {
    for (const parent of chainFiles(chain).slice(1)) problems.push(...(await fileProblems(parent)));
  } finally {
    await chain.close().catch(() => undefined);
  }
  return problems;
}

/**
 * Test-VHD of a disk the daemon serves: the leaf from its open state (the problems its open
 * found; a VHD's structures read through the open file, which has no log), the parents,
 * which nobody writes, from their files.
 */
export async function testOpenDisk(d: VirtualDisk): Promise<string[]> {
  const [leaf, ...parents] = chainFiles(d);
  const problems: string[] = [];
  if (isVhdx(d)) problems.push(...d.openProblems.map((m) => `${leaf}: ${m}`));
  else if (d instanceof VhdDisk) problems.push(...(await vhdProblems(leaf!, d.file)));
  for (const p of parents) problems.push(...(await fileProblems(p)));
  return problems;
}
