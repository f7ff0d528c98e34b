// Checkpoints (Hyper-V 2012 R2 "snapshots"): Checkpoint-VM, Get-VMSnapshot, Rename-VMSnapshot,
// Restore-VMSnapshot. A checkpoint freezes the files every hard drive is on and moves the
// drive onto a new differencing child (`<disk>_<checkpoint id>.avhdx` beside it, as Hyper-V
// names them); a running VM's disks are branched under its connected QEMU by the block server
// (storage/disk-branch.ts: a short I/O pause) while the guest is paused, then its memory and
// device state is saved beside the checkpoint and the guest goes on. The VM's configuration
// of that moment is part of the checkpoint. Records live in the VM's snapshotFileLocation
// (<vm dir>/snapshots unless imported elsewhere) as <id>.json, memory in <id>.state; the
// tree is the records' parent ids, the VM's place in it its config's parentSnapshotId. Remove-VMSnapshot merges a checkpoint's frozen files with their
// one child (disk-tree.ts): live in the block server when the child is in a running VM's
// served chain, else offline. A record being removed is marked first (`merging`: it can no
// longer be applied, Get-VMSnapshot shows IsDeleted) so a daemon killed mid-merge finishes
// the removal at its next start.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic, readJson } from './atomic-file.ts';
import type { BootSourceKind } from './boot-order.ts';
import type { EventLevel } from './events.ts';
import type { JobHandle } from './jobs.ts';
import type { LockHeld } from './vm-lock.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';
import type { VmRuntime } from './vm-runtime.ts';
import type { VmStorage } from './vm-storage.ts';
import type { VmState } from './vm-state.ts';
import { foldOffline, planFold, relinkAll } from './disk-tree.ts';
import { upgradeConfig, type RawConfig } from './config-version.ts';

/** Hyper-V's limit per VM. */
export const MAX_CHECKPOINTS = 50;

export interface CheckpointRecord {
  id: string;
  name: string;
  parentId: string | null;
  createdAt: string;
  /** What the VM was doing: Running and Paused checkpoints carry memory. */
  vmState: VmState;
  /** The VM's configuration then; its drives name the files frozen by this checkpoint. */
  config: VmConfig;
  /** The memory file's name in the snapshots folder, when the VM was running, paused or saved. */
  memory: string | null;
  uptimeMs: number;
  boot: BootSourceKind | null;
  /** Remove-VMSnapshot started on it: its files may be half merged, it is never applied again. */
  merging?: true;
}

/** Get-VMSnapshot's object (Hyper-V's VMSnapshot; ParentCheckpoint* are 2012 R2's aliases of ParentSnapshot*). */
export interface SnapshotView {
  VMName: string;
  VMId: string;
  Name: string;
  Id: string;
  SnapshotType: 'Standard';
  CreationTime: string;
  ParentSnapshotId: string | null;
  ParentSnapshotName: string | null;
  ParentCheckpointId: string | null;
  ParentCheckpointName: string | null;
  State: VmState;
  Path: string;
  SizeOfSystemFiles: number;
  ProcessorCount: number;
  MemoryStartup: number;
  Generation: number;
  Notes: string;
  HardDrives: string[];
  ComputerName: string;
  IsDeleted: boolean;
}

/** What the checkpoint actions need of the host. */
export interface CheckpointHost {
  readonly storage: VmStorage;
  readonly computerName: string;
  persistNext(e: VmEntry, next: VmConfig): Promise<void>;
  event(level: EventLevel, code: string, message: string, e: VmEntry): void;
  /** Save a paused VM's memory and device state to `file` (QEMU stays in postmigrate: `resume` goes on). */
  saveMemory(rt: VmRuntime, file: string, progress: (pct: number) => void): Promise<void>;
  /** Turn a live VM off under its lock (Restore-VMSnapshot of a running VM). */
  turnOff(e: VmEntry, why: string, held: LockHeld): Promise<void>;
  /** Make a memory file the VM's saved state: Start-VM then resumes from it. */
  adoptSavedState(e: VmEntry, held: LockHeld, memory: string, uptimeMs: number, boot: BootSourceKind | null): Promise<void>;
  /** Throw away the VM's saved state (it goes Off). */
  dropSavedState(e: VmEntry, held: LockHeld): Promise<void>;
}

