// Incremental backup of running VMs (issue 13; a vmhost extension in Hyper-V's verb-noun style:
// Start-/Get-/Restore-/Remove-VMBackup). A backup point of a VM is, per hard drive, one restic
// snapshot holding a changed-blocks stream (backup-stream.ts). The first point of a chain (per
// VM and repository) is full: the disk's data. Each later one holds only the blocks the drive's
// change tracker (storage/change-tracking) saw written since the point before, so a backup
// reads only changed blocks. All drives are read at one moment by the block server's
// point-in-time copy (the tracker's take runs in the same pause): the point is crash-consistent,
// as after a power cut at that moment — the guest agent has no fsfreeze yet. The copy lands in a
// sparse temporary file beside the VM (only the changed blocks take space), which is streamed to
// restic and removed. The take is committed only when every drive's snapshot is stored;
// otherwise it is restored, so the next point still carries those blocks.
//
// The repository's password is a random key this host creates with the repository and keeps in
// DIR/backup-keys/ (0600, like the host's other secrets); restoring elsewhere needs that file.
// Snapshot tags carry what Get-VMBackup shows: backup id, VM id and name, chain, point, drive.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { createDiskFile, openDiskFile } from '../storage/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { applyStream, dataBytes, encodeStream, streamExtents, STREAM_FORMAT, type StreamHeader } from './backup-stream.ts';
import { takeConsistentPoint } from './consistent-point.ts';
import type { JobHandle } from './jobs.ts';
import { ResticRepository, type ResticSnapshot } from './restic.ts';
import type { VmEntry } from './vm-entry.ts';
import type { VmStorage } from './vm-storage.ts';

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
  Consistency: 'CrashConsistent';
  VirtualSize: number;
  ChangedBytes: number;
  DataBytes: number;
  /** New bytes the repository stored for this point (deduplicated); known when the point is taken, 0 when listed. */
  StoredBytes: number;
  Drives: VmBackupDrive[];
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
   * yet). The VM runs (or is paused) and its drives are served.
   */
  async backup(e: VmEntry, destination: string, h: JobHandle): Promise<VmBackup> {
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
    h.progress(5, 'Taking the point in time');
    // A consumer without its chain record (the record lost, or Remove-VMBackup cut the chain) starts over, full.
    const at = await takeConsistentPoint(e, this.storage, {
      consumer, tmpDir: join(e.paths.dir, 'backup-tmp'), fresh: !known,
      onProgress: (f) => h.progress(5 + f * 45, 'Reading the changed blocks at the point in time'),
    });
    const stored: string[] = [];
    try {
      const out: VmBackup = {
        BackupId: backupId, VMId: e.config.id, VMName: e.config.name, Repository: repoPath, ChainId: chain.chainId, Point: point,
        Kind: at.drives.every((x) => x.taken.full) ? 'Full' : 'Incremental', CreationTime: new Date().toISOString(), Consistency: 'CrashConsistent',
        VirtualSize: 0, ChangedBytes: 0, DataBytes: 0, StoredBytes: 0, Drives: [],
      };
      for (const [i, { drive: d, taken: t, copy: disk, logicalSectorSize, physicalSectorSize }] of at.drives.entries()) {
        const header: StreamHeader = {
          format: STREAM_FORMAT, version: 1, virtualSize: disk.virtualSize, logicalSectorSize, physicalSectorSize,
          full: t.full, extents: await streamExtents(disk, t.extents, t.full),
        };
        h.progress(50 + (i / at.drives.length) * 45, `Storing ${basename(d.path)} in the repository`);
        const tags = [TAG, `backup:${backupId}`, `vm:${e.config.id}`, `vmname:${encodeURIComponent(e.config.name)}`, `chain:${chain.chainId}`,
          `point:${point}`, `drive:${d.id}`, `kind:${t.full ? 'full' : 'incremental'}`, `file:${encodeURIComponent(d.path)}`,
          `size:${disk.virtualSize}`, `changed:${t.bytes}`, `data:${dataBytes(header)}`];
        const summary = await repo.backupStream(`${d.id}.cbs`, tags, encodeStream(header, disk));
        stored.push(summary.snapshot_id);
        out.Drives.push({ DriveId: d.id, Path: d.path, VirtualSize: disk.virtualSize, Kind: t.full ? 'Full' : 'Incremental', ChangedBytes: t.bytes, DataBytes: dataBytes(header), SnapshotId: summary.snapshot_id });
        out.VirtualSize += disk.virtualSize;
        out.ChangedBytes += t.bytes;
        out.DataBytes += dataBytes(header);
        out.StoredBytes += summary.data_added;
      }
      // Stored: the chain moves on, then the trackers forget what this point holds.
      chains[repoPath] = { chainId: chain.chainId, point };
      await writeFileAtomic(this.chainsPath(e), JSON.stringify(chains, null, 2));
      await at.commit();
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
   * Restore-VMBackup: every drive of the point as a new dynamic VHDX in `destination` (named
   * after the drive's file), built from the drive's full point and the incrementals up to this
   * one. A stream restic cannot verify (a corrupted pack) fails with restic's error; the
   * partial file is removed.
   */
  async restore(repository: string, backupId: string, destination: string, h: JobHandle): Promise<RestoredDisk[]> {
    const { repo, backup, all } = await this.find(repository, backupId);
    const dest = resolve(destination);
    await mkdir(dest, { recursive: true });
    const out: RestoredDisk[] = [];
    for (const [k, d] of backup.Drives.entries()) {
      const mine = all.filter((s) => tagValue(s.tags, 'chain') === backup.ChainId && tagValue(s.tags, 'drive') === d.DriveId)
        .map((s) => ({ s, point: Number(tagValue(s.tags, 'point')), full: tagValue(s.tags, 'kind') === 'full' }))
        .filter((x) => x.point <= backup.Point).sort((a, b) => a.point - b.point);
      const from = mine.findLastIndex((x) => x.full);
      const steps = from < 0 ? [] : mine.slice(from);
      if (steps.length === 0 || steps.some((x, i) => x.point !== steps[0]!.point + i) || steps.at(-1)!.point !== backup.Point) {
        throw new VmhostError('BACKUP_CHAIN_BROKEN', `backup ${backup.BackupId} of ${d.Path}: the points it builds on are not all in ${repo.path} (have ${mine.map((x) => x.point).join(', ') || 'none'})`, { op: 'restore-backup', backup: backup.BackupId, drive: d.DriveId });
      }
      const stem = basename(d.Path, extname(d.Path));
      const target = join(dest, `${backup.Drives.filter((x) => basename(x.Path, extname(x.Path)) === stem).length > 1 ? `${stem}-${d.DriveId.slice(0, 8)}` : stem}.vhdx`);
      let disk: Awaited<ReturnType<typeof openDiskFile>> | undefined;
      try {
        for (const [i, step] of steps.entries()) {
          h.progress(((k + i / steps.length) / backup.Drives.length) * 100, `Restoring ${basename(target)}: point ${step.point}`);
          await applyStream(repo.dump(step.s.id, `/${d.DriveId}.cbs`), async (hd) => {
            if (disk) {
              if (hd.virtualSize !== disk.virtualSize) throw new VmhostError('BACKUP_STREAM_INVALID', `point ${step.point} of ${d.Path} is ${hd.virtualSize} bytes, the disk ${disk.virtualSize}`, { op: 'restore-backup' });
              return disk;
            }
            await createDiskFile(target, { format: 'VHDX', type: 'Dynamic', size: hd.virtualSize, logicalSectorSize: hd.logicalSectorSize as 512 | 4096, physicalSectorSize: hd.physicalSectorSize as 512 | 4096 });
            disk = await openDiskFile(target);
            return disk;
          }, i === 0, `${d.DriveId}.cbs of point ${step.point}`);
        }
        await disk!.flush();
        await disk!.close();
        disk = undefined;
      } catch (e) {
        await disk?.close().catch(() => undefined);
        await rm(target, { force: true });
        throw e;
      }
      out.push({ DriveId: d.DriveId, SourcePath: d.Path, Path: target, VirtualSize: d.VirtualSize, BackupId: backup.BackupId, PointsApplied: steps.length });
    }
    return out;
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
        Point: Number(tagValue(s.tags, 'point')), Kind: 'Full', CreationTime: s.time, Consistency: 'CrashConsistent',
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
    ChangedBytes: Number(tagValue(s.tags, 'changed') ?? 0), DataBytes: Number(tagValue(s.tags, 'data') ?? 0), SnapshotId: s.id,
  };
}

