// Change tracking (issue 13): a pipeline stage that keeps, per named consumer ("replica",
// "backup:<chain id>"), the blocks of the virtual disk written, trimmed or zeroed since that
// consumer last took them. The dirty set is of the virtual disk, not of a file: a checkpoint's
// new leaf or a live merge's swap keeps it (`swapped`).
//
// Write-ahead: a write, trim or write-zeroes waits until the blocks it touches are durable in
// the tracker's file (journal.ts) before it reaches the disk, so no acknowledged write is ever
// missing after a SIGKILL or a power cut. Blocks every consumer already has dirty pass at
// once; new ones are batched: one synchronous append covers every block that arrived while the
// previous sync ran, so QD32 writes into the same blocks cost one sync per new batch of blocks,
// not one per write.
//
// Invalidation: the file records the VHDX DataWriteGuid the disk has, and the one the session's
// first write will install (set on the disk with presetDataWriteGuid before any write), so a
// crash at any moment leaves the disk at a GUID the file knows. A disk whose GUID the file does
// not know was written by something else (another tool, an older copy restored): every
// consumer then needs a full copy. Formats without a DataWriteGuid (VHD, raw) cannot prove
// that, so after a reopen their consumers copy in full too.
//
// Granularity: 64 KiB blocks. A 4 KiB random write then dirties 64 KiB (what a replica or
// backup copies), while the bitmap of a 1 TiB disk is 2 MiB per consumer and the journal's
// runs stay short; 4 KiB would be 32 MiB per consumer per TiB, 1 MiB would copy 256× a 4 KiB
// write. It is Hyper-V RCT's granularity order too.
import type { VirtualDisk } from '../../blockio/virtual-disk.ts';
import { VmhostError } from '../../common/errors.ts';
import { newGuid } from '../../vhd/guid.ts';
import type { VhdxDisk } from '../../vhd/index.ts';
import { isVhdx } from '../disk-info.ts';
import type { IoRequest, IoResult, Next, Stage } from '../pipeline.ts';
import { Bitmap, type Run } from './bitmap.ts';
import { Journal, applyRecord, type JournalRecord, type TrackerState } from './journal.ts';

export const TRACKING_BLOCK = 64 * 1024;
/** Appended bytes past which the file is rewritten as a snapshot. */
const REWRITE_AFTER = 4 << 20;

export interface ChangedExtent {
  offset: number;
  length: number;
}

export interface TakenChanges {
  consumer: string;
  /** Everything must be copied (new consumer, disk changed outside the block server, resize). */
  full: boolean;
  /** Why `full`, when it is. */
  reason?: string;
  blockSize: number;
  /** The changed byte ranges (the whole disk when `full`), in order, clipped to the disk. */
  extents: ChangedExtent[];
  /** Sum of the extents' lengths. */
  bytes: number;
}

export interface ConsumerStatus {
  name: string;
  full: boolean;
  dirtyBytes: number;
  /** A take not yet committed or restored. */
  taking: boolean;
}

interface Batch {
  runs: Run[];
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function normGuid(g: string): string {
  return g.replace(/[{}]/g, '').toLowerCase();
}

export class ChangeTracker implements Stage {
  readonly name = 'change-tracking';
  /** Blocks every consumer has dirty, durably (a write there passes at once). */
  private covered: Bitmap;
  /** `covered` plus blocks in a batch being or to be synced. */
  private scheduled: Bitmap;
  private next: Batch | undefined;
  private syncing: Batch | undefined;
  /** Every journal operation, in order (appends, rewrites). */
  private io: Promise<unknown> = Promise.resolve();
  private disk: VirtualDisk;
  /** Why consumers were made full at open (the disk changed outside the block server). */
  private invalidated: string | undefined;
  /** The file failed and was removed: consumers gone, writes pass. */
  private lost = false;
  /** Syncs of the journal's write-ahead batches (the benchmark's and the tests' count). */
  syncs = 0;

  private constructor(private readonly journal: Journal, private readonly state: TrackerState, disk: VirtualDisk) {
    this.disk = disk;
    this.covered = new Bitmap(state.blocks);
    this.scheduled = new Bitmap(state.blocks);
    this.recompute();
  }

