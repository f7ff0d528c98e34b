// One consistent point of all of a running VM's hard drives, with their changed blocks: the
// block server's point-in-time copy holds every drive's pipeline idle for one instant, and in
// that pause each drive's change tracker `take`s what its consumer has not yet seen. The
// copy of those blocks (the whole disk's data for a full take) lands in a sparse temporary
// raw file per drive, so the caller reads the point at leisure while the guest runs on. The
// caller then `commit`s (the consumer forgets what the point held) once the point is stored
// somewhere durable, or `restore`s (those blocks stay changed for the next point). The pause
// may run inside a guest freeze (`pause`, guest-freeze.ts): an application-consistent point.
// An off or saved VM's point is its files as they are (`takeFilePoint`): the same shape, read
// directly, its tracker files opened beside them. Backup (vm-backup.ts, consumer
// `backup:<chain>`) and Replica (src/replica, consumer `replica`) stand on this.
import { mkdir, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NodeFile, type VirtualDisk } from '../blockio/index.ts';
import { VmhostError } from '../common/index.ts';
import { ChangeTracker, RawDisk, openDiskFile, type TakenChanges } from '../storage/index.ts';
import type { HardDrive } from './drives.ts';
import type { ConsistencyLevel, FreezeResult } from './guest-freeze.ts';
import type { VmEntry } from './vm-entry.ts';
import { VmStorage } from './vm-storage.ts';

export interface PointDrive {
  drive: HardDrive;
  /** What the tracker took: the changed extents (the disk's data ranges when `full`). */
  taken: TakenChanges;
  /** The blocks at the point (read them only inside `taken.extents`); closed by `close`. */
  copy: VirtualDisk;
  logicalSectorSize: number;
  physicalSectorSize: number;
}

export interface ConsistentPoint {
  readonly at: Date;
  readonly drives: PointDrive[];
  /** ApplicationConsistent when the pause ran inside a guest freeze the guest confirmed. */
  readonly level: ConsistencyLevel;
  /** The guest mount points that were frozen. */
  readonly frozen: string[];
  /** Why the point is only crash-consistent, when known. */
  readonly reason?: string;
  /** The point is stored: every drive's consumer forgets the blocks it held. */
  commit(): Promise<void>;
  /** The point is lost: its blocks stay changed for the consumer's next point. */
  restore(): Promise<void>;
  /** Remove the temporary copies (after commit or restore). */
  close(): Promise<void>;
}

export interface PointOptions {
  /** The tracker consumer (`replica`, `backup:<chain>`). */
  consumer: string;
  /** Folder for the temporary copies (emptied first, removed by `close`). */
  tmpDir: string;
  /** Start over: the consumer's bitmap is dropped, so the point is full. */
  fresh: boolean;
  /** Copy progress, 0..1. */
  onProgress?: (fraction: number) => void;
  /** Drives left out (Enable-VMReplication -ExcludedVhdPath). */
  exclude?: (d: HardDrive) => boolean;
  /** Runs the pause (the copy's start and the takes) inside a guest freeze: Host.atConsistentPoint. */
  pause?: <T>(take: () => Promise<T>) => Promise<FreezeResult<T>>;
}

/** The drives a point covers: every hard drive but the excluded ones, at least one. */
function pointDrives(e: VmEntry, o: Pick<PointOptions, 'exclude'>): HardDrive[] {
  const drives = e.config.hardDrives.filter((d) => !o.exclude?.(d));
  if (drives.length === 0) throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' has no hard drive to copy`, { vm: e.config.name });
  return drives;
}

/** What both kinds of point share: commit and restore over the drives' trackers, and the undo when taking fails. */
class Takes {
  readonly taken: Array<TakenChanges | undefined> = [];
  constructor(readonly trackers: ChangeTracker[], private readonly consumer: string, readonly close: () => Promise<void>) {}

  readonly commit = async (): Promise<void> => { for (const t of this.trackers) await t.commit(this.consumer); };
  readonly restore = async (): Promise<void> => {
    for (const [i, t] of this.trackers.entries()) if (this.taken[i]) await t.restore(this.consumer).catch(() => undefined);
  };

  /** Build the point; on any failure the takes are restored and the copies closed. */
  async point(build: () => Promise<Omit<ConsistentPoint, 'commit' | 'restore' | 'close'>>): Promise<ConsistentPoint> {
    try {
      return { ...(await build()), commit: this.commit, restore: this.restore, close: this.close };
    } catch (err) {
      await this.restore();
      await this.close();
      throw err;
    }
  }
}

