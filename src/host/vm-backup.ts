// Incremental backup of VMs (issue 13; a vmhost extension in Hyper-V's verb-noun style:
// Start-/Get-/Restore-/Remove-VMBackup). A backup point of a VM is, per hard drive, one restic
// snapshot holding a changed-blocks stream (backup-stream.ts). The first point of a chain (per
// VM and repository) is full: the disk's data. Each later one holds only the blocks the drive's
// change tracker (storage/change-tracking) saw written since the point before, so a backup
// reads only changed blocks. A running VM's drives are read at one moment by the block server's
// point-in-time copy (the tracker's take runs in the same pause), with the guest's file systems
// frozen through the agent around that pause when it can (guest-freeze.ts): the point is then
// application-consistent, else crash-consistent, as after a power cut at that moment. The copy
// lands in a sparse temporary file beside the VM (only the changed blocks take space), which is
// streamed to restic and removed. An off or saved VM's files are read directly, under the VM's
// lock; the tracker file still knows their changes when the disk's DataWriteGuid is one it
// recorded, else the point is full and says why. The take is committed only when every drive's
// snapshot is stored; otherwise it is restored, so the next point still carries those blocks.
// The first drive's stream header carries the VM's config: Restore-VMBackup -NewVMName builds
// a VM from it.
//
// Retention (-KeepLast N, a parameter of Start-VMBackup rather than a stored Set-VMBackupPolicy:
// vmhost has no backup scheduler, so whatever runs the backups — a cron job, a systemd timer —
// holds the schedule and its retention together, and a stored policy could act only when a
// backup runs anyway). restic's own `forget --keep-last` cannot be used as it is — it does
// not know that an incremental point needs the points before it. So the N newest points of the
// VM in the repository stay; an incremental among them whose full point would go is rebased
// first (its disk at that point rebuilt from the chain and stored as a full stream: restic
// deduplicates it against the blobs the chain already holds, so the repository grows little),
// then the older points are forgotten and the repository pruned in one `forget --prune`.
//
// The repository's password is a random key this host creates with the repository and keeps in
// DIR/backup-keys/ (0600, like the host's other secrets); restoring elsewhere needs that file.
// Snapshot tags carry what Get-VMBackup shows: backup id, VM id and name, chain, point, drive.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { NodeFile, type VirtualDisk } from '../blockio/index.ts';
import { VmhostError } from '../common/index.ts';
import { RawDisk, createDiskFile, openDiskFile } from '../storage/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { applyStream, dataBytes, encodeStream, streamExtents, STREAM_FORMAT, type StreamHeader } from './backup-stream.ts';
import { takeConsistentPoint, takeFilePoint } from './consistent-point.ts';
import type { ConsistencyLevel, FreezeResult } from './guest-freeze.ts';
import type { JobHandle } from './jobs.ts';
import { ResticRepository, type ResticSnapshot } from './restic.ts';
import type { VmConfig } from './vm-config.ts';
import { decodeFirmwareVars, readFirmwareVars, writeFirmwareVars } from './backup-firmware.ts';
import type { VmEntry } from './vm-entry.ts';
import { VmStorage } from './vm-storage.ts';

export interface VmBackupDrive {
  DriveId: string;
  /** The drive's file when the point was taken. */
  Path: string;
  VirtualSize: number;
  Kind: 'Full' | 'Incremental';
  /** Bytes of the ranges read from the disk (the tracker's changed blocks; a full point: the whole disk, zeros probed, not read). */
  ChangedBytes: number;
  /** Bytes of data the stream carries (changed ranges that hold data). */
  DataBytes: number;
  /** Why a point of a chain that had one before read the whole disk (the tracker's reason). */
  FullReason?: string;
  SnapshotId: string;
}

