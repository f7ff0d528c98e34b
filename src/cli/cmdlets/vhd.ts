// The virtual disk file cmdlets (Hyper-V 1.4): New-VHD, Get-VHD, Resize-VHD, Merge-VHD,
// Convert-VHD, Optimize-VHD, Test-VHD, Set-VHD, and vmhost's Get-/Set-VHDMetadata. Like
// Hyper-V's, they work on files of this host, through storage/'s disk facade: every file is
// locked there before it is read or written, so a file a running VM holds is refused
// (VHD_IN_USE, "in use by VM 'x'", exit 4) and stays byte-identical. The daemon that holds a
// file answers for it instead: Resize-VHD online, Get-VHD/Test-VHD from its live state.
// Here: argument checks (one-line errors naming the parameter), the new file's format from
// its extension (.vhdx, .vhd; .img/.raw for Convert-VHD), Write-Progress for Convert- and Optimize-VHD.
import { access, realpath, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, extname, resolve } from 'node:path';
import { VmhostError, isVmhostError, type ErrorCode } from '../../common/index.ts';
import {
  MAX_VHDX_SIZE, VHD_PROPERTIES, convertDiskFile, describeDiskFile, mergeDiskFile, optimizeDiskFile,
  readDiskMetadata, resetDiskIdentifier, resizeDiskFile, runVolumeOpLocally, setDiskParent, setDiskSectorSize, testDiskFile, writeDiskMetadata,
  type VirtualHardDisk, type VolumeOp, type WorkProgress,
} from '../../storage/index.ts';
import { findVolumeMarker } from '../../cluster/csv-marker.ts';
import { defineCmdlet, type CmdletContext } from '../cmdlet.ts';
import { describeHeld, nameHolder, resizeOnline, testHeld } from './attached-disk.ts';
import { clientFor } from './vm-select.ts';

const MiB = 1024 * 1024;
const MAX_VHD_SIZE = 2040 * 1024 * MiB;
type FileFormat = 'VHDX' | 'VHD' | 'RAW';

// ---- errors -------------------------------------------------------------------------------

function paramError(ctx: CmdletContext, param: string, why: string, code: ErrorCode = 'VHD_INVALID_ARGUMENT'): VmhostError {
  return new VmhostError(code, `${ctx.cmdlet}: parameter -${param}: ${why}`, { op: ctx.cmdlet, parameter: param });
}

/** Runs a storage facade call: its argument errors name our parameter, a lock refusal names the holder. */
async function facade<T>(ctx: CmdletContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isVmhostError(e) && typeof e.context['parameter'] === 'string' && e.code !== 'VHD_IN_USE') throw paramError(ctx, e.context['parameter'], e.message, e.code);
    throw await nameHolder(ctx, e);
  }
}

function localOnly(ctx: CmdletContext): void {
  const remote = ctx.computerName.filter((n) => !['localhost', '.', '127.0.0.1', hostname()].includes(n.toLowerCase()));
  if (remote.length > 0) throw paramError(ctx, 'ComputerName', `the VHD cmdlets work on files of this host only (got ${remote.join(', ')})`);
}

// ---- paths and formats --------------------------------------------------------------------

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
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
  const st = await stat(abs).catch(() => { throw paramError(ctx, param, `file not found: ${abs}`, 'VHD_FILE_NOT_FOUND'); });
  if (!st.isFile()) throw paramError(ctx, param, `not a file: ${abs}`);
  return abs;
}

async function newFile(ctx: CmdletContext, param: string, path: string): Promise<string> {
  const abs = resolve(path);
  if (await exists(abs)) throw paramError(ctx, param, `the file already exists: ${abs}`, 'VHD_FILE_EXISTS');
  if (!(await exists(dirname(abs)))) throw paramError(ctx, param, `the folder does not exist: ${dirname(abs)}`, 'VHD_FILE_NOT_FOUND');
  return abs;
}

