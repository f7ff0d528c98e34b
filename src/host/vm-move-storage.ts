// Move-VMStorage: a VM's disk files (whole chains, the checkpoints' .avhdx files included) and
// its checkpoint records move to other folders, while it runs or not. Frozen files (parents,
// and every file of an Off or Saved VM) are copied as files (storage/file-copy.ts) and
// re-pointed at their parents' copies; a running VM's leaves are mirrored by the block server
// (storage/mirror.ts: the guest keeps reading and writing, then its export goes on with the
// copy), one drive at a time, each drive's new file recorded in vm.json by the mirror's commit
// (the export paused). Checkpoint records are written into their new folder before any
// commit; the last commit switches snapshotFileLocation with the last drive. Old files are
// deleted only once vm.json names the new ones.
//
// A journal (move-storage.json in the VM's folder) lists every file copied and the drives. On
// a failure, and at the daemon's start after a crash, one rule cleans up: what vm.json and the
// checkpoint records reach (following the journal's chains) stays, every other file the move
// made or moved away from goes. So before a drive's commit its source is authoritative and
// the partial copies go; after the last commit the move completes (records re-pointed, old
// files deleted). A failure after some drives switched leaves those at the destination and
// the rest at the source, each chain whole.
//
// Stop-Job cancels a move the same way (the job's signal): a copy stops at its next chunk, a
// running mirror is cancelled (storage/mirror.ts: the export goes on serving the source), and
// the rule above removes what was copied; the VM runs on with the files it had. A cancel after
// the last drive's commit comes too late and the move completes.
import { mkdir, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { chainFiles, copyDiskFile, createMirrorFile, setDiskParent } from '../storage/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import type { EventLevel } from './events.ts';
import { invalid } from './invalid-argument.ts';
import type { JobHandle } from './jobs.ts';
import type { VmCheckpoints } from './vm-checkpoints.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';
import { chainOf } from './vm-export.ts';
import { VmStorage } from './vm-storage.ts';

/** Move-VMStorage's parameters (Hyper-V's names). */
export interface MoveStorageParams {
  DestinationStoragePath?: string;
  VirtualMachinePath?: string;
  SnapshotFilePath?: string;
  Vhds?: Array<{ SourceFilePath: string; DestinationFilePath: string }>;
}

export interface MoveStorageHost {
  readonly storage: VmStorage;
  readonly checkpoints: VmCheckpoints;
  persistNext(e: VmEntry, next: VmConfig): Promise<void>;
  event(level: EventLevel, code: string, message: string, e: VmEntry): void;
}

/** One disk file moved: `parent` is its parent's source path (null for a base disk). */
interface MovedFile { from: string; to: string; parent: string | null }

interface Journal {
  phase: 'copying' | 'committed';
  /** Parents before children. */
  files: MovedFile[];
  /** Drives whose file moves; a drive is switched once vm.json names `to`. */
  drives: Array<{ id: string; from: string; to: string }>;
  /** The checkpoint folder's move: `written` are the new folder's files, `old` the old one's. */
  snapshots: { from: string; to: string; written: string[]; old: string[] } | null;
}

const JOURNAL = 'move-storage.json';
const journalPath = (e: VmEntry) => join(e.paths.dir, JOURNAL);

/** The file's place after the move (itself when it stays). */
function mapper(j: Journal): (path: string) => string {
  const to = new Map(j.files.map((f) => [f.from, f.to]));
  return (p) => to.get(p) ?? p;
}

/** Where a destination parameter points: absolute, or refused naming the parameter. */
function absolute(param: string, path: string, vm: string): string {
  if (!isAbsolute(path)) throw invalid(param, `must be an absolute path, not '${path}'`, vm);
  return resolve(path);
}

/** Check the request against the VM's files and the destination; the journal it will run. */
async function plan(e: VmEntry, p: MoveStorageParams, host: MoveStorageHost): Promise<Journal> {
  const vm = e.config.name;
  if (p.VirtualMachinePath !== undefined) {
    throw new VmhostError('MOVE_STORAGE_UNSUPPORTED', `VirtualMachinePath: a VM's configuration stays in the host's data folder (${e.paths.dir}); move its disks and checkpoints with -DestinationStoragePath, -Vhds or -SnapshotFilePath`, { vm, param: 'VirtualMachinePath' });
  }
  if (p.DestinationStoragePath === undefined && p.Vhds === undefined && p.SnapshotFilePath === undefined) {
    throw invalid('DestinationStoragePath', 'give -DestinationStoragePath, -Vhds or -SnapshotFilePath', vm);
  }
  const dest = p.DestinationStoragePath === undefined ? undefined : absolute('DestinationStoragePath', p.DestinationStoragePath, vm);
  if (host.checkpoints.pendingRemovals(e).length > 0) {
    throw new VmhostError('INVALID_STATE', `VM '${vm}' is busy: a checkpoint merge is running (Remove-VMSnapshot); move its storage when it ends`, { vm });
  }

  // Every disk file of the VM, parents first: the drives' chains and the checkpoints'.
  const records = host.checkpoints.all(e);
  const leaves = new Set([...e.config.hardDrives.map((d) => d.path), ...records.flatMap((r) => r.config.hardDrives.map((d) => d.path))]);
  const parent = new Map<string, string | null>();
  const files: string[] = [];
  for (const leaf of leaves) {
    const d = e.config.hardDrives.find((x) => x.path === leaf);
    const served = d && host.storage.server.get(VmStorage.exportName(d));
    const chain = served ? chainFiles(served.disk) : await chainOf(leaf);
    chain.forEach((f, i) => parent.set(f, chain[i + 1] ?? null));
    for (const f of [...chain].reverse()) if (!files.includes(f)) files.push(f);
  }

  const explicit = new Map<string, string>();
  for (const v of p.Vhds ?? []) {
    const from = absolute('Vhds.SourceFilePath', v.SourceFilePath, vm);
    if (!files.includes(from)) throw invalid('Vhds', `${from} is not a disk file of VM '${vm}' (its files: ${files.join(', ')})`, vm);
    explicit.set(from, absolute('Vhds.DestinationFilePath', v.DestinationFilePath, vm));
  }
  const moved: MovedFile[] = [];
  const dests = new Set<string>();
  for (const f of files) {
    const to = explicit.get(f) ?? (dest === undefined ? f : join(dest, basename(f)));
    const q = parent.get(f) ?? null;
    if (to === f) {
      if (q !== null && moved.some((m) => m.from === q)) throw invalid('Vhds', `${f} must move with its parent ${q} (a differencing disk follows its parent)`, vm);
      continue;
    }
    if (dests.has(to)) throw invalid('DestinationStoragePath', `two of the VM's disk files would both become ${to}: name their destinations with -Vhds`, vm);
    dests.add(to);
    if (await stat(to).then(() => true, () => false)) throw new VmhostError('ALREADY_EXISTS', `${to} already exists: Move-VMStorage never overwrites a file`, { vm, path: to });
    const holder = host.storage.holderOf(f);
    if (holder && !e.config.hardDrives.some((d) => VmStorage.exportName(d) === holder.served.exportName)) {
      throw new VmhostError('INVALID_STATE', `${f} is in use by ${holder.served.exportName} (another VM or a mount): it cannot move with VM '${vm}'`, { vm, path: f });
    }
    moved.push({ from: f, to, parent: q });
  }

  const snapTo = p.SnapshotFilePath !== undefined ? absolute('SnapshotFilePath', p.SnapshotFilePath, vm) : dest === undefined ? undefined : join(dest, 'Snapshots');
  const snapshots = snapTo === undefined || snapTo === resolve(e.config.snapshotFileLocation) ? null
    : { from: resolve(e.config.snapshotFileLocation), to: snapTo, written: [], old: host.checkpoints.files(e) };
  // -DestinationStoragePath alone moves the checkpoint folder too, but an empty one is no reason to call it a move.
  if (moved.length === 0 && (snapshots === null || (p.SnapshotFilePath === undefined && snapshots.old.length === 0))) {
    throw invalid(p.DestinationStoragePath !== undefined ? 'DestinationStoragePath' : 'Vhds', `VM '${vm}''s files are already there: the destination is the same as the source`, vm);
  }
  if (snapshots) for (const f of snapshots.old) if (await stat(join(snapshots.to, basename(f))).then(() => true, () => false)) {
    throw new VmhostError('ALREADY_EXISTS', `${join(snapshots.to, basename(f))} already exists: Move-VMStorage never overwrites a file`, { vm, path: snapshots.to });
  }
  await checkSpace([...moved.map((m) => ({ from: m.from, to: m.to })), ...(snapshots ? snapshots.old.map((f) => ({ from: f, to: join(snapshots.to, basename(f)) })) : [])], vm);
  const drives = e.config.hardDrives.flatMap((d) => {
    const m = moved.find((x) => x.from === d.path);
    return m ? [{ id: d.id, from: m.from, to: m.to }] : [];
  });
  return { phase: 'copying', files: moved, drives, snapshots };
}

/** The destination folders exist (created) and have room for what the source files hold (allocated bytes, holes excluded). */
async function checkSpace(copies: Array<{ from: string; to: string }>, vm: string): Promise<void> {
  const need = new Map<string, number>();
  for (const c of copies) {
    const dir = dirname(c.to);
    const s = await stat(c.from);
    need.set(dir, (need.get(dir) ?? 0) + s.blocks * 512);
  }
  // Folders on one file system share its free space.
  const byDevice = new Map<number, { free: number; need: number; dirs: string[] }>();
  for (const [dir, bytes] of need) {
    await mkdir(dir, { recursive: true }).catch((err: unknown) => { throw invalid('DestinationStoragePath', `cannot create ${dir}: ${(err as Error).message}`, vm); });
    const [fs, st] = await Promise.all([statfs(dir), stat(dir)]);
    const d = byDevice.get(st.dev) ?? { free: fs.bavail * fs.bsize, need: 0, dirs: [] };
    d.need += bytes;
    d.dirs.push(dir);
    byDevice.set(st.dev, d);
  }
  for (const d of byDevice.values()) {
    if (d.need > d.free) {
      throw new VmhostError('MOVE_STORAGE_NO_SPACE', `not enough free space in ${d.dirs.join(', ')}: the move needs ${d.need} bytes, ${d.free} are free`, { vm, need: d.need, free: d.free });
    }
  }
}

/**
 * Move-VMStorage, under the VM's lock, in any steady state (the legality table's MoveStorage).
 * Running or Paused: frozen files copied, leaves mirrored live; Off or Saved: every file copied.
 */
export async function moveStorage(e: VmEntry, p: MoveStorageParams, host: MoveStorageHost, h: JobHandle): Promise<void> {
  const stopped = () => new VmhostError('JOB_CANCELLED', `Move-VMStorage of VM '${e.config.name}' was cancelled (Stop-Job): the drives not yet switched keep their files`, { vm: e.config.name });
  const checkStop = () => { if (h.signal.aborted) throw stopped(); };
  checkStop();
  const j = await plan(e, p, host);
  const save = () => writeFileAtomic(journalPath(e), JSON.stringify(j, null, 2) + '\n');
  await save();
  const map = mapper(j);
  const servedOf = (path: string) => {
    const d = e.config.hardDrives.find((x) => x.path === path);
    return d ? host.storage.server.get(VmStorage.exportName(d)) : undefined;
  };
  const mirrored = j.files.filter((f) => servedOf(f.from) !== undefined);
  const copied = j.files.filter((f) => !mirrored.includes(f));
  try {
    for (const [i, f] of copied.entries()) {
      h.progress(5 + (45 * i) / Math.max(copied.length, 1), `Copying ${basename(f.from)}`);
      // A cancel stops the copy at its next chunk (copyDiskFile removes its partial file).
      await copyDiskFile(f.from, f.to, checkStop);
      if (f.parent !== null) await setDiskParent(f.to, map(f.parent), false);
    }
    if (j.snapshots) {
      await mkdir(j.snapshots.to, { recursive: true });
      // Listed before they are written: a crash meanwhile still removes them.
      j.snapshots.written = host.checkpoints.files(e).map((f) => join(j.snapshots!.to, basename(f)));
      await save();
      await host.checkpoints.writeRecordsTo(e, j.snapshots.to, map);
    }
    const last = (config: VmConfig): VmConfig => ({
      ...config, ...(j.snapshots ? { snapshotFileLocation: j.snapshots.to } : {}),
      hardDrives: config.hardDrives.map((d) => ({ ...d, path: map(d.path) })),
    });
    if (mirrored.length === 0) {
      await host.persistNext(e, last(e.config));
    }
    for (const [i, f] of mirrored.entries()) {
      checkStop();
      const drive = e.config.hardDrives.find((x) => x.path === f.from)!;
      const served = servedOf(f.from)!;
      const target = await createMirrorFile(served.disk, f.to, f.parent === null ? undefined : map(f.parent));
      const ownRanges = served.disk.type === 'Differencing' && served.disk.format === 'VHDX';
      const mirror = await host.storage.server.mirror(served.exportName, {
        target, ranges: ownRanges ? 'own' : 'all',
        progress: (done, total) => h.progress(50 + (45 * (i + done / Math.max(total, 1))) / mirrored.length, `Mirroring ${basename(f.from)} while the VM runs`),
        // The export is paused: the drive names the copy from now on (with the checkpoint folder, for the last one).
        commit: () => host.persistNext(e, i === mirrored.length - 1 ? last(e.config) : {
          ...e.config, hardDrives: e.config.hardDrives.map((d) => (d.id === drive.id ? { ...d, path: f.to } : d)),
        }),
      });
      const cancel = () => void mirror.cancel('cancelled (Stop-Job)');
      h.signal.addEventListener('abort', cancel, { once: true });
      try {
        await mirror.done;
      } catch (err) {
        throw h.signal.aborted && err instanceof VmhostError && err.code === 'STORAGE_MIRROR_CANCELLED' ? stopped() : err;
      } finally {
        h.signal.removeEventListener('abort', cancel);
      }
    }
  } catch (err) {
    await settle(e, j, host).catch((cleanup: unknown) => host.event('Error', 'VM_MOVE_STORAGE_CLEANUP_FAILED', `Move-VMStorage could not clean up: ${(cleanup as Error).message}`, e));
    throw err;
  }
  h.progress(96, 'Removing the old files');
  await settle(e, j, host);
}

/** Every file reached from `paths` through the journal's chains (the new side's or the old side's). */
function reachable(j: Journal, paths: Iterable<string>): Set<string> {
  const map = mapper(j);
  const up = new Map<string, string | null>();
  for (const f of j.files) {
    up.set(f.from, f.parent);
    up.set(f.to, f.parent === null ? null : map(f.parent));
  }
  const out = new Set<string>();
  for (const p of paths) for (let q: string | null | undefined = p; q && !out.has(q); q = up.get(q)) out.add(q);
  return out;
}

/**
 * End a move from its journal (after it ran, failed, or at the daemon's start): once every
 * drive and the checkpoint folder are switched the move completes (records re-pointed in
 * place); then every file the move made or left that vm.json and the records no longer reach
 * is deleted, and the journal goes.
 */
async function settle(e: VmEntry, j: Journal, host: MoveStorageHost): Promise<void> {
  const map = mapper(j);
  const snapshotsMoved = j.snapshots !== null && resolve(e.config.snapshotFileLocation) === j.snapshots.to;
  const switched = j.drives.every((d) => e.config.hardDrives.find((x) => x.id === d.id)?.path === d.to) && (j.snapshots === null || snapshotsMoved);
  if (switched && j.phase !== 'committed') {
    j.phase = 'committed';
    await writeFileAtomic(journalPath(e), JSON.stringify(j, null, 2) + '\n');
  }
  if (j.phase === 'committed') {
    // Records in an unmoved folder are re-pointed now (idempotent: a crash here re-runs it).
    if (j.snapshots === null) await host.checkpoints.writeRecordsTo(e, e.config.snapshotFileLocation, map);
    host.checkpoints.adoptPaths(e, map);
  }
  const used = reachable(j, [...e.config.hardDrives.map((d) => d.path), ...host.checkpoints.all(e).flatMap((r) => r.config.hardDrives.map((d) => d.path))]);
  for (const f of j.files) for (const x of [f.from, f.to]) if (!used.has(x)) await rm(x, { force: true });
  if (j.snapshots) for (const f of snapshotsMoved ? j.snapshots.old : j.snapshots.written) await rm(f, { force: true });
  await rm(journalPath(e), { force: true });
}

/** Daemon start, before the VM's disks are served: finish or undo a move a crash interrupted. */
export async function resumeMoveStorage(e: VmEntry, host: MoveStorageHost): Promise<void> {
  const j = await readJson<Journal>(journalPath(e)).catch(() => undefined);
  if (!j) return;
  await settle(e, j, host);
  const done = j.phase === 'committed';
  host.event(done ? 'Information' : 'Warning', 'VM_MOVE_STORAGE_RECOVERED', done
    ? 'Move-VMStorage interrupted after its switch: finished (old files removed)'
    : 'Move-VMStorage interrupted before its last switch: rolled back (drives not switched stay on their source files, partial copies removed)', e);
}