export interface VmBackup {
  BackupId: string;
  VMId: string;
  VMName: string;
  Repository: string;
  ChainId: string;
  /** 0 for the chain's full point, then 1, 2, … */
  Point: number;
  Kind: 'Full' | 'Incremental';
  CreationTime: string;
  /** As Hyper-V's snapshot settings name it: the guest's file systems frozen at the point, or the disks as after a power cut. */
  ConsistencyLevel: ConsistencyLevel;
  /** Why the point is only crash-consistent; known when the point is taken. */
  ConsistencyNote?: string;
  /** The guest mount points frozen for an application-consistent point; known when the point is taken. */
  FrozenFileSystems?: string[];
  /** The VM's state when the point was taken: Running/Paused read through the block server, Off/Saved from the files. */
  VMState: string;
  VirtualSize: number;
  ChangedBytes: number;
  DataBytes: number;
  /** New bytes the repository stored for this point (deduplicated); known when the point is taken, 0 when listed. */
  StoredBytes: number;
  Drives: VmBackupDrive[];
  /** Points -KeepLast removed after this one was stored (ids), and the points it rebased as full first. */
  Removed?: string[];
  Rebased?: string[];
}

export interface RestoredDisk {
  DriveId: string;
  SourcePath: string;
  Path: string;
  VirtualSize: number;
  BackupId: string;
  /** Points applied: the full one and the incrementals after it. */
  PointsApplied: number;
}

export interface BackupOptions {
  /** Takes the point (the pause of the point-in-time copy) with the guest frozen when it can: host.ts binds it to the VM's agent. */
  consistent: <T>(take: () => Promise<T>) => Promise<FreezeResult<T>>;
  /** Keep only the VM's newest N points in the repository (rebasing the oldest kept as full when needed). */
  keepLast?: number;
}

interface ChainRecord { chainId: string; point: number }
type ChainsFile = Record<string, ChainRecord>;

const TAG = 'vmhost-backup';

function tagValue(tags: readonly string[] | undefined, key: string): string | undefined {
  const t = tags?.find((x) => x.startsWith(`${key}:`));
  return t === undefined ? undefined : decodeURIComponent(t.slice(key.length + 1));
}

function notFound(what: string, ctx: Record<string, string>): VmhostError {
  return new VmhostError('BACKUP_NOT_FOUND', what, { op: 'backup', ...ctx });
}

export class VmBackups {
  constructor(private readonly dataDir: string, private readonly storage: VmStorage) {}

  private keyPath(repo: string): string {
    return join(this.dataDir, 'backup-keys', `${createHash('sha256').update(repo).digest('hex').slice(0, 24)}.key`);
  }

  /** The repository at `path` with this host's key; `create`: make both when there is no repository yet. */
  private async repository(path: string, create: boolean): Promise<ResticRepository> {
    const repo = resolve(path);
    const key = this.keyPath(repo);
    const r = new ResticRepository(repo, key, join(this.dataDir, 'backup-cache'));
    const haveKey = await readFile(key).then(() => true, () => false);
    if (await r.exists()) {
      if (!haveKey) throw new VmhostError('BACKUP_NO_KEY', `${repo} is a backup repository this host holds no key for (${key})`, { op: 'backup', repository: repo });
      return r;
    }
    if (!create) throw notFound(`no backup repository at ${repo}`, { repository: repo });
    await mkdir(join(this.dataDir, 'backup-keys'), { recursive: true, mode: 0o700 });
    if (!haveKey) await writeFileAtomic(key, randomBytes(32).toString('base64url'));
    await mkdir(repo, { recursive: true, mode: 0o700 });
    await r.init();
    return r;
  }

  private chainsPath(e: VmEntry): string {
    return join(e.paths.dir, 'backup-chains.json');
  }

  private async chains(e: VmEntry): Promise<ChainsFile> {
    return readJson<ChainsFile>(this.chainsPath(e)).catch(() => ({}));
  }

