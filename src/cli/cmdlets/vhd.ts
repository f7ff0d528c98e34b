// The virtual disk file cmdlets (Hyper-V 1.4): New-VHD, Get-VHD, Resize-VHD, Merge-VHD,
// Convert-VHD, Optimize-VHD, Test-VHD, Set-VHD, and vmhost's Get-/Set-VHDMetadata. Like
// Hyper-V's, they work directly on files on this host: no daemon is involved. The file format
// comes from the content (storage/open-disk) for existing files and from the extension
// (.vhdx, .vhd; .img/.raw for Convert-VHD) for new ones. Every bad input is a one-line error
// naming the parameter; long operations report progress with -Verbose.
import { access, realpath, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { NodeFile, type BlockFile, type VirtualDisk } from '../../blockio/index.ts';
import { VmhostError, isVmhostError, type ErrorCode } from '../../common/index.ts';
import { openDiskFile, detectFormat, locateParent, RawDisk } from '../../storage/index.ts';
import {
  createVhdx, openVhdx, resizeVhdx, mergeVhdx, compactVhdx, checkVhdx, describeVhdx, convertDisk, setVhdxParams,
  listUserMetadata, getUserMetadata, setUserMetadata, MAX_VIRTUAL_SIZE, type VhdxDisk, type ParentLocatorPaths,
} from '../../vhd/index.ts';
import { createVhd, openVhd, describeVhd, checkVhd, resizeVhd, mergeVhd as mergeVhdChain, setVhdParent, VhdDisk } from '../../vhd/vhd1/index.ts';
import { defineCmdlet, type CmdletContext } from '../cmdlet.ts';
import { isAttached, resizeOnline } from './attached-disk.ts';

const MiB = 1024 * 1024;
const MAX_VHD_SIZE = 2040 * 1024 * MiB;
type FileFormat = 'VHDX' | 'VHD' | 'RAW';

// ---- errors -------------------------------------------------------------------------------

function paramError(ctx: CmdletContext, param: string, why: string, code: ErrorCode = 'VHD_INVALID_ARGUMENT'): VmhostError {
  return new VmhostError(code, `${ctx.cmdlet}: parameter -${param}: ${why}`, { op: ctx.cmdlet, parameter: param });
}

function localOnly(ctx: CmdletContext): void {
  const remote = ctx.computerName.filter((n) => !['localhost', '.', '127.0.0.1', hostname()].includes(n.toLowerCase()));
  if (remote.length > 0) throw paramError(ctx, 'ComputerName', `the VHD cmdlets work on files of this host only (got ${remote.join(', ')})`);
}

// ---- paths and formats --------------------------------------------------------------------

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The format a new file gets from its extension. */
function formatFromName(ctx: CmdletContext, param: string, path: string, allowRaw: boolean): FileFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.vhdx') return 'VHDX';
  if (ext === '.vhd') return 'VHD';
  if (allowRaw && (ext === '.img' || ext === '.raw')) return 'RAW';
  throw paramError(ctx, param, `'${path}' must end in .vhdx or .vhd${allowRaw ? ' (or .img/.raw for a raw image)' : ''}`);
}

/** An existing disk file, as an absolute path; VHD_FILE_NOT_FOUND otherwise. */
async function existingFile(ctx: CmdletContext, param: string, path: string): Promise<string> {
  const abs = resolve(path);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw paramError(ctx, param, `file not found: ${abs}`, 'VHD_FILE_NOT_FOUND');
  }
  if (!st.isFile()) throw paramError(ctx, param, `not a file: ${abs}`);
  return abs;
}

async function newFile(ctx: CmdletContext, param: string, path: string): Promise<string> {
  const abs = resolve(path);
  if (await exists(abs)) throw paramError(ctx, param, `the file already exists: ${abs}`, 'VHD_FILE_EXISTS');
  if (!(await exists(dirname(abs)))) throw paramError(ctx, param, `the folder does not exist: ${dirname(abs)}`, 'VHD_FILE_NOT_FOUND');
  return abs;
}

/** Runs `fn` on a newly created file; the file is removed again if `fn` fails. */
async function creating<T>(path: string, fn: (f: NodeFile) => Promise<T>): Promise<T> {
  const f = await NodeFile.open(path, { create: true });
  try {
    return await fn(f);
  } catch (e) {
    await f.close().catch(() => undefined);
    await rm(path, { force: true });
    throw e;
  }
}

function relativeLocator(child: string, parent: string): string {
  const r = relative(dirname(child), parent);
  return r.startsWith('..') ? r : `./${r}`;
}

/** Opens a disk without its parent (metadata only): Get-VHD, Set-VHD and metadata work on broken chains too. */
async function openAlone(path: string, readOnly: boolean): Promise<VirtualDisk> {
  const file = await NodeFile.open(path, { readOnly });
  try {
    const format = await detectFormat(file, path);
    if (format === 'VHDX') return await openVhdx(file, { readOnly, noParent: true });
    if (format === 'VHD') return await openVhd(file, { readOnly, withoutParent: true });
    return await RawDisk.open(file, { readOnly });
  } catch (e) {
    await file.close().catch(() => undefined);
    throw e;
  }
}

