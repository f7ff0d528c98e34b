// The folder Export-VM writes and Import-VM reads, laid out as Hyper-V lays out an export:
//   <Path>/<VMName>/Virtual Machines/<VMId>.json    the VM's config (vm-config.ts, versioned), paths relative to <Path>/<VMName>
//   <Path>/<VMName>/Virtual Machines/<VMId>/         its firmware variables and saved state, named as in the VM folder
//   <Path>/<VMName>/Virtual Hard Disks/              every disk file, checkpoint .avhdx files included, parents re-pointed
//   <Path>/<VMName>/Snapshots/                       checkpoint records (<id>.json, configs relative too) and memory (<id>.state)
// Paths inside an export are relative to its root and use '/', so the folder can be moved or
// copied to another host as a whole; ISOs, floppies and kernels stay absolute (not exported, as in Hyper-V).
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmPaths } from './vm-paths.ts';

export const VM_FOLDER = 'Virtual Machines';
export const VHD_FOLDER = 'Virtual Hard Disks';
export const SNAPSHOT_FOLDER = 'Snapshots';
/** In `stateDir` of a generation 2 export: which firmware variable files it carries (none yet for a VM never started), so a lost one shows. */
export const FIRMWARE_MANIFEST = 'firmware-vars.json';

export interface ExportLayout {
  root: string;
  config: string;
  /** Firmware variables and saved state, under the names they have in a VM folder. */
  stateDir: string;
  vhdDir: string;
  snapshotDir: string;
}

export function exportLayout(root: string, vmId: string): ExportLayout {
  return {
    root, config: join(root, VM_FOLDER, `${vmId}.json`), stateDir: join(root, VM_FOLDER, vmId),
    vhdDir: join(root, VHD_FOLDER), snapshotDir: join(root, SNAPSHOT_FOLDER),
  };
}

/** The layout of the export whose config is `configPath` (`<root>/Virtual Machines/<id>.json`, as Import-VM -Path names it). */
export function layoutOfConfig(configPath: string): ExportLayout {
  const abs = resolve(configPath);
  if (basename(dirname(abs)) !== VM_FOLDER || extname(abs) !== '.json') {
    throw new VmhostError('INVALID_ARGUMENT', `Path: ${configPath} is not an exported VM's config (<folder>/${VM_FOLDER}/<VMId>.json)`, { param: 'Path', path: configPath });
  }
  return exportLayout(dirname(dirname(abs)), basename(abs, '.json'));
}

/** The files of a VM folder that travel with an export (beside the config, same names). */
export function stateFiles(p: VmPaths): string[] {
  return [p.firmwareVars, p.firmwareVarsSecure, p.savedState, `${p.savedState}.json`].map((f) => basename(f));
}

/** `abs` as written inside an export rooted at `root` (it must be inside it). */
export function toExportPath(root: string, abs: string): string {
  const rel = relative(root, abs);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new VmhostError('INTERNAL', `${abs} is outside the export ${root}`, { path: abs });
  return rel.split(sep).join('/');
}

/** A path read from an export: relative ones are inside `root`; a relative path that climbs out is refused. */
export function fromExportPath(root: string, p: string): string {
  if (isAbsolute(p)) return p;
  const abs = resolve(root, p);
  if (relative(root, abs).startsWith('..')) throw new VmhostError('INVALID_ARGUMENT', `${p} leads outside the export folder ${root}`, { path: p });
  return abs;
}

/** A config with every hard drive path mapped (export: to relative; import: to where the files are). */
export function mapDrivePaths(c: VmConfig, map: (path: string) => string): VmConfig {
  return { ...c, hardDrives: c.hardDrives.map((d) => ({ ...d, path: map(d.path) })) };
}