  /**
   * Start-VMBackup: the next point of the VM's chain in `destination` (full when there is none
   * yet). A running or paused VM is read through the block server at a point `consistent`
   * takes (the guest frozen around it when it can); an off or saved one from its files.
   */
  async backup(e: VmEntry, destination: string, h: JobHandle, o: BackupOptions): Promise<VmBackup> {
    const repoPath = resolve(destination);
    h.progress(2, 'Opening the repository');
    const repo = await this.repository(repoPath, true);
    const chains = await this.chains(e);
    const known = chains[repoPath];
    const chain: ChainRecord = known ?? { chainId: randomUUID(), point: -1 };
    const consumer = `backup:${chain.chainId}`;
    if (e.config.hardDrives.length === 0) throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' has no hard drive to back up`, { vm: e.config.name });
    const point = chain.point + 1;
    const backupId = randomUUID();
    const stored: string[] = [];
    h.progress(5, 'Taking the point in time');
    // A consumer without its chain record (the record lost, or Remove-VMBackup cut the chain) starts over, full.
    const at = e.state === 'Running' || e.state === 'Paused'
      ? await takeConsistentPoint(e, this.storage, {
        consumer, tmpDir: join(e.paths.dir, 'backup-tmp'), fresh: !known, pause: o.consistent,
        onProgress: (f) => h.progress(5 + f * 45, 'Reading the changed blocks at the point in time'),
      })
      : await takeFilePoint(e, this.storage, { consumer, fresh: !known });
    try {
      const out: VmBackup = {
        BackupId: backupId, VMId: e.config.id, VMName: e.config.name, Repository: repoPath, ChainId: chain.chainId, Point: point,
        Kind: at.drives.every((x) => x.taken.full) ? 'Full' : 'Incremental', CreationTime: new Date().toISOString(), ConsistencyLevel: at.level, ConsistencyNote: at.reason,
        ...(at.frozen.length > 0 ? { FrozenFileSystems: at.frozen } : {}),
        VMState: e.state, VirtualSize: 0, ChangedBytes: 0, DataBytes: 0, StoredBytes: 0, Drives: [],
      };
      const firmwareVars = await readFirmwareVars(e.paths);
      for (const [i, { drive: d, taken: t, copy: disk, logicalSectorSize, physicalSectorSize }] of at.drives.entries()) {
        const header: StreamHeader = {
          format: STREAM_FORMAT, version: 1, virtualSize: disk.virtualSize, logicalSectorSize, physicalSectorSize,
          full: t.full, extents: await streamExtents(disk, t.extents, t.full), ...(i === 0 ? { config: e.config, ...(firmwareVars ? { firmwareVars } : {}) } : {}),
        };
        h.progress(50 + (i / at.drives.length) * 45, `Storing ${basename(d.path)} in the repository`);
        // A chain's later point that had to read everything says why (a first point is full by nature).
        const reason = t.full && point > 0 ? t.reason : undefined;
        const tags = [TAG, `backup:${backupId}`, `vm:${e.config.id}`, `vmname:${encodeURIComponent(e.config.name)}`, `chain:${chain.chainId}`,
          `point:${point}`, `drive:${d.id}`, `kind:${t.full ? 'full' : 'incremental'}`, `file:${encodeURIComponent(d.path)}`,
          `size:${disk.virtualSize}`, `changed:${t.bytes}`, `data:${dataBytes(header)}`, `consistency:${at.level === 'ApplicationConsistent' ? 'application' : 'crash'}`,
          `state:${e.state}`, `at:${Date.parse(out.CreationTime)}`, ...(reason ? [`reason:${encodeURIComponent(reason)}`] : [])];
        const summary = await repo.backupStream(`${d.id}.cbs`, tags, encodeStream(header, disk));
        stored.push(summary.snapshot_id);
        out.Drives.push({
          DriveId: d.id, Path: d.path, VirtualSize: disk.virtualSize, Kind: t.full ? 'Full' : 'Incremental', ChangedBytes: t.bytes, DataBytes: dataBytes(header),
          ...(reason ? { FullReason: reason } : {}), SnapshotId: summary.snapshot_id,
        });
        out.VirtualSize += disk.virtualSize;
        out.ChangedBytes += t.bytes;
        out.DataBytes += dataBytes(header);
        out.StoredBytes += summary.data_added;
      }
      // Stored: the chain moves on, then the trackers forget what this point holds.
      chains[repoPath] = { chainId: chain.chainId, point };
      await writeFileAtomic(this.chainsPath(e), JSON.stringify(chains, null, 2));
      await at.commit();
      if (o.keepLast !== undefined) {
        h.progress(96, `Keeping the last ${o.keepLast} points`);
        const r = await this.retain(repo, e.config.id, o.keepLast, join(e.paths.dir, 'backup-tmp'));
        out.Removed = r.removed;
        out.Rebased = r.rebased;
      }
      return out;
    } catch (err) {
      // Nothing of this point stays: the blocks it took are changed again for the next one.
      await at.restore();
      await repo.forget(stored).catch(() => undefined);
      throw err;
    } finally {
      await at.close();
    }
  }