async function withDisk<T>(d: VirtualDisk, fn: (d: VirtualDisk) => Promise<T>): Promise<T> {
  try {
    return await fn(d);
  } finally {
    await d.close().catch(() => undefined);
  }
}

function isVhdx(d: VirtualDisk): d is VhdxDisk {
  return d.format === 'VHDX';
}

function fileOf(d: VirtualDisk | null | undefined): string | undefined {
  const f = (d as { file?: BlockFile } | null | undefined)?.file;
  return f?.name;
}

function parentOf(d: VirtualDisk): VirtualDisk | undefined {
  const p = (d as { parent?: VirtualDisk | null }).parent;
  return p ?? undefined;
}

// ---- Get-VHD ------------------------------------------------------------------------------

export interface VirtualHardDisk {
  ComputerName: string;
  Path: string;
  VhdFormat: FileFormat;
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

/** Where a differencing disk's parent is on this host: the file the chain opens, else the locator's path. */
async function parentPathOf(path: string, locator: string | null): Promise<string | null> {
  if (locator === null) return null;
  try {
    const chain = await openDiskFile(path, { readOnly: true });
    const found = fileOf(parentOf(chain));
    await chain.close();
    if (found) return found;
  } catch {
    /* a broken chain still shows where the locator points */
  }
  const unix = locator.replace(/\\/g, '/');
  return isAbsolute(unix) ? unix : resolve(dirname(path), unix);
}

/** Get-VHD's object, its properties in Hyper-V's order. */
async function describe(path: string): Promise<VirtualHardDisk> {
  const x = await describeUnordered(path);
  return Object.fromEntries(VHD_PROPERTIES.map((k) => [k, x[k]])) as unknown as VirtualHardDisk;
}

async function describeUnordered(path: string): Promise<VirtualHardDisk> {
  const d = await openAlone(path, true);
  return withDisk(d, async () => {
    const base = { ComputerName: hostname(), Path: path, Attached: false, DiskNumber: null, IsDeleted: false, Number: null };
    if (isVhdx(d)) {
      const x = await describeVhdx(d);
      return {
        ...base, VhdFormat: 'VHDX', VhdType: x.VhdType, FileSize: x.FileSize, Size: x.Size, MinimumSize: x.MinimumSize,
        LogicalSectorSize: x.LogicalSectorSize, PhysicalSectorSize: x.PhysicalSectorSize, BlockSize: x.BlockSize,
        ParentPath: await parentPathOf(path, x.ParentPath), DiskIdentifier: x.DiskIdentifier,
        FragmentationPercentage: x.FragmentationPercentage, Alignment: 1,
      };
    }
    if (d instanceof VhdDisk) {
      const x = await describeVhd(d);
      // Data blocks follow a 512-byte-multiple sector bitmap: aligned to 4 KiB only when that bitmap is.
      const aligned = !d.bat || [...d.bat].every((e) => e === 0xffffffff || (e * 512 + d.bitmapBytes) % 4096 === 0);
      return {
        ...base, VhdFormat: 'VHD', VhdType: x.VhdType, FileSize: x.FileSize, Size: x.Size, MinimumSize: x.MinimumSize,
        LogicalSectorSize: 512, PhysicalSectorSize: 512, BlockSize: x.BlockSize,
        ParentPath: await parentPathOf(path, x.ParentPath), DiskIdentifier: x.DiskIdentifier,
        FragmentationPercentage: x.FragmentationPercentage, Alignment: aligned ? 1 : 0,
      };
    }
    return {
      ...base, VhdFormat: 'RAW', VhdType: 'Fixed', FileSize: (await stat(path)).size, Size: d.virtualSize, MinimumSize: null,
      LogicalSectorSize: d.logicalSectorSize, PhysicalSectorSize: d.physicalSectorSize, BlockSize: 0, ParentPath: null,
      DiskIdentifier: null, FragmentationPercentage: null, Alignment: 1,
    };
  });
}

const VHD_PROPERTIES: ReadonlyArray<keyof VirtualHardDisk> = ['ComputerName', 'Path', 'VhdFormat', 'VhdType', 'FileSize', 'Size', 'MinimumSize',
  'LogicalSectorSize', 'PhysicalSectorSize', 'BlockSize', 'ParentPath', 'DiskIdentifier', 'FragmentationPercentage', 'Alignment', 'Attached',
  'DiskNumber', 'IsDeleted', 'Number'];

const vhdView = { layout: 'list' as const, columns: VHD_PROPERTIES.map((c) => ({ label: c, value: c })) };

export const getVhd = defineCmdlet({
  name: 'Get-VHD',
  synopsis: 'Show the properties of virtual disk files (.vhdx, .vhd; raw images as VhdFormat RAW, a vmhost extension)',
  params: { Path: { type: 'string', array: true, mandatory: true, help: 'Disk file(s)' } },
  positional: ['Path'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const out: VirtualHardDisk[] = [];
    for (const p of args.Path) {
      const path = await existingFile(ctx, 'Path', p);
      out.push({ ...(await describe(path)), Attached: await isAttached(ctx, path) });
    }
    return args.Path.length === 1 ? out[0] : out;
  },
});

// ---- New-VHD ------------------------------------------------------------------------------

function checkVirtualSize(ctx: CmdletContext, param: string, size: number, format: 'VHDX' | 'VHD', lss: number): void {
  if (format === 'VHDX' && size > MAX_VIRTUAL_SIZE) {
    throw paramError(ctx, param, `${size} bytes exceeds the VHDX maximum of 64 TB (${MAX_VIRTUAL_SIZE} bytes)`, 'VHDX_TOO_LARGE');
  }
  if (format === 'VHD' && size > MAX_VHD_SIZE) {
    throw paramError(ctx, param, `${size} bytes exceeds the VHD maximum of 2040 GB (${MAX_VHD_SIZE} bytes); use a .vhdx file`, 'VHD_TOO_LARGE');
  }
  if (size <= 0 || size % lss !== 0) throw paramError(ctx, param, `${size} is not a positive multiple of the ${lss}-byte logical sector`);
}

function checkBlockSize(ctx: CmdletContext, format: FileFormat, bs: number | undefined): void {
  if (bs === undefined || format === 'RAW') return;
  const pow2 = bs > 0 && (bs & (bs - 1)) === 0;
  if (format === 'VHDX' && (!pow2 || bs < MiB || bs > 256 * MiB)) throw paramError(ctx, 'BlockSizeBytes', `${bs} must be a power of two from 1MB to 256MB`);
  if (format === 'VHD' && (!pow2 || bs < 4096 || bs > 256 * MiB)) throw paramError(ctx, 'BlockSizeBytes', `${bs} must be a power of two from 4KB to 256MB (Hyper-V uses 512KB or 2MB)`);
}

function checkSectorSizes(ctx: CmdletContext, format: FileFormat, lss: number | undefined, pss: number | undefined): void {
  if (format !== 'VHD') return;
  if (lss !== undefined && lss !== 512) throw paramError(ctx, 'LogicalSectorSizeBytes', 'a VHD has 512-byte logical sectors only; use a .vhdx file for 4096');
  if (pss !== undefined && pss !== 512) throw paramError(ctx, 'PhysicalSectorSizeBytes', 'a VHD has 512-byte physical sectors only; use a .vhdx file for 4096');
}

export const newVhd = defineCmdlet({
  name: 'New-VHD',
  synopsis: 'Create a fixed, dynamic or differencing virtual disk file (.vhdx or .vhd, by extension)',
  params: {
    Path: { type: 'string', mandatory: true, help: 'The new file; .vhdx or .vhd' },
    SizeBytes: { type: 'size', mandatory: ['Fixed', 'Dynamic'], help: 'Virtual size, e.g. 10GB (VHDX ≤ 64TB, VHD ≤ 2040GB)' },
    Fixed: { type: 'switch', sets: ['Fixed'], mandatory: ['Fixed'], help: 'Every block allocated when the file is created' },
    Dynamic: { type: 'switch', sets: ['Dynamic'], help: 'Grows as data is written (the default)' },
    Differencing: { type: 'switch', sets: ['Differencing'], mandatory: ['Differencing'], help: 'Changes against -ParentPath' },
    ParentPath: { type: 'string', sets: ['Differencing'], mandatory: ['Differencing'], help: 'The parent disk of a differencing disk' },
    BlockSizeBytes: { type: 'size', help: 'VHDX: 1MB–256MB (default 32MB, 2MB differencing); VHD: default 2MB' },
    LogicalSectorSizeBytes: { type: 'int', values: [512, 4096], help: 'VHDX only: 512 (default) or 4096' },
    PhysicalSectorSizeBytes: { type: 'int', values: [512, 4096], help: 'VHDX: 512 or 4096 (default); VHD: 512' },
  },
  positional: ['Path', 'SizeBytes'],
  defaultSet: 'Dynamic',
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const format = formatFromName(ctx, 'Path', args.Path, false) as 'VHDX' | 'VHD';
    const path = await newFile(ctx, 'Path', args.Path);
    const lss = args.LogicalSectorSizeBytes, pss = args.PhysicalSectorSizeBytes;
    checkSectorSizes(ctx, format, lss, pss);
    checkBlockSize(ctx, format, args.BlockSizeBytes);
    const type = ctx.parameterSet === 'Fixed' ? 'Fixed' : ctx.parameterSet === 'Differencing' ? 'Differencing' : 'Dynamic';
    if (type !== 'Differencing') {
      checkVirtualSize(ctx, 'SizeBytes', args.SizeBytes!, format, lss ?? 512);
      await creating(path, async (f) => {
        if (format === 'VHDX') {
          await createVhdx(f, {
            type, virtualSize: args.SizeBytes!, ...(args.BlockSizeBytes !== undefined ? { blockSize: args.BlockSizeBytes } : {}),
            ...(lss !== undefined ? { logicalSectorSize: lss as 512 | 4096 } : {}), ...(pss !== undefined ? { physicalSectorSize: pss as 512 | 4096 } : {}),
          });
        } else {
          await createVhd(f, { type, size: args.SizeBytes!, ...(args.BlockSizeBytes !== undefined ? { blockSize: args.BlockSizeBytes } : {}) });
        }
        await f.close();
      });
      return describe(path);
    }
    // Differencing: the parent must be a disk of the same format whose chain opens.
    const parentPath = await realpath(await existingFile(ctx, 'ParentPath', args.ParentPath!));
    const parent = await openDiskFile(parentPath, { readOnly: true });
    await withDisk(parent, async () => {
      if (parent.format !== format) throw paramError(ctx, 'ParentPath', `the parent is a ${parent.format} file; a ${format} child needs a ${format} parent`);
      if (args.SizeBytes !== undefined && args.SizeBytes !== parent.virtualSize) {
        throw paramError(ctx, 'SizeBytes', `a differencing disk has its parent's size (${parent.virtualSize}); omit -SizeBytes or give that size`);
      }
      if (lss !== undefined && lss !== parent.logicalSectorSize) throw paramError(ctx, 'LogicalSectorSizeBytes', `must equal the parent's (${parent.logicalSectorSize})`);
      await creating(path, async (f) => {
        if (isVhdx(parent)) {
          await createVhdx(f, {
            type: 'Differencing', ...(args.BlockSizeBytes !== undefined ? { blockSize: args.BlockSizeBytes } : {}),
            ...(pss !== undefined ? { physicalSectorSize: pss as 512 | 4096 } : {}),
            parent: {
              dataWriteGuid: parent.dataWriteGuid, virtualSize: parent.virtualSize, logicalSectorSize: parent.logicalSectorSize,
              physicalSectorSize: parent.physicalSectorSize, relativePath: relativeLocator(path, parentPath), absoluteWin32Path: parentPath,
            },
          });
        } else {
          await createVhd(f, {
            type: 'Differencing', ...(args.BlockSizeBytes !== undefined ? { blockSize: args.BlockSizeBytes } : {}),
            parent: { disk: parent, path: parentPath, relativePath: relativeLocator(path, parentPath) },
          });
        }
        await f.close();
      });
    });
    return describe(path);
  },
});

