// Export-VM and Export-VMSnapshot: a VM's config, disks, checkpoints, firmware variables and
// saved state copied into the folder layout of export-layout.ts. Disk files are copied as
// files (storage/file-copy.ts: holes stay holes), every chain whole (a base image shared by
// several VMs is copied too), and each copied differencing disk is re-pointed at its parent's
// copy (Set-VHD -ParentPath, the ids match: they are copies). A running VM's leaves cannot be
// copied as files (the block server holds them); `live` copies them at one point in time. The
// config is written last: a folder without it is not an export, and a failed export is removed.
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { chainFiles, copyDiskFile, openDiskFile, setDiskParent } from '../storage/index.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { exportLayout, mapDrivePaths, toExportPath, type ExportLayout } from './export-layout.ts';
import type { JobHandle } from './jobs.ts';
import type { CheckpointRecord } from './vm-checkpoints.ts';
import type { VmConfig } from './vm-config.ts';

/** What goes into an export, with the absolute paths it has on this host. */
export interface ExportSource {
  config: VmConfig;
  checkpoints: readonly { record: CheckpointRecord; memory: string | null }[];
  /** Files for `Virtual Machines/<id>/`: copied from `from`, or written from `text`. */
  state: readonly { name: string; from?: string; text?: string }[];
  /**
   * A running VM: its leaf files are copied by the caller at one moment (`copyLeaves`, given
   * where each chain file's copy is), after the file copies of everything below them; `leaves`
   * are those files, absolute.
   */
  live?: { leaves: ReadonlySet<string>; copyLeaves(target: (file: string) => string, h: JobHandle): Promise<void> };
}

/** Every file of the chain under `path`, leaf first (opened read-only: a broken chain fails here, naming the file). */
export async function chainOf(path: string): Promise<string[]> {
  const d = await openDiskFile(path, { readOnly: true });
  try {
    return chainFiles(d);
  } finally {
    await d.close();
  }
}

/** Unique file names for the copies in `Virtual Hard Disks/` (two disks of one name from different folders get -2, -3, …). */
export function copyNames(files: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const f of files) {
    const ext = extname(f);
    let name = basename(f);
    for (let i = 2; used.has(name.toLowerCase()); i++) name = `${basename(f, ext)}-${i}${ext}`;
    used.add(name.toLowerCase());
    out.set(f, name);
  }
  return out;
}

/**
 * Write the export of `src` under `<path>/<VM name>`. `chains` gives each disk file's chain
 * (leaf first); the caller passes the served chains of a running VM, chainOf otherwise.
 */
export async function writeExport(path: string, src: ExportSource, chains: (file: string) => Promise<string[]>, h: JobHandle): Promise<ExportLayout> {
  const layout = exportLayout(join(path, src.config.name), src.config.id);
  if (await stat(layout.root).then(() => true, () => false)) {
    throw new VmhostError('ALREADY_EXISTS', `Path: ${layout.root} exists already: export to an empty place (Export-VM never overwrites)`, { param: 'Path', path: layout.root });
  }
  const drives = [src.config, ...src.checkpoints.map((c) => c.record.config)].flatMap((c) => c.hardDrives.map((d) => d.path));
  const parent = new Map<string, string>();
  const files: string[] = [];
  for (const leaf of new Set(drives)) {
    const chain = await chains(leaf);
    chain.forEach((f, i) => { if (i + 1 < chain.length) parent.set(f, chain[i + 1]!); });
    // Parents first, so the copies below can be re-pointed as they come.
    for (const f of chain.reverse()) if (!files.includes(f)) files.push(f);
  }
  const names = copyNames(files);
  const target = (f: string) => join(layout.vhdDir, names.get(f)!);
  await mkdir(layout.vhdDir, { recursive: true });
  await mkdir(layout.snapshotDir, { recursive: true });
  await mkdir(layout.stateDir, { recursive: true });
  try {
    const asFiles = files.filter((f) => !src.live?.leaves.has(f));
    for (const [i, f] of asFiles.entries()) {
      h.progress(5 + (i / files.length) * 80, `Copying ${basename(f)}`);
      await copyDiskFile(f, target(f));
    }
    if (src.live) {
      h.progress(5 + (asFiles.length / files.length) * 80, 'Copying the running VM\'s disks at one point in time');
      await src.live.copyLeaves(target, h);
    }
    h.progress(86, 'Re-pointing differencing disks at their copied parents');
    for (const f of asFiles) {
      const p = parent.get(f);
      if (p !== undefined) await setDiskParent(target(f), target(p), false);
    }
    const rel = (c: VmConfig): VmConfig => ({ ...mapDrivePaths(c, (p) => toExportPath(layout.root, target(p))), snapshotFileLocation: toExportPath(layout.root, layout.snapshotDir) });
    for (const c of src.checkpoints) {
      if (c.memory !== null) await copyFile(c.memory, join(layout.snapshotDir, c.record.memory!));
      await writeFileAtomic(join(layout.snapshotDir, `${c.record.id}.json`), JSON.stringify({ ...c.record, config: rel(c.record.config) }, null, 2) + '\n');
    }
    h.progress(95, 'Copying firmware variables and saved state');
    for (const s of src.state) {
      if (s.from !== undefined) await copyFile(s.from, join(layout.stateDir, s.name));
      else await writeFileAtomic(join(layout.stateDir, s.name), s.text ?? '');
    }
    await writeFileAtomic(layout.config, JSON.stringify(rel(src.config), null, 2) + '\n');
  } catch (e) {
    await rm(layout.root, { recursive: true, force: true });
    throw e;
  }
  return layout;
}