  /** Get-VMBackup: the points in the repository (of one VM when `vmName` is given), oldest first. */
  async list(repository: string, vmName?: string): Promise<VmBackup[]> {
    const repo = await this.repository(repository, false);
    return backupsOf(repo.path, await repo.snapshots([TAG]), vmName);
  }

  private async find(repository: string, backupId: string): Promise<{ repo: ResticRepository; backup: VmBackup; all: ResticSnapshot[]; backups: VmBackup[] }> {
    const repo = await this.repository(repository, false);
    const all = await repo.snapshots([TAG]);
    const backups = backupsOf(repo.path, all);
    const hits = backups.filter((b) => b.BackupId.startsWith(backupId.toLowerCase()));
    const backup = hits.find((b) => b.BackupId === backupId.toLowerCase()) ?? hits[0];
    if (!backup) throw notFound(`no backup ${backupId} in ${repo.path}`, { repository: repo.path, backup: backupId });
    if (hits.length > 1 && backup.BackupId !== backupId.toLowerCase()) {
      throw new VmhostError('INVALID_ARGUMENT', `BackupId: ${backupId} names ${hits.length} backups in ${repo.path}; give more of it`, { param: 'BackupId' });
    }
    return { repo, backup, all, backups };
  }

  /**
   * The chain's snapshots `drive` of `backup` builds on: its last full point and the
   * incrementals after it, up to the backup's point; BACKUP_CHAIN_BROKEN when one is missing.
   */
  private steps(repo: ResticRepository, all: readonly ResticSnapshot[], backup: VmBackup, drive: VmBackupDrive): Array<{ s: ResticSnapshot; point: number }> {
    const mine = all.filter((s) => tagValue(s.tags, 'chain') === backup.ChainId && tagValue(s.tags, 'drive') === drive.DriveId)
      .map((s) => ({ s, point: Number(tagValue(s.tags, 'point')), full: tagValue(s.tags, 'kind') === 'full' }))
      .filter((x) => x.point <= backup.Point).sort((a, b) => a.point - b.point);
    const from = mine.findLastIndex((x) => x.full);
    const steps = from < 0 ? [] : mine.slice(from);
    if (steps.length === 0 || steps.some((x, i) => x.point !== steps[0]!.point + i) || steps.at(-1)!.point !== backup.Point) {
      throw new VmhostError('BACKUP_CHAIN_BROKEN', `backup ${backup.BackupId} of ${drive.Path}: the points it builds on are not all in ${repo.path} (have ${mine.map((x) => x.point).join(', ') || 'none'})`, { op: 'restore-backup', backup: backup.BackupId, drive: drive.DriveId });
    }
    return steps;
  }