// ---- Resize-VHD ---------------------------------------------------------------------------

export const resizeVhdCmdlet = defineCmdlet({
  name: 'Resize-VHD',
  synopsis: 'Grow or shrink a disk file\'s virtual size (VHDX shrinks down to MinimumSize; VHD grows only)',
  params: {
    Path: { type: 'string', mandatory: true },
    SizeBytes: { type: 'size', sets: ['Size'], mandatory: ['Size'], help: 'The new virtual size, e.g. 20GB' },
    ToMinimumSize: { type: 'switch', sets: ['Minimum'], mandatory: ['Minimum'], help: 'Shrink to the end of the last block holding data' },
  },
  positional: ['Path', 'SizeBytes'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const path = await existingFile(ctx, 'Path', args.Path);
    if (args.SizeBytes !== undefined && (await resizeOnline(ctx, path, args.SizeBytes))) return args.PassThru ? describe(path) : undefined;
    const d = await openDiskFile(path, { readOnly: false });
    await withDisk(d, async () => {
      const format = d.format;
      if (format === 'RAW') throw paramError(ctx, 'Path', 'Resize-VHD works on .vhdx and .vhd files; this is a raw image');
      let size: number;
      if (args.ToMinimumSize) {
        if (!isVhdx(d)) throw paramError(ctx, 'ToMinimumSize', 'a VHD cannot shrink; only VHDX files support -ToMinimumSize', 'VHD_UNSUPPORTED');
        const min = (await describeVhdx(d)).MinimumSize;
        size = min > 0 ? min : Math.min(d.virtualSize, d.blockSize);
      } else {
        size = args.SizeBytes!;
        checkVirtualSize(ctx, 'SizeBytes', size, format, d.logicalSectorSize);
        if (isVhdx(d) && size < d.virtualSize) {
          const min = (await describeVhdx(d)).MinimumSize;
          if (size < min) {
            throw paramError(ctx, 'SizeBytes', `${size} is below the minimum size ${min} of ${path} (the end of the last block holding data); -ToMinimumSize shrinks as far as possible`, 'VHD_BELOW_MINIMUM_SIZE');
          }
        }
        if (d instanceof VhdDisk && size < d.virtualSize) throw paramError(ctx, 'SizeBytes', `a VHD cannot shrink (from ${d.virtualSize} to ${size}); convert it to VHDX first`, 'VHD_UNSUPPORTED');
      }
      ctx.verbose(`resizing ${path} from ${d.virtualSize} to ${size} bytes`);
      if (isVhdx(d)) await resizeVhdx(d, size);
      else await resizeVhd(d as VhdDisk, size);
    });
    return args.PassThru ? describe(path) : undefined;
  },
});