  /**
   * Open (or create) the tracker file at `path` for `disk`, before the disk serves any write.
   * Consumers in the file survive; if the disk's DataWriteGuid is not one the file knows, each
   * of them needs a full copy. The disk is told the GUID its first write installs.
   */
  static async open(disk: VirtualDisk, path: string, blockSize = TRACKING_BLOCK): Promise<ChangeTracker> {
    if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 4096) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the tracking block size must be a power of two ≥ 4096, not ${blockSize}`, { op: 'change-tracking', path });
    }
    const blocks = Math.ceil(disk.virtualSize / blockSize);
    const read = await Journal.read(path, blockSize, blocks);
    const state: TrackerState = read ?? { blockSize, blocks, guids: [], consumers: new Map() };
    const id = identity(disk);
    let invalidated: string | undefined;
    if (read && state.consumers.size > 0 && (id.current === undefined || !state.guids.includes(id.current))) {
      invalidated = id.current === undefined
        ? `${disk.format} disks have no DataWriteGuid: a reopened disk may have been changed outside the block server`
        : `the disk's DataWriteGuid ${id.current} is not one the tracker recorded (${state.guids.join(', ') || 'none'}): it was written outside the block server`;
      for (const c of state.consumers.values()) c.full = true;
    }
    state.guids = id.guids;
    const journal = await Journal.create(path, state);
    const t = new ChangeTracker(journal, state, disk);
    t.invalidated = invalidated;
    return t;
  }

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    if ((req.kind !== 'write' && req.kind !== 'trim' && req.kind !== 'write-zeroes') || req.length === 0 || this.lost || this.state.consumers.size === 0) return next(req);
    const first = Math.floor(req.offset / this.state.blockSize);
    const last = Math.min(this.state.blocks - 1, Math.floor((req.offset + req.length - 1) / this.state.blockSize));
    if (this.covered.covers(first, last)) return next(req);
    return this.mark(first, last).then(() => next(req));
  }

  /** Reads never change the dirty set: zero reads may skip the stage. */
  passesNow(): boolean {
    return true;
  }

  /** Blocks [first, last] durable in the file (and in every consumer's bitmap) when this resolves. */
  private mark(first: number, last: number): Promise<void> {
    let runStart = -1;
    const runs: Run[] = [];
    for (let b = first; b <= last + 1; b++) {
      const fresh = b <= last && !this.scheduled.has(b);
      if (fresh) {
        this.scheduled.set(b);
        if (runStart < 0) runStart = b;
      } else if (runStart >= 0) {
        runs.push([runStart, b - runStart]);
        runStart = -1;
      }
    }
    if (runs.length === 0) return (this.next ?? this.syncing)?.done ?? Promise.resolve();
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      this.next = { runs: [], done, resolve, reject };
      const batch = this.next;
      // Runs after the batch in sync (if any): everything marked meanwhile joins this one.
      this.io = this.io.then(() => this.syncBatch(batch));
    }
    this.next.runs.push(...runs);
    return this.next.done;
  }

  private async syncBatch(batch: Batch): Promise<void> {
    this.next = this.next === batch ? undefined : this.next;
    this.syncing = batch;
    try {
      if (this.lost) { batch.resolve(); return; }
      const rec: JournalRecord = { m: batch.runs };
      await this.journal.append([rec]);
      this.syncs++;
      applyRecord(this.state, rec);
      this.covered.setRuns(batch.runs);
      batch.resolve();
      // Marks stop once every block is dirty, but an epoch of scattered writes can still grow the file: fold it.
      if (this.journal.appendedBytes > REWRITE_AFTER) await this.journal.rewrite(this.state).catch((e: unknown) => this.fail(e));
    } catch (e) {
      await this.fail(e);
      if (this.lost) batch.resolve();
      else batch.reject(e);
      this.syncing = undefined;
      // The batch's blocks are not durable: writes there must mark again.
      this.recompute();
    } finally {
      this.syncing = undefined;
    }
  }

  /**
   * The file cannot be written: it is removed, so a restart knows no consumer (each copies in
   * full next time) and writes go on untracked. If even the removal fails, writes that need a
   * mark fail (STORAGE_TRACKING_FAILED): acknowledging them would leave a file that lies.
   */
  private async fail(_e: unknown): Promise<void> {
    try {
      await this.journal.discard();
    } catch {
      return;
    }
    this.lost = true;
    this.state.consumers.clear();
    this.recompute();
  }

  /** Run a journal operation after every one queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.io.then(fn);
    this.io = p.catch(() => undefined);
    return p;
  }

  private async record(rec: JournalRecord): Promise<void> {
    if (this.lost) throw new VmhostError('STORAGE_TRACKING_FAILED', `change tracking of this disk stopped after its file failed: every consumer copies in full`, { op: 'change-tracking', path: this.journal.path });
    await this.journal.append([rec]);
    applyRecord(this.state, rec);
    this.recompute();
    if (this.journal.appendedBytes > REWRITE_AFTER) await this.journal.rewrite(this.state);
  }

  private recompute(): void {
    const all = new Bitmap(this.state.blocks);
    all.fill();
    for (const c of this.state.consumers.values()) if (!c.full) all.and(c.dirty);
    this.covered = all;
    const scheduled = all.copy();
    for (const b of [this.syncing, this.next]) if (b) scheduled.setRuns(b.runs);
    this.scheduled = scheduled;
  }

  private need(name: string): NonNullable<ReturnType<TrackerState['consumers']['get']>> {
    const c = this.state.consumers.get(name);
    if (!c) throw new VmhostError('STORAGE_TRACKING_NO_CONSUMER', `change tracking has no consumer ${name}${this.lost ? ' (its file failed and was removed)' : ''}: its next copy is a full one`, { op: 'change-tracking', consumer: name });
    return c;
  }

  get blockSize(): number {
    return this.state.blockSize;
  }

  /** Why the consumers were made full when the tracker opened, if they were. */
  get invalidation(): string | undefined {
    return this.invalidated;
  }

  consumers(): ConsumerStatus[] {
    return [...this.state.consumers].map(([name, c]) => ({
      name, full: c.full, dirtyBytes: c.full ? this.disk.virtualSize : Math.min(this.disk.virtualSize, c.dirty.count() * this.state.blockSize), taking: c.taken !== undefined,
    }));
  }

  /** Register a consumer; its first take is full. Registering one that exists changes nothing. */
  addConsumer(name: string): Promise<void> {
    if (!/^[A-Za-z0-9:._-]{1,200}$/.test(name)) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `consumer name "${name}" may only use letters, digits, ':', '.', '_' and '-'`, { op: 'change-tracking', consumer: name });
    return this.serial(async () => {
      if (!this.state.consumers.has(name)) await this.record({ c: name });
    });
  }

  removeConsumer(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.state.consumers.has(name)) await this.record({ x: name });
    });
  }

  /**
   * The blocks changed since `name`'s last take, and a new epoch for it. Call it with the disk
   * idle (BlockServer.takeChanges pauses the pipeline), so the extents and the disk's content
   * are of one moment. The take stays pending until `commit` (the consumer has what it read)
   * or `restore` (it failed: the extents are dirty again); a crash before either restores it.
   */
  take(name: string): Promise<TakenChanges> {
    return this.serial(async () => {
      const c = this.need(name);
      if (c.taken) throw new VmhostError('STORAGE_TRACKING_BUSY', `consumer ${name} has taken changes it has not committed or restored`, { op: 'change-tracking', consumer: name });
      const full = c.full;
      const runs = full ? [[0, this.state.blocks] as Run] : c.dirty.runs();
      await this.record({ t: name });
      const size = this.disk.virtualSize;
      const bs = this.state.blockSize;
      const extents = runs.map(([f, n]) => ({ offset: f * bs, length: Math.min(size, (f + n) * bs) - f * bs }));
      const out: TakenChanges = { consumer: name, full, blockSize: bs, extents, bytes: extents.reduce((a, e) => a + e.length, 0) };
      if (full) out.reason = this.invalidated ?? 'first copy of this consumer';
      return out;
    });
  }

  /** The consumer has durably used what it took. */
  commit(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.need(name).taken) await this.record({ k: name });
    });
  }

  /** The consumer failed: what it took is dirty again. */
  restore(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.need(name).taken) await this.record({ r: name });
    });
  }

  /**
   * The pipeline's disk was replaced (a checkpoint's new leaf, a live merge's result): the file
   * learns its DataWriteGuids before any write reaches it. The dirty sets stay.
   */
  swapped(disk: VirtualDisk): Promise<void> {
    return this.serial(async () => {
      this.disk = disk;
      if (this.lost) return;
      const id = identity(disk);
      try {
        await this.record({ g: id.guids });
      } catch (e) {
        await this.fail(e);
      }
    });
  }

  /** Wait for every journal operation queued so far. */
  async settled(): Promise<void> {
    await this.io;
  }

  close(): void {
    void this.io.then(() => this.journal.close()).catch(() => undefined);
  }
}

/**
 * The GUIDs that say "this disk as the tracker knows it": a VHDX leaf's DataWriteGuid now and,
 * when its session has not written yet, the one its first write will install — set on the disk
 * here, before any write reaches it. (Set before the file records it: if that record fails the
 * next open finds a GUID it does not know and copies in full, the safe side.) Other formats have none.
 */
function identity(disk: VirtualDisk): { current: string | undefined; guids: string[] } {
  if (!isVhdx(disk)) return { current: undefined, guids: [] };
  const leaf: VhdxDisk = disk;
  const current = normGuid(leaf.dataWriteGuid);
  const next = newGuid();
  try {
    leaf.presetDataWriteGuid(next);
  } catch {
    // The session has written already: its GUID is final and `current` is enough.
    return { current, guids: [current] };
  }
  return { current, guids: [current, normGuid(next)] };
}