  /**
   * The drive's disk at the backup's point, applied step by step into the disk `create` makes
   * from the first stream's header; resolves with that disk (open) and the point's own header.
   */
  private async build(repo: ResticRepository, all: readonly ResticSnapshot[], backup: VmBackup, drive: VmBackupDrive,
    create: (h: StreamHeader) => Promise<VirtualDisk>, progress: (step: number, of: number, point: number) => void): Promise<{ disk: VirtualDisk; header: StreamHeader; points: number }> {
    const steps = this.steps(repo, all, backup, drive);
    let disk: VirtualDisk | undefined;
    let header: StreamHeader | undefined;
    try {
      for (const [i, step] of steps.entries()) {
        progress(i, steps.length, step.point);
        header = await applyStream(repo.dump(step.s.id, `/${drive.DriveId}.cbs`), async (hd) => {
          if (disk) {
            if (hd.virtualSize !== disk.virtualSize) throw new VmhostError('BACKUP_STREAM_INVALID', `point ${step.point} of ${drive.Path} is ${hd.virtualSize} bytes, the disk ${disk.virtualSize}`, { op: 'restore-backup' });
            return disk;
          }
          disk = await create(hd);
          return disk;
        }, i === 0, `${drive.DriveId}.cbs of point ${step.point}`);
      }
      return { disk: disk!, header: header!, points: steps.length };
    } catch (e) {
      await disk?.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Restore-VMBackup: every drive of the point as a new dynamic VHDX in `destination` (named
   * after the drive's file), built from the drive's full point and the incrementals up to this
   * one, and the VM's config as the point holds it (undefined for points taken before configs
   * were stored). A stream restic cannot verify (a corrupted pack) fails with restic's error;
   * the partial file is removed, and so are the files restored before it.
   */
  async restore(repository: string, backupId: string, destination: string, h: JobHandle): Promise<{ backup: VmBackup; disks: RestoredDisk[]; config: VmConfig | undefined; firmwareVars: unknown }> {
    const { repo, backup, all } = await this.find(repository, backupId);
    const dest = resolve(destination);
    await mkdir(dest, { recursive: true });
    const out: RestoredDisk[] = [];
    let config: VmConfig | undefined;
    let firmwareVars: unknown;
    try {
      for (const [k, d] of backup.Drives.entries()) {
        const stem = basename(d.Path, extname(d.Path));
        const target = join(dest, `${backup.Drives.filter((x) => basename(x.Path, extname(x.Path)) === stem).length > 1 ? `${stem}-${d.DriveId.slice(0, 8)}` : stem}.vhdx`);
        try {
          const built = await this.build(repo, all, backup, d, async (hd) => {
            await createDiskFile(target, { format: 'VHDX', type: 'Dynamic', size: hd.virtualSize, logicalSectorSize: hd.logicalSectorSize as 512 | 4096, physicalSectorSize: hd.physicalSectorSize as 512 | 4096 });
            return openDiskFile(target);
          }, (i, n, point) => h.progress(((k + i / n) / backup.Drives.length) * 100, `Restoring ${basename(target)}: point ${point}`));
          await built.disk.flush();
          await built.disk.close();
          config ??= built.header.config as VmConfig | undefined;
          firmwareVars ??= built.header.firmwareVars;
          out.push({ DriveId: d.DriveId, SourcePath: d.Path, Path: target, VirtualSize: d.VirtualSize, BackupId: backup.BackupId, PointsApplied: built.points });
        } catch (e) {
          await rm(target, { force: true });
          throw e;
        }
      }
    } catch (e) {
      for (const r of out) await rm(r.Path, { force: true });
      throw e;
    }
    return { backup, disks: out, config, firmwareVars };
  }

  /**
   * Restore-VMBackup -VMName: the point's disks over the drives' own files (the VM off, without
   * checkpoints). Each is built beside its file first and renamed over it only once every drive
   * is built, so a failure leaves the VM's files as they were. The new files carry new
   * DataWriteGuids: the trackers make the VM's next backup full, with that reason.
   */
  async restoreOver(e: VmEntry, repository: string, backupId: string, h: JobHandle): Promise<RestoredDisk[]> {
    const { repo, backup, all } = await this.find(repository, backupId);
    const vm = e.config.name;
    if (backup.VMId !== e.config.id) throw new VmhostError('INVALID_ARGUMENT', `backup ${backup.BackupId} is of VM '${backup.VMName}' (${backup.VMId}), not of '${vm}': restore it with -NewVMName or -DestinationPath`, { param: 'VMName', vm });
    const drives = e.config.hardDrives;
    const missing = drives.filter((d) => !backup.Drives.some((x) => x.DriveId === d.id));
    if (missing.length > 0 || drives.length !== backup.Drives.length) {
      throw new VmhostError('INVALID_STATE', `VM '${vm}' has other hard drives than backup ${backup.BackupId} (${missing.map((d) => d.path).join(', ') || 'drives were removed'}): restore it with -NewVMName or -DestinationPath`, { vm });
    }
    const built: Array<{ tmp: string; path: string; r: RestoredDisk }> = [];
    let firmwareVars: unknown;
    try {
      for (const [k, d] of drives.entries()) {
        const bd = backup.Drives.find((x) => x.DriveId === d.id)!;
        const tmp = join(dirname(d.path), `.${basename(d.path)}.restore-${backup.BackupId.slice(0, 8)}.vhdx`);
        await rm(tmp, { force: true });
        built.push({ tmp, path: d.path, r: { DriveId: d.id, SourcePath: bd.Path, Path: d.path, VirtualSize: bd.VirtualSize, BackupId: backup.BackupId, PointsApplied: 0 } });
        const b = await this.build(repo, all, backup, bd, async (hd) => {
          await createDiskFile(tmp, { format: 'VHDX', type: 'Dynamic', size: hd.virtualSize, logicalSectorSize: hd.logicalSectorSize as 512 | 4096, physicalSectorSize: hd.physicalSectorSize as 512 | 4096 });
          return openDiskFile(tmp);
        }, (i, n, point) => h.progress(((k + i / n) / drives.length) * 95, `Restoring ${basename(d.path)}: point ${point}`));
        await b.disk.flush();
        await b.disk.close();
        firmwareVars ??= b.header.firmwareVars;
        built.at(-1)!.r.PointsApplied = b.points;
      }
    } catch (err) {
      for (const b of built) await rm(b.tmp, { force: true });
      throw err;
    }
    for (const b of built) await rename(b.tmp, b.path);
    // The firmware's variables go back with the disks they boot (a point without them leaves the VM's own).
    await writeFirmwareVars(e.paths, decodeFirmwareVars(firmwareVars, `backup ${backup.BackupId}`));
    return built.map((b) => b.r);
  }

  /**
   * -KeepLast: the VM's `keep` newest points in the repository stay, the rest go in one
   * forget + prune. A kept incremental whose chain's full point goes is rebased first: its
   * disk at that point, rebuilt in a sparse file in `tmpDir`, stored as a full stream.
   */
  private async retain(repo: ResticRepository, vmId: string, keep: number, tmpDir: string): Promise<{ removed: string[]; rebased: string[] }> {
    const all = await repo.snapshots([TAG]);
    const points = backupsOf(repo.path, all).filter((b) => b.VMId === vmId);
    if (points.length <= keep) return { removed: [], rebased: [] };
    const gone = points.slice(0, points.length - keep);
    const kept = points.slice(points.length - keep);
    const goneIds = new Set(gone.map((b) => b.BackupId));
    const forget = gone.flatMap((b) => b.Drives.map((d) => d.SnapshotId));
    const rebased: string[] = [];
    for (const b of kept) {
      // The oldest kept point of its chain, when points it builds on go.
      const first = kept.find((x) => x.ChainId === b.ChainId) === b;
      if (!first || !gone.some((x) => x.ChainId === b.ChainId && x.Point < b.Point)) continue;
      for (const d of b.Drives.filter((x) => x.Kind === 'Incremental')) forget.push(await this.rebase(repo, all, b, d, tmpDir));
      rebased.push(b.BackupId);
    }
    await repo.forget(forget);
    return { removed: [...goneIds], rebased };
  }

  /** Store drive `d` of point `b` again as a full stream with the same tags; the id of the incremental snapshot it replaces. */
  private async rebase(repo: ResticRepository, all: readonly ResticSnapshot[], b: VmBackup, d: VmBackupDrive, tmpDir: string): Promise<string> {
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const path = join(tmpDir, `rebase-${d.DriveId}.img`);
    await rm(path, { force: true });
    const built = await this.build(repo, all, b, d, async (hd) => {
      const fh = await open(path, 'wx', 0o600);
      await fh.truncate(hd.virtualSize);
      await fh.close();
      return RawDisk.open(await NodeFile.open(path));
    }, () => undefined);
    try {
      const old = all.find((s) => s.id === d.SnapshotId)!;
      const header: StreamHeader = { ...built.header, full: true, extents: await streamExtents(built.disk, [{ offset: 0, length: built.disk.virtualSize }], true) };
      const tags = (old.tags ?? []).map((t) => {
        if (t.startsWith('kind:')) return 'kind:full';
        if (t.startsWith('changed:')) return `changed:${built.disk.virtualSize}`;
        if (t.startsWith('data:')) return `data:${dataBytes(header)}`;
        return t;
      });
      await repo.backupStream(`${d.DriveId}.cbs`, [...tags, 'rebased:1'], encodeStream(header, built.disk));
      return d.SnapshotId;
    } finally {
      await built.disk.close().catch(() => undefined);
      await rm(path, { force: true });
    }
  }

  /**
   * Remove-VMBackup: the point and every later point of its chain (they build on it), then the
   * repository is pruned. The VM's next backup into that repository starts a new chain (full)
   * when its chain lost its last point.
   */
  async remove(repository: string, backupId: string, entry: (vmId: string) => VmEntry | undefined): Promise<VmBackup[]> {
    const { repo, backup, backups } = await this.find(repository, backupId);
    const gone = backups.filter((b) => b.ChainId === backup.ChainId && b.Point >= backup.Point);
    await repo.forget(gone.flatMap((b) => b.Drives.map((d) => d.SnapshotId)));
    const e = entry(backup.VMId);
    if (e) {
      const chains = await this.chains(e);
      if (chains[repo.path]?.chainId === backup.ChainId) {
        delete chains[repo.path];
        await writeFileAtomic(this.chainsPath(e), JSON.stringify(chains, null, 2));
      }
    }
    return gone;
  }
}

/** The backup points the snapshots make up (of one VM when `vmName` is given), oldest first. */
function backupsOf(repository: string, snaps: readonly ResticSnapshot[], vmName?: string): VmBackup[] {
  const byId = new Map<string, VmBackup>();
  for (const s of snaps) {
    const id = tagValue(s.tags, 'backup');
    const name = tagValue(s.tags, 'vmname') ?? '';
    if (id === undefined || (vmName !== undefined && name.toLowerCase() !== vmName.toLowerCase())) continue;
    const drive = snapshotDrive(s);
    let b = byId.get(id);
    if (!b) {
      b = {
        BackupId: id, VMId: tagValue(s.tags, 'vm') ?? '', VMName: name, Repository: repository, ChainId: tagValue(s.tags, 'chain') ?? '',
        // The point's own time: a snapshot rebased by -KeepLast is newer than the point it holds.
        Point: Number(tagValue(s.tags, 'point')), Kind: 'Full', CreationTime: tagValue(s.tags, 'at') ? new Date(Number(tagValue(s.tags, 'at'))).toISOString() : s.time,
        ConsistencyLevel: tagValue(s.tags, 'consistency') === 'application' ? 'ApplicationConsistent' : 'CrashConsistent', VMState: tagValue(s.tags, 'state') ?? 'Running',
        VirtualSize: 0, ChangedBytes: 0, DataBytes: 0, StoredBytes: 0, Drives: [],
      };
      byId.set(id, b);
    }
    b.Drives.push(drive);
    b.VirtualSize += drive.VirtualSize;
    b.ChangedBytes += drive.ChangedBytes;
    b.DataBytes += drive.DataBytes;
    if (drive.Kind === 'Incremental') b.Kind = 'Incremental';
  }
  return [...byId.values()].sort((a, b) => a.CreationTime.localeCompare(b.CreationTime));
}

function snapshotDrive(s: ResticSnapshot): VmBackupDrive {
  const full = tagValue(s.tags, 'kind') === 'full';
  return {
    DriveId: tagValue(s.tags, 'drive') ?? '', Path: tagValue(s.tags, 'file') ?? '', VirtualSize: Number(tagValue(s.tags, 'size') ?? 0), Kind: full ? 'Full' : 'Incremental',
    ChangedBytes: Number(tagValue(s.tags, 'changed') ?? 0), DataBytes: Number(tagValue(s.tags, 'data') ?? 0),
    ...(tagValue(s.tags, 'reason') ? { FullReason: tagValue(s.tags, 'reason') } : {}), SnapshotId: s.id,
  };
}