/** Take the point: the VM runs (or is paused) and its drives are served. */
export async function takeConsistentPoint(e: VmEntry, storage: VmStorage, o: PointOptions): Promise<ConsistentPoint> {
  const drives = pointDrives(e, o);
  const trackers: ChangeTracker[] = [];
  for (const d of drives) {
    const t = await storage.trackDrive(d);
    if (o.fresh) await t.removeConsumer(o.consumer);
    await t.addConsumer(o.consumer);
    trackers.push(t);
  }
  await rm(o.tmpDir, { recursive: true, force: true });
  await mkdir(o.tmpDir, { recursive: true, mode: 0o700 });
  const copies: RawDisk[] = [];
  const takes = new Takes(trackers, o.consumer, async () => {
    for (const c of copies) await c.close().catch(() => undefined);
    await rm(o.tmpDir, { recursive: true, force: true });
  });
  return takes.point(async () => {
    for (const d of drives) {
      const path = join(o.tmpDir, `${d.id}.img`);
      const fh = await open(path, 'wx', 0o600);
      await fh.truncate(storage.server.get(VmStorage.exportName(d))!.disk.virtualSize);
      await fh.close();
      copies.push(await RawDisk.open(await NodeFile.open(path)));
    }
    let at = new Date();
    const start = () => storage.server.startPointInTimeCopy(drives.map((d, i) => ({
      exportName: VmStorage.exportName(d),
      target: copies[i]!,
      // With the disks idle: the changed blocks and the copy's moment are the same instant.
      ranges: async () => {
        at = new Date();
        return (takes.taken[i] = await trackers[i]!.take(o.consumer)).extents;
      },
    })));
    const paused = o.pause ? await o.pause(start) : { value: await start(), level: 'CrashConsistent' as const, frozen: [] };
    const copy = paused.value;
    const timer = o.onProgress && setInterval(() => {
      const p = copy.progress();
      if (p.totalBytes > 0) o.onProgress!(p.copiedBytes / p.totalBytes);
    }, 500);
    try {
      await copy.done;
    } finally {
      clearInterval(timer);
    }
    return {
      at,
      level: paused.level,
      frozen: paused.frozen,
      ...(paused.reason !== undefined ? { reason: paused.reason } : {}),
      drives: drives.map((d, i) => {
        const served = storage.server.get(VmStorage.exportName(d))!.disk;
        return { drive: d, taken: takes.taken[i]!, copy: copies[i]!, logicalSectorSize: served.logicalSectorSize, physicalSectorSize: served.physicalSectorSize };
      }),
    };
  });
}

/**
 * An off or saved VM's point: its drives' files as they are (nothing writes them while the
 * caller holds the VM's lock), read directly, with the changes their tracker files (opened
 * here, beside where a serve keeps them) hold for the consumer. `close` leaves the tracker
 * files whole and closed, so the VM may start right after.
 */
export async function takeFilePoint(e: VmEntry, storage: VmStorage, o: Pick<PointOptions, 'consumer' | 'fresh' | 'exclude'>): Promise<ConsistentPoint> {
  const drives = pointDrives(e, o);
  const disks: VirtualDisk[] = [];
  const trackers: ChangeTracker[] = [];
  const takes = new Takes(trackers, o.consumer, async () => {
    for (const t of trackers) {
      await t.settled().catch(() => undefined);
      t.close();
    }
    for (const d of disks) await d.close().catch(() => undefined);
  });
  return takes.point(async () => {
    for (const d of drives) {
      const disk = await openDiskFile(d.path, { readOnly: true });
      disks.push(disk);
      await mkdir(dirname(storage.trackerPath(d)), { recursive: true, mode: 0o700 });
      const t = await ChangeTracker.open(disk, storage.trackerPath(d));
      trackers.push(t);
      if (o.fresh) await t.removeConsumer(o.consumer);
      await t.addConsumer(o.consumer);
    }
    for (const t of trackers) takes.taken.push(await t.take(o.consumer));
    return {
      at: new Date(),
      level: 'CrashConsistent' as const,
      frozen: [],
      reason: `the VM was ${e.state}: its disks as it left them`,
      drives: drives.map((d, i) => ({ drive: d, taken: takes.taken[i]!, copy: disks[i]!, logicalSectorSize: disks[i]!.logicalSectorSize, physicalSectorSize: disks[i]!.physicalSectorSize })),
    };
  });
}