const CHILD_SUFFIX = /_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Hyper-V's child name: the base disk's name (without earlier checkpoint suffixes), the checkpoint's id, .avhdx/.avhd. */
export function childDiskName(path: string, checkpointId: string): string {
  const ext = extname(path).toLowerCase();
  const base = basename(path, extname(path)).replace(CHILD_SUFFIX, '');
  return `${base}_${checkpointId}${ext === '.vhd' || ext === '.avhd' ? '.avhd' : '.avhdx'}`;
}

export class VmCheckpoints {
  /** Per VM id: its checkpoint records by id (loaded with the VM, changed only under its lock). */
  private readonly records = new Map<string, Map<string, CheckpointRecord>>();

  constructor(private readonly host: CheckpointHost) {}

  private dir(e: VmEntry): string {
    return e.config.snapshotFileLocation;
  }

  private of(e: VmEntry): Map<string, CheckpointRecord> {
    let m = this.records.get(e.config.id);
    if (!m) this.records.set(e.config.id, (m = new Map()));
    return m;
  }

  /** Read a VM's records (daemon start); an unreadable one is skipped with an event, its files kept. */
  async load(e: VmEntry): Promise<void> {
    const m = this.of(e);
    const names = await readdir(this.dir(e)).catch(() => [] as string[]);
    for (const f of names.filter((n) => n.endsWith('.json'))) {
      try {
        const r = await readJson<CheckpointRecord>(join(this.dir(e), f));
        // A record's config is a VM config of its day: read at today's version (records are rewritten only when changed).
        m.set(r.id, { ...r, config: upgradeConfig(r.config as unknown as RawConfig, { snapshotDir: this.dir(e) }, `checkpoint ${f}`).config });
      } catch (err) {
        this.host.event('Error', 'VM_CHECKPOINT_UNREADABLE', `Checkpoint file ${f} skipped: ${(err as Error).message}`, e);
      }
    }
  }