function checkVirtualSize(ctx: CmdletContext, param: string, size: number, format: 'VHDX' | 'VHD', lss: number): void {
  if (format === 'VHDX' && size > MAX_VHDX_SIZE) {
    throw paramError(ctx, param, `${size} bytes exceeds the VHDX maximum of 64 TB (${MAX_VHDX_SIZE} bytes)`, 'VHDX_TOO_LARGE');
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

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };

/**
 * Runs `fn` with a Write-Progress display for `activity`, cleared however it ends: the engine's
 * (done, total) as percent, and as the amount when the work is counted in bytes.
 */
async function withProgress<T>(ctx: CmdletContext, activity: string, unit: 'bytes' | 'percent', fn: (report: WorkProgress) => Promise<T>): Promise<T> {
  const p = ctx.progress(activity);
  try {
    return await fn((done, total) => p.update(total === 0 ? 100 : (done * 100) / total, unit === 'bytes' ? `${Math.round(done / MiB)} of ${Math.round(total / MiB)} MB` : ''));
  } finally {
    p.done();
  }
}

// ---- Get-VHD ------------------------------------------------------------------------------

/** Get-VHD's object: from the daemon when it holds the file (live, Attached True), else from the file. */
async function describe(ctx: CmdletContext, path: string): Promise<VirtualHardDisk> {
  return (await describeHeld(ctx, path)) ?? facade(ctx, () => describeDiskFile(path));
}

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
    for (const p of args.Path) out.push(await describe(ctx, await existingFile(ctx, 'Path', p)));
    return args.Path.length === 1 ? out[0] : out;
  },
});

// ---- New-VHD ------------------------------------------------------------------------------

/**
 * A metadata operation on a file of a Cluster Shared Volume is performed by the volume's
 * coordinator: the daemon this CLI reaches sends it there. Elsewhere `here` runs it.
 */
async function viaVolume(ctx: CmdletContext, op: VolumeOp, here: () => Promise<void> = () => runVolumeOpLocally(op)): Promise<void> {
  if (await findVolumeMarker(op.Path)) await clientFor(ctx).call('POST', '/cluster/shared-volumes/operations', op);
  else await facade(ctx, here);
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
    const lss = args.LogicalSectorSizeBytes as 512 | 4096 | undefined, pss = args.PhysicalSectorSizeBytes as 512 | 4096 | undefined;
    checkSectorSizes(ctx, format, lss, pss);
    checkBlockSize(ctx, format, args.BlockSizeBytes);
    if (ctx.parameterSet === 'Differencing') {
      // The parent must be a disk of the same format whose chain opens.
      const parentPath = await realpath(await existingFile(ctx, 'ParentPath', args.ParentPath!));
      await viaVolume(ctx, {
        Op: 'createDifferencing', Path: path, ParentPath: parentPath,
        Spec: { format, ...opt('size', args.SizeBytes), ...opt('blockSize', args.BlockSizeBytes), ...opt('logicalSectorSize', lss), ...opt('physicalSectorSize', pss) },
      });
    } else {
      checkVirtualSize(ctx, 'SizeBytes', args.SizeBytes!, format, lss ?? 512);
      await viaVolume(ctx, {
        Op: 'create', Path: path,
        Spec: {
          format, type: ctx.parameterSet === 'Fixed' ? 'Fixed' : 'Dynamic', size: args.SizeBytes!,
          ...opt('blockSize', args.BlockSizeBytes), ...opt('logicalSectorSize', lss), ...opt('physicalSectorSize', pss),
        },
      });
    }
    return describe(ctx, path);
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
    const size = args.SizeBytes;
    if (size === undefined || !(await resizeOnline(ctx, path, size))) {
      const check = (format: string, lss: number) => { if (size !== undefined) checkVirtualSize(ctx, 'SizeBytes', size, format === 'VHD' ? 'VHD' : 'VHDX', lss); };
      // On a volume the file is checked here, read-only, before the coordinator resizes it.
      if (size !== undefined && await findVolumeMarker(path)) { const d = await describe(ctx, path); check(d.VhdFormat, d.LogicalSectorSize); }
      await viaVolume(ctx, { Op: 'resize', Path: path, SizeBytes: size ?? 'minimum' }, () => resizeDiskFile(path, size === undefined ? { size: 'minimum' } : {
        size, check: (d) => check(d.format, d.logicalSectorSize),
      }, (m) => ctx.verbose(m)));
    }
    return args.PassThru ? describe(ctx, path) : undefined;
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
    const into = await withProgress(ctx, `Merge-VHD '${basename(path)}'`, 'bytes', (onProgress) => facade(ctx, () => mergeDiskFile(path, dest, (m) => ctx.verbose(m), { onProgress })));
    return args.PassThru ? describe(ctx, into) : undefined;
  },
});