// ---- Merge-VHD ----------------------------------------------------------------------------

export const mergeVhd = defineCmdlet({
  name: 'Merge-VHD',
  synopsis: 'Merge a differencing disk into its parent or an ancestor (-DestinationPath); the merged files are deleted',
  params: {
    Path: { type: 'string', mandatory: true, help: 'The differencing disk to merge' },
    DestinationPath: { type: 'string', help: 'The ancestor to merge into (default: the parent)' },
    Force: { type: 'switch', help: 'Accepted for Hyper-V compatibility (nothing prompts)' },
  },
  positional: ['Path', 'DestinationPath'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const path = await realpath(await existingFile(ctx, 'Path', args.Path));
    const dest = args.DestinationPath === undefined ? undefined : await realpath(await existingFile(ctx, 'DestinationPath', args.DestinationPath));
    const probe = await openAlone(path, true);
    const format = probe.format, type = probe.type;
    await probe.close();
    if (format === 'RAW') throw paramError(ctx, 'Path', `${path} is a raw image; only a differencing disk can be merged`);
    if (type !== 'Differencing') throw paramError(ctx, 'Path', `${path} is a ${type.toLowerCase()} disk; only a differencing disk can be merged`);
    // Open the chain: every ancestor read-only except the destination (the parent when none is named).
    const chain: string[] = [path];
    const findParent = async (child: string, paths: Array<string | undefined>): Promise<{ found: string; writable: boolean }> => {
      const found = await realpath(await locateParent(child, paths));
      chain.push(found);
      return { found, writable: found === (dest ?? (chain.length === 2 ? found : undefined)) };
    };
    const leaf: VirtualDisk = format === 'VHDX'
      ? await openVhdx(await NodeFile.open(path, { readOnly: true }), {
        openParent: async (loc: ParentLocatorPaths, c: { child: string }): Promise<BlockFile> => {
          const { found, writable } = await findParent(c.child, [loc.relativePath, loc.absoluteWin32Path, loc.volumePath]);
          return NodeFile.open(found, { readOnly: !writable });
        },
      })
      : await openVhd(await NodeFile.open(path, { readOnly: true }), {
        openParent: async (paths, c) => {
          const { found, writable } = await findParent(c.child, paths);
          return NodeFile.open(found, { readOnly: !writable });
        },
      });
    let merged: VirtualDisk | undefined;
    try {
      const levels = dest === undefined ? 1 : chain.indexOf(dest);
      if (levels < 1) throw paramError(ctx, 'DestinationPath', `${dest} is not an ancestor of ${path} (its chain: ${chain.slice(1).join(' → ')})`);
      ctx.verbose(`merging ${chain.slice(0, levels).join(', ')} into ${chain[levels]}`);
      const t0 = Date.now();
      merged = isVhdx(leaf) ? await mergeVhdx(leaf, levels) : await mergeVhdChain(leaf as VhdDisk, levels);
      ctx.verbose(`merged in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      await leaf.close().catch(() => undefined);
      throw e;
    }
    await merged.close();
    const levels = dest === undefined ? 1 : chain.indexOf(dest);
    for (const f of chain.slice(0, levels)) await rm(f, { force: true });
    return args.PassThru ? describe(chain[levels]!) : undefined;
  },
});

// ---- Convert-VHD --------------------------------------------------------------------------

function progressReporter(ctx: CmdletContext, what: string): (done: number, total: number) => void {
  let next = 0;
  const t0 = Date.now();
  return (done, total) => {
    const pct = total === 0 ? 100 : Math.floor((done * 100) / total);
    if (pct < next) return;
    next = Math.floor(pct / 10) * 10 + 10;
    ctx.verbose(`${what}: ${pct}% (${Math.round(done / MiB)} of ${Math.round(total / MiB)} MB, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  };
}

export const convertVhd = defineCmdlet({
  name: 'Convert-VHD',
  synopsis: 'Copy a disk into a new file of another format or type: .vhdx, .vhd, or .img/.raw (raw images are a vmhost extension)',
  params: {
    Path: { type: 'string', mandatory: true, help: 'The source disk (a differencing disk is read through its chain)' },
    DestinationPath: { type: 'string', mandatory: true, help: 'The new file: .vhdx, .vhd, .img or .raw' },
    VHDType: { type: 'enum', values: ['Fixed', 'Dynamic'], help: 'Default: the source\'s type (Dynamic for a differencing disk or raw image)' },
    BlockSizeBytes: { type: 'size', help: 'Block size of the new file' },
    LogicalSectorSizeBytes: { type: 'int', values: [512, 4096], help: 'VHDX destination: 512 or 4096 (default: the source\'s); vmhost extension' },
    DeleteSource: { type: 'switch', help: 'Delete the source file after a successful conversion' },
  },
  positional: ['Path', 'DestinationPath'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const path = await existingFile(ctx, 'Path', args.Path);
    const format = formatFromName(ctx, 'DestinationPath', args.DestinationPath, true);
    const dest = await newFile(ctx, 'DestinationPath', args.DestinationPath);
    checkSectorSizes(ctx, format, args.LogicalSectorSizeBytes, undefined);
    checkBlockSize(ctx, format, args.BlockSizeBytes);
    const src = await openDiskFile(path, { readOnly: true });
    await withDisk(src, async () => {
      const type = args.VHDType ?? (src.type === 'Fixed' && src.format !== 'RAW' ? 'Fixed' : 'Dynamic');
      if (format !== 'RAW') checkVirtualSize(ctx, 'Path', src.virtualSize, format, args.LogicalSectorSizeBytes ?? 512);
      const lss = args.LogicalSectorSizeBytes;
      ctx.verbose(`converting ${path} (${src.format} ${src.type}, ${src.virtualSize} bytes) to ${dest} (${format} ${type})`);
      await creating(dest, (f) => convertDisk(src, f, {
        format, type, ...(args.BlockSizeBytes !== undefined ? { blockSize: args.BlockSizeBytes } : {}),
        ...(lss !== undefined ? { logicalSectorSize: lss as 512 | 4096 } : {}),
        onProgress: progressReporter(ctx, 'Convert-VHD'),
      }));
    });
    if (args.DeleteSource) await rm(path);
    return args.PassThru ? describe(dest) : undefined;
  },
});

// ---- Optimize-VHD -------------------------------------------------------------------------

/** Full mode: stored blocks that hold only zeros are trimmed first, so compaction can drop them. */
async function trimZeroBlocks(d: VhdxDisk): Promise<number> {
  const bs = d.blockSize;
  const buf = new Uint8Array(bs);
  let trimmed = 0;
  const own = await d.ownRanges();
  const blocks = new Set<number>();
  for (const r of own) if (!r.zero) for (let b = Math.floor(r.offset / bs); b * bs < r.offset + r.length; b++) blocks.add(b);
  for (const b of [...blocks].sort((x, y) => x - y)) {
    const len = Math.min(bs, d.virtualSize - b * bs);
    if (await d.blockReadsZero(b, buf)) {
      await d.trim(b * bs, len);
      trimmed++;
    }
  }
  return trimmed;
}

export const optimizeVhd = defineCmdlet({
  name: 'Optimize-VHD',
  synopsis: 'Compact a dynamic or differencing VHDX: move blocks into holes left by trims and shrink the file',
  params: {
    Path: { type: 'string', array: true, mandatory: true },
    Mode: { type: 'enum', values: ['Full', 'Quick', 'Retrim', 'Pretrimmed', 'Prezeroed'], help: 'Full also releases blocks that hold only zeros; the others compact trimmed space' },
  },
  positional: ['Path'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const out: VirtualHardDisk[] = [];
    for (const p of args.Path) {
      const path = await existingFile(ctx, 'Path', p);
      const d = await openDiskFile(path, { readOnly: false });
      await withDisk(d, async () => {
        if (!isVhdx(d)) throw paramError(ctx, 'Path', `Optimize-VHD compacts VHDX files; ${path} is ${d.format} (Convert-VHD to a new dynamic file reclaims its space)`, 'VHD_UNSUPPORTED');
        if (d.type === 'Fixed') throw paramError(ctx, 'Path', `${path} is a fixed disk; only dynamic and differencing disks can be compacted`, 'VHD_UNSUPPORTED');
        if (args.Mode === 'Full' || args.Mode === 'Prezeroed') ctx.verbose(`${path}: ${await trimZeroBlocks(d)} all-zero blocks released`);
        const r = await compactVhdx(d);
        ctx.verbose(`${path}: ${r.fileSizeBefore} → ${r.fileSizeAfter} bytes, ${r.blocksMoved} blocks moved`);
      });
      if (args.PassThru) out.push(await describe(path));
    }
    return args.PassThru ? out : undefined;
  },
});

// ---- Test-VHD -----------------------------------------------------------------------------

/** Every problem of a disk file and its whole parent chain, each prefixed with the file it is in. */
async function problemsOf(path: string): Promise<string[]> {
  const own = async (p: string): Promise<string[]> => {
    const f = await NodeFile.open(p, { readOnly: true });
    let format: FileFormat;
    try {
      format = await detectFormat(f, p);
    } catch (e) {
      await f.close();
      return [`${p}: ${e instanceof Error ? e.message : String(e)}`];
    }
    try {
      if (format === 'VHDX') return (await checkVhdx(f)).map((m) => `${p}: ${m}`);
      if (format === 'VHD') {
        return (await checkVhd(f)).filter((x) => x.severity === 'error').map((x) => `${p}: ${x.structure} at offset ${x.offset}: ${x.message}`);
      }
      return [];
    } finally {
      await f.close().catch(() => undefined);
    }
  };
  const problems = await own(path);
  if (problems.length > 0) return problems;
  let chain: VirtualDisk;
  try {
    chain = await openDiskFile(path, { readOnly: true });
  } catch (e) {
    return [`${path}: ${isVmhostError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`];
  }
  try {
    for (let p = parentOf(chain); p; p = parentOf(p)) {
      const name = fileOf(p);
      if (name) problems.push(...(await own(name)));
    }
  } finally {
    await chain.close().catch(() => undefined);
  }
  return problems;
}

export const testVhd = defineCmdlet({
  name: 'Test-VHD',
  synopsis: 'Check disk files and their parent chains: True when usable; otherwise prints each problem to stderr, False, exit code 1',
  params: { Path: { type: 'string', array: true, mandatory: true } },
  positional: ['Path'],
  async run(args, ctx) {
    localOnly(ctx);
    const out: boolean[] = [];
    for (const p of args.Path) {
      const path = await existingFile(ctx, 'Path', p);
      const problems = await problemsOf(path);
      for (const m of problems) ctx.stderr.write(`Test-VHD: ${m.replace(/\s*\r?\n\s*/g, ' ')}\n`);
      if (problems.length > 0) ctx.setExitCode(1);
      out.push(problems.length === 0);
    }
    return args.Path.length === 1 ? out[0] : out;
  },
});

// ---- Set-VHD ------------------------------------------------------------------------------

async function openVhdxAlone(ctx: CmdletContext, path: string): Promise<VhdxDisk> {
  const d = await openAlone(path, false);
  if (!isVhdx(d)) {
    await d.close();
    throw paramError(ctx, 'Path', `${path} is a ${d.format} file; this works on VHDX files only`, 'VHD_UNSUPPORTED');
  }
  return d;
}

/** Set-VHD -ParentPath on a differencing VHD: the parent must be the VHD it was made from (unique id, time stamp). */
async function reparentVhd(ctx: CmdletContext, path: string, parentArg: string, ignoreIdMismatch: boolean): Promise<void> {
  const parentPath = await realpath(await existingFile(ctx, 'ParentPath', parentArg));
  const d = await openVhd(await NodeFile.open(path), { withoutParent: true });
  await withDisk(d, async () => {
    if (d.type !== 'Differencing') throw paramError(ctx, 'Path', `${path} is not a differencing disk; it has no parent`);
    const parent = await openDiskFile(parentPath, { readOnly: true }).catch((e: unknown) => {
      throw paramError(ctx, 'ParentPath', `cannot open ${parentPath}: ${e instanceof Error ? e.message : String(e)}`, isVmhostError(e) ? e.code : 'VHD_INVALID_ARGUMENT');
    });
    await withDisk(parent, async () => {
      if (!(parent instanceof VhdDisk)) throw paramError(ctx, 'ParentPath', `the parent of a VHD must be a VHD file; ${parentPath} is ${parent.format}`);
      const h = d.header!;
      const same = Buffer.from(parent.uniqueId).equals(Buffer.from(h.parentUniqueId)) && parent.timeStamp === h.parentTimeStamp;
      if (!same && !ignoreIdMismatch) {
        throw paramError(ctx, 'ParentPath', `${parentPath} is not the parent ${path} was made from (unique id or time stamp differ); -IgnoreIdMismatch links it anyway`, 'VHD_PARENT_MISMATCH');
      }
      await setVhdParent(d, {
        path: parentPath, relativePath: relativeLocator(path, parentPath),
        ...(same ? {} : { relink: { uniqueId: parent.uniqueId, timeStamp: parent.timeStamp } }),
      });
    });
  });
}

export const setVhd = defineCmdlet({
  name: 'Set-VHD',
  synopsis: 'Re-point a differencing disk to its (moved) parent; VHDX also: set the physical sector size, give the disk a new identifier',
  params: {
    Path: { type: 'string', mandatory: true },
    ParentPath: { type: 'string', sets: ['Parent'], mandatory: ['Parent'], help: 'Where the parent is now' },
    IgnoreIdMismatch: { type: 'switch', sets: ['Parent'], help: 'Link to a parent even though it is not (or no longer) the one the disk was made from' },
    PhysicalSectorSizeBytes: { type: 'int', values: [512, 4096], sets: ['Sector'], mandatory: ['Sector'] },
    ResetDiskIdentifier: { type: 'switch', sets: ['Identifier'], mandatory: ['Identifier'], help: 'A new random disk identifier (page 83)' },
    Force: { type: 'switch', help: 'Accepted for Hyper-V compatibility (nothing prompts)' },
  },
  positional: ['Path'],
  view: vhdView,
  async run(args, ctx) {
    localOnly(ctx);
    const path = await realpath(await existingFile(ctx, 'Path', args.Path));
    if (ctx.parameterSet === 'Parent') {
      const probe = await openAlone(path, true);
      const isVhd = probe instanceof VhdDisk;
      await probe.close();
      if (isVhd) {
        await reparentVhd(ctx, path, args.ParentPath!, args.IgnoreIdMismatch);
        return args.PassThru ? describe(path) : undefined;
      }
    }
    const d = await openVhdxAlone(ctx, path);
    await withDisk(d, async () => {
      if (ctx.parameterSet === 'Sector') {
        if (args.PhysicalSectorSizeBytes! < d.logicalSectorSize) {
          throw paramError(ctx, 'PhysicalSectorSizeBytes', `cannot be smaller than the logical sector size (${d.logicalSectorSize})`);
        }
        await setVhdxParams(d, { physicalSectorSize: args.PhysicalSectorSizeBytes as 512 | 4096 });
      } else if (ctx.parameterSet === 'Identifier') {
        await setVhdxParams(d, { diskId: 'new' });
      } else {
        if (d.type !== 'Differencing') throw paramError(ctx, 'Path', `${path} is not a differencing disk; it has no parent`);
        const parentPath = await realpath(await existingFile(ctx, 'ParentPath', args.ParentPath!));
        const parent = await openDiskFile(parentPath, { readOnly: true }).catch((e: unknown) => {
          throw paramError(ctx, 'ParentPath', `cannot open ${parentPath}: ${e instanceof Error ? e.message : String(e)}`, isVmhostError(e) ? e.code : 'VHD_INVALID_ARGUMENT');
        });
        await withDisk(parent, async () => {
          if (!isVhdx(parent)) throw paramError(ctx, 'ParentPath', `the parent of a VHDX must be a VHDX file; ${parentPath} is ${parent.format}`);
          if (parent.logicalSectorSize !== d.logicalSectorSize) throw paramError(ctx, 'ParentPath', `logical sector sizes differ (${parent.logicalSectorSize} vs ${d.logicalSectorSize})`);
          const loc = d.params.parentLocator!.entries;
          const want = [loc.get('parent_linkage'), loc.get('parent_linkage2')].filter((x): x is string => !!x).map((g) => g.replace(/[{}]/g, '').toLowerCase());
          const matches = want.includes(parent.dataWriteGuid.toLowerCase());
          if (!matches && !args.IgnoreIdMismatch) {
            throw paramError(ctx, 'ParentPath', `${parentPath} is not the parent ${path} was made from (DataWriteGuid ${parent.dataWriteGuid} ≠ parent_linkage ${want[0] ?? '?'}); -IgnoreIdMismatch links it anyway`, 'VHDX_PARENT_MISMATCH');
          }
          await setVhdxParams(d, {
            parent: { relativePath: relativeLocator(path, parentPath), absoluteWin32Path: parentPath, ...(matches ? {} : { parentLinkage: parent.dataWriteGuid }) },
          });
        });
      }
    });
    return args.PassThru ? describe(path) : undefined;
  },
});

// ---- user metadata (vmhost extensions) ----------------------------------------------------

function decodeValue(data: Uint8Array): { Value: string | null; Base64: string } {
  let value: string | null;
  try {
    value = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    value = null;
  }
  return { Value: value, Base64: Buffer.from(data).toString('base64') };
}

export const getVhdMetadata = defineCmdlet({
  name: 'Get-VHDMetadata',
  synopsis: 'List a VHDX file\'s user metadata items (vmhost extension; Hyper-V has no cmdlet for them)',
  params: { Path: { type: 'string', mandatory: true }, Id: { type: 'guid', help: 'Only this item' } },
  positional: ['Path', 'Id'],
  view: { columns: ['Id', 'Length', 'Value'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    localOnly(ctx);
    const path = await existingFile(ctx, 'Path', args.Path);
    const d = await openAlone(path, true);
    return withDisk(d, async () => {
      if (!isVhdx(d)) throw paramError(ctx, 'Path', `${path} is a ${d.format} file; only VHDX files hold user metadata`, 'VHD_UNSUPPORTED');
      if (args.Id !== undefined) {
        const data = getUserMetadata(d, args.Id);
        if (!data) throw paramError(ctx, 'Id', `${path} has no user metadata item ${args.Id}`, 'VHD_METADATA_NOT_FOUND');
        return { Id: args.Id, Length: data.length, ...decodeValue(data) };
      }
      return listUserMetadata(d).map((i) => ({ Id: i.guid, Length: i.data.length, ...decodeValue(i.data), IsVirtualDisk: i.isVirtualDisk, IsRequired: i.isRequired }));
    });
  },
});

export const setVhdMetadata = defineCmdlet({
  name: 'Set-VHDMetadata',
  synopsis: 'Set (UTF-8 text) or remove a user metadata item of a VHDX file (vmhost extension; Hyper-V has no cmdlet for them)',
  params: {
    Path: { type: 'string', mandatory: true },
    Id: { type: 'guid', mandatory: true, help: 'The item\'s GUID' },
    Value: { type: 'string', sets: ['Set'], mandatory: ['Set'], help: 'Text stored as UTF-8 (up to 1MB)' },
    Remove: { type: 'switch', sets: ['Remove'], mandatory: ['Remove'] },
  },
  positional: ['Path', 'Id', 'Value'],
  async run(args, ctx) {
    localOnly(ctx);
    const path = await existingFile(ctx, 'Path', args.Path);
    const d = await openAlone(path, false);
    await withDisk(d, async () => {
      if (!isVhdx(d)) throw paramError(ctx, 'Path', `${path} is a ${d.format} file; only VHDX files hold user metadata`, 'VHD_UNSUPPORTED');
      if (args.Remove) {
        if (!getUserMetadata(d, args.Id)) throw paramError(ctx, 'Id', `${path} has no user metadata item ${args.Id}`, 'VHD_METADATA_NOT_FOUND');
        await setUserMetadata(d, args.Id, undefined);
      } else {
        const data = new TextEncoder().encode(args.Value!);
        if (data.length > MiB) throw paramError(ctx, 'Value', `${data.length} bytes is more than the 1MB an item may hold`);
        await setUserMetadata(d, args.Id, data);
      }
    });
    return args.PassThru ? { Id: args.Id, Removed: args.Remove } : undefined;
  },
});