  /** The VM's checkpoint records, oldest first (Export-VM copies them). */
  all(e: VmEntry): CheckpointRecord[] {
    return [...this.of(e).values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Where a record's memory file is (null when it has none). */
  memoryOf(e: VmEntry, r: CheckpointRecord): string | null {
    return r.memory === null ? null : join(this.dir(e), r.memory);
  }

  forget(e: VmEntry): void {
    this.records.delete(e.config.id);
  }

  parentName(e: VmEntry): string | null {
    const id = e.config.parentSnapshotId;
    return id === null ? null : (this.of(e).get(id)?.name ?? null);
  }

  list(e: VmEntry): SnapshotView[] {
    return this.all(e).map((r) => this.view(e, r));
  }

  /** One checkpoint by name (wildcards are the caller's) or id. */
  find(e: VmEntry, nameOrId: string): CheckpointRecord {
    const m = this.of(e);
    const byId = m.get(nameOrId);
    if (byId) return byId;
    const named = [...m.values()].filter((r) => r.name.toLowerCase() === nameOrId.toLowerCase());
    if (named.length === 1) return named[0]!;
    if (named.length > 1) {
      throw new VmhostError('INVALID_ARGUMENT', `VM '${e.config.name}' has ${named.length} checkpoints named '${nameOrId}': give its Id`, { vm: e.config.name, snapshot: nameOrId });
    }
    throw new VmhostError('NOT_FOUND', `VM '${e.config.name}' has no checkpoint '${nameOrId}'`, { vm: e.config.name, snapshot: nameOrId });
  }

  private view(e: VmEntry, r: CheckpointRecord): SnapshotView {
    const parent = r.parentId === null ? undefined : this.of(e).get(r.parentId);
    return {
      VMName: e.config.name, VMId: e.config.id, Name: r.name, Id: r.id, SnapshotType: 'Standard', CreationTime: r.createdAt,
      ParentSnapshotId: r.parentId, ParentSnapshotName: parent?.name ?? null, ParentCheckpointId: r.parentId, ParentCheckpointName: parent?.name ?? null,
      State: r.vmState, Path: this.dir(e), SizeOfSystemFiles: 0, ProcessorCount: r.config.processorCount, MemoryStartup: r.config.memoryStartupBytes,
      Generation: r.config.generation, Notes: r.config.notes, HardDrives: r.config.hardDrives.map((d) => d.path),
      ComputerName: this.host.computerName, IsDeleted: r.merging === true,
    };
  }

  /** Checkpoint-VM, under the VM's lock. */
  async take(e: VmEntry, h: JobHandle, held: LockHeld, name: string | undefined): Promise<SnapshotView> {
    const m = this.of(e);
    if (m.size >= MAX_CHECKPOINTS) {
      throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' already has ${MAX_CHECKPOINTS} checkpoints, the most a VM can have: remove some first`, { vm: e.config.name });
    }
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    const record: CheckpointRecord = {
      id, name: name ?? `${e.config.name} - (${createdAt.replace('T', ' ').slice(0, 19)})`, parentId: e.config.parentSnapshotId,
      createdAt, vmState: e.state, config: structuredClone(e.config), memory: null,
      uptimeMs: e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0), boot: e.bootSource ?? null,
    };
    await mkdir(this.dir(e), { recursive: true });
    const memory = join(this.dir(e), `${id}.state`);
    const rt = e.runtime;
    const live = rt !== undefined && (e.state === 'Running' || e.state === 'Paused');
    if (live) await rt.pause(); // the moment of the checkpoint: disks and memory agree from here
    const children = new Map<string, string>();
    try {
      h.progress(5, 'Creating differencing disks');
      for (const d of e.config.hardDrives) children.set(d.id, await this.host.storage.branchDrive(d, childDiskName(d.path, id)));
      if (live) {
        await this.host.saveMemory(rt, memory, (pct) => h.progress(10 + pct * 0.85, 'Saving memory'));
        record.memory = basename(memory);
      } else if (e.state === 'Saved') {
        await copyFile(e.paths.savedState, memory);
        record.memory = basename(memory);
      }
      await this.saveRecord(e, record);
    } catch (err) {
      await rm(memory, { force: true });
      // Drives already moved stay on their new files (the data is whole either way): say so, never lose track of a leaf.
      if (children.size > 0) await this.moveDrives(e, children, e.config.parentSnapshotId);
      throw err;
    } finally {
      if (live && e.state === 'Running') await rt.resume();
    }
    await this.moveDrives(e, children, id);
    this.host.event('Information', 'VM_CHECKPOINT_CREATED', `Checkpoint '${record.name}' created`, e);
    return this.view(e, record);
  }

  private async moveDrives(e: VmEntry, children: Map<string, string>, parentSnapshotId: string | null): Promise<void> {
    await this.host.persistNext(e, {
      ...e.config, parentSnapshotId,
      hardDrives: e.config.hardDrives.map((d) => ({ ...d, path: children.get(d.id) ?? d.path })),
    });
  }

  /** Remove-VMSavedState -VMSnapshot, under the VM's lock: the checkpoint's memory goes; applying it then leaves the VM Off. */
  async dropMemory(e: VmEntry, nameOrId: string): Promise<SnapshotView> {
    const r = this.find(e, nameOrId);
    if (r.merging === true) throw new VmhostError('INVALID_STATE', `checkpoint '${r.name}' is being deleted`, { vm: e.config.name, snapshot: r.name });
    if (r.memory === null) throw new VmhostError('INVALID_STATE', `checkpoint '${r.name}' of VM '${e.config.name}' has no saved state`, { vm: e.config.name, snapshot: r.name });
    const next: CheckpointRecord = { ...r, memory: null, vmState: 'Off', uptimeMs: 0 };
    await this.saveRecord(e, next);
    await rm(join(this.dir(e), r.memory), { force: true });
    this.host.event('Information', 'VM_CHECKPOINT_SAVED_STATE_REMOVED', `Saved state of checkpoint '${r.name}' deleted`, e);
    return this.view(e, next);
  }

  async rename(e: VmEntry, nameOrId: string, newName: string): Promise<SnapshotView> {
    const r = this.find(e, nameOrId);
    if (newName.trim() === '' || newName.length > 100) throw new VmhostError('INVALID_ARGUMENT', 'NewName: must be 1–100 characters', { parameter: 'NewName' });
    const next = { ...r, name: newName };
    await this.saveRecord(e, next);
    this.host.event('Information', 'VM_CHECKPOINT_RENAMED', `Checkpoint '${r.name}' renamed to '${newName}'`, e);
    return this.view(e, next);
  }

  /**
   * Remove-VMSnapshot, under the VM's lock, in any steady state. Per drive, the file the
   * checkpoint froze is merged with its one child, whose data is the newer — live when the
   * child is in a running VM's served chain (the guest keeps reading and writing), else
   * offline; references to the child (the VM's drive, later checkpoints) then name the frozen
   * file. A file with more children stays (a branch point, as in Hyper-V), one with none that
   * vmhost made is deleted. The checkpoint's children move up to its parent. With
   * `withChildren`, its whole subtree goes, deepest first. Returns the names removed.
   */
  async remove(e: VmEntry, nameOrId: string, withChildren: boolean, progress: (pct: number, status: string) => void = () => undefined, pause?: AbortSignal): Promise<string[]> {
    const top = this.find(e, nameOrId);
    const m = this.of(e);
    const order: CheckpointRecord[] = [];
    const visit = (r: CheckpointRecord) => {
      if (withChildren) for (const c of [...m.values()].filter((x) => x.parentId === r.id)) visit(c);
      order.push(r);
    };
    visit(top);
    for (const [i, r] of order.entries()) await this.removeOne(e, r, (f) => progress(100 * (i + f) / order.length, `Merging the disks of '${r.name}'`), pause);
    return order.map((r) => r.name);
  }

  /** Checkpoints whose removal a daemon stop interrupted (resumed at start). */
  pendingRemovals(e: VmEntry): string[] {
    return [...this.of(e).values()].filter((r) => r.merging === true).map((r) => r.id);
  }

  private async removeOne(e: VmEntry, r: CheckpointRecord, progress: (fraction: number) => void, pause?: AbortSignal): Promise<void> {
    const m = this.of(e);
    if (r.merging !== true) await this.saveRecord(e, { ...r, merging: true });
    const used = () => [...new Set([...e.config.hardDrives.map((d) => d.path), ...[...m.values()].filter((x) => x.id !== r.id).flatMap((x) => x.config.hardDrives.map((d) => d.path))])];
    const drives = r.config.hardDrives;
    for (const [i, d] of drives.entries()) {
      const fold = await planFold(d.path, used(), CHILD_SUFFIX, (f) => this.host.storage.parentOf(f));
      if (fold.kind === 'delete') await this.host.storage.volumeOps.run({ Op: 'remove', Path: d.path });
      if (fold.kind !== 'merge') continue;
      // Live, it runs with the export paused once the frozen file holds everything (the export re-links its own chain).
      const commit = async () => {
        await relinkAll(fold.grandchildren.filter((g) => !this.host.storage.holderOf(g)), d.path);
        await this.repoint(e, fold.child, d.path);
      };
      const report = (done: number, total: number) => progress((i + done / Math.max(total, 1)) / drives.length);
      const live = await this.host.storage.mergeServed(fold.child, d.path, report, commit, pause);
      if (!live) await foldOffline(d.path, fold, () => this.repoint(e, fold.child, d.path), report, this.host.storage.volumeOps);
    }
    // Its children hang from its parent now; the VM too, if it grew from it.
    for (const c of [...m.values()].filter((x) => x.parentId === r.id)) await this.saveRecord(e, { ...c, parentId: r.parentId });
    if (e.config.parentSnapshotId === r.id) await this.host.persistNext(e, { ...e.config, parentSnapshotId: r.parentId });
    m.delete(r.id);
    await rm(join(this.dir(e), `${r.id}.json`), { force: true });
    if (r.memory) await rm(join(this.dir(e), r.memory), { force: true });
    this.host.event('Information', 'VM_CHECKPOINT_REMOVED', `Checkpoint '${r.name}' removed`, e);
  }

  /** After a merge: every reference to file `from` (the VM's drives, checkpoints) names `to`. */
  private async repoint(e: VmEntry, from: string, to: string): Promise<void> {
    const swap = (c: VmConfig): VmConfig => ({ ...c, hardDrives: c.hardDrives.map((d) => (d.path === from ? { ...d, path: to } : d)) });
    for (const x of [...this.of(e).values()]) if (x.config.hardDrives.some((d) => d.path === from)) await this.saveRecord(e, { ...x, config: swap(x.config) });
    if (e.config.hardDrives.some((d) => d.path === from)) await this.host.persistNext(e, swap(e.config));
  }

  /**
   * Move-VMStorage: every record written into `dir` with its drives' files mapped by `map`, and
   * its memory copied there when `dir` is a new folder; the records the VM uses stay as they are
   * until `adoptPaths`. Returns the files written (a failed move removes them).
   */
  async writeRecordsTo(e: VmEntry, dir: string, map: (path: string) => string): Promise<string[]> {
    const written: string[] = [];
    for (const r of this.of(e).values()) {
      const memory = this.memoryOf(e, r);
      if (memory !== null && r.memory !== null && resolve(dir) !== resolve(this.dir(e))) {
        await copyFile(memory, join(dir, r.memory), constants.COPYFILE_EXCL);
        written.push(join(dir, r.memory));
      }
      const moved = { ...r, config: { ...r.config, hardDrives: r.config.hardDrives.map((d) => ({ ...d, path: map(d.path) })) } };
      await writeFileAtomic(join(dir, `${r.id}.json`), JSON.stringify(moved, null, 2) + '\n');
      written.push(join(dir, `${r.id}.json`));
    }
    return written;
  }

  /** Move-VMStorage, after the records were written (writeRecordsTo) and the VM's config names their folder: the records in memory follow. */
  adoptPaths(e: VmEntry, map: (path: string) => string): void {
    for (const r of this.of(e).values()) r.config = { ...r.config, hardDrives: r.config.hardDrives.map((d) => ({ ...d, path: map(d.path) })) };
  }

  /** The record and memory files of the VM's checkpoints in their folder (Move-VMStorage deletes the old ones). */
  files(e: VmEntry): string[] {
    return [...this.of(e).values()].flatMap((r) => [join(this.dir(e), `${r.id}.json`), ...(r.memory === null ? [] : [join(this.dir(e), r.memory)])]);
  }

  private async saveRecord(e: VmEntry, r: CheckpointRecord): Promise<void> {
    await writeFileAtomic(join(this.dir(e), `${r.id}.json`), JSON.stringify(r, null, 2) + '\n');
    this.of(e).set(r.id, r);
  }

  /**
   * Restore-VMSnapshot, under the VM's lock: the VM's current disks (the differencing files
   * made since that checkpoint) are discarded, each drive goes on a new child of the files
   * the checkpoint froze, its configuration becomes the checkpoint's, and a checkpoint with
   * memory becomes the VM's saved state. A running VM is turned off first; returns whether
   * it was running (the caller starts it again from the checkpoint's memory).
   */
  async restore(e: VmEntry, held: LockHeld, nameOrId: string): Promise<{ wasRunning: boolean }> {
    const r = this.find(e, nameOrId);
    if (r.merging === true) throw new VmhostError('INVALID_STATE', `checkpoint '${r.name}' is being deleted (its disks are being merged): it cannot be applied`, { vm: e.config.name, snapshot: r.name });
    const wasRunning = e.state === 'Running' || e.state === 'Paused';
    if (e.state !== 'Off' && e.state !== 'Saved') await this.host.turnOff(e, `restoring checkpoint '${r.name}'`, held);
    if (e.state === 'Saved') await this.host.dropSavedState(e, held);
    const frozen = new Set([...this.of(e).values()].flatMap((x) => x.config.hardDrives.map((d) => d.path)));
    const discard = e.config.hardDrives.map((d) => d.path).filter((p) => !frozen.has(p) && CHILD_SUFFIX.test(basename(p, extname(p))));
    const restoreId = randomUUID();
    const children = new Map<string, string>();
    for (const d of r.config.hardDrives) children.set(d.id, await this.host.storage.branchDrive(d, childDiskName(d.path, restoreId)));
    await this.host.persistNext(e, {
      ...r.config, id: e.config.id, name: e.config.name, createdAt: e.config.createdAt, parentSnapshotId: r.id, snapshotFileLocation: e.config.snapshotFileLocation,
      hardDrives: r.config.hardDrives.map((d) => ({ ...d, path: children.get(d.id)! })),
    });
    for (const p of discard) await rm(p, { force: true });
    if (r.memory !== null) await this.host.adoptSavedState(e, held, join(this.dir(e), r.memory), r.uptimeMs, r.boot);
    this.host.event('Information', 'VM_CHECKPOINT_RESTORED', `Checkpoint '${r.name}' restored${r.memory ? ' (with its memory: the VM is Saved at that moment)' : ''}`, e);
    return { wasRunning };
  }
}