// ---- Convert-VHD --------------------------------------------------------------------------

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
    const lss = args.LogicalSectorSizeBytes as 512 | 4096 | undefined;
    checkSectorSizes(ctx, format, lss, undefined);
    checkBlockSize(ctx, format, args.BlockSizeBytes);
    await withProgress(ctx, `Convert-VHD '${basename(path)}'`, 'bytes', (report) => facade(ctx, () => convertDiskFile(path, dest, {
      format, ...opt('type', args.VHDType), ...opt('blockSize', args.BlockSizeBytes), ...opt('logicalSectorSize', lss),
      onProgress: report,
      check: (src) => {
        if (format !== 'RAW') checkVirtualSize(ctx, 'Path', src.virtualSize, format, lss ?? 512);
        ctx.verbose(`converting ${path} (${src.format} ${src.type}, ${src.virtualSize} bytes) to ${dest} (${format})`);
      },
    })));
    if (args.DeleteSource) await rm(path);
    return args.PassThru ? describe(ctx, dest) : undefined;
  },
});

// ---- Optimize-VHD -------------------------------------------------------------------------

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
      await withProgress(ctx, `Optimize-VHD '${basename(path)}'`, 'percent', (report) => facade(ctx, () => optimizeDiskFile(path, args.Mode === 'Full' || args.Mode === 'Prezeroed', (m) => ctx.verbose(m), report)));
      if (args.PassThru) out.push(await describe(ctx, path));
    }
    return args.PassThru ? out : undefined;
  },
});

// ---- Test-VHD -----------------------------------------------------------------------------

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
      const problems = (await testHeld(ctx, path)) ?? (await testDiskFile(path));
      for (const m of problems) ctx.stderr.write(`Test-VHD: ${m.replace(/\s*\r?\n\s*/g, ' ')}\n`);
      if (problems.length > 0) ctx.setExitCode(1);
      out.push(problems.length === 0);
    }
    return args.Path.length === 1 ? out[0] : out;
  },
});

// ---- Set-VHD ------------------------------------------------------------------------------

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
    if (ctx.parameterSet === 'Sector') await facade(ctx, () => setDiskSectorSize(path, args.PhysicalSectorSizeBytes as 512 | 4096));
    else if (ctx.parameterSet === 'Identifier') await facade(ctx, () => resetDiskIdentifier(path));
    else {
      const parentPath = await realpath(await existingFile(ctx, 'ParentPath', args.ParentPath!));
      await facade(ctx, () => setDiskParent(path, parentPath, args.IgnoreIdMismatch));
    }
    return args.PassThru ? describe(ctx, path) : undefined;
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
    const items = await facade(ctx, () => readDiskMetadata(path, args.Id));
    const shown = items.map(({ data, ...i }) => ({ Id: i.Id, Length: data.length, ...decodeValue(data), ...opt('IsVirtualDisk', i.IsVirtualDisk), ...opt('IsRequired', i.IsRequired) }));
    return args.Id !== undefined ? shown[0] : shown;
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
    await facade(ctx, () => writeDiskMetadata(path, args.Id, args.Remove ? undefined : new TextEncoder().encode(args.Value!)));
    return args.PassThru ? { Id: args.Id, Removed: args.Remove } : undefined;
  },
});
