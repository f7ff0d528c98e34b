// A point-in-time copy of served disks while the guest keeps reading and writing: copy before
// write, as QEMU's backup job with sync=full does. The exports' pipelines are held idle together
// (Pipeline.whileIdle) while a stage goes in on each: that instant is the copy's moment, the same
// for every disk of the set. A background walker then copies the disk chunk by chunk into the
// target; a guest write, trim or write-zeroes to a chunk not yet copied first copies that
// chunk's old content. A chunk is copied once, by whoever comes first, the other waits on that
// copy (the per-chunk lock); reads pass untouched. What the copy fails on (the target, a read
// of the source) fails the copy, never the guest's write: those waiting are let go, the stages
// leave. Live export (issue 10) and backup (issue 13) stand on this.
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { Pipeline, type IoRequest, type IoResult, type Next, type Stage } from './pipeline.ts';
import { COPY_CHUNK, ChunkWalker, rangesAtMoment, type Piece, type RangesAtMoment } from './chunk-walker.ts';

export interface PointInTimeTarget {
  exportName: string;
  /**
   * Opened read-write by the caller, the served disk's virtualSize, reading as zeros where
   * nothing is written (a new disk: unallocated and zero ranges are not written, so a dynamic
   * target stays sparse). The caller closes it once `done` settled.
   */
  target: VirtualDisk;
  /**
   * 'all' (default): the whole virtual disk as the guest sees it. 'own': only the ranges the
   * served chain's leaf itself defines (its parents are frozen checkpoint files the caller
   * copies as files; the target is then a differencing disk over a copy of them). A function:
   * the ranges it answers at the moment (backup: the change tracker's take), the rest untouched.
   */
  ranges?: 'all' | 'own' | RangesAtMoment;
}

export interface PointInTimeCopy {
  /** Resolves when every range is in the targets and each target is flushed; rejects with a VmhostError. */
  readonly done: Promise<void>;
  /** Bytes walked so far of the ranges to copy ('all': the whole disk, holes included, as QEMU's backup counts). */
  progress(): { copiedBytes: number; totalBytes: number };
  /** Stop and remove the stages; `done` rejects with STORAGE_COPY_CANCELLED (saying `reason`). Resolves once nothing touches the targets. */
  cancel(reason?: string): Promise<void>;
}

/** One export of a copy: its pipeline, the target and which ranges. */
export interface PointInTimePart {
  exportName: string;
  pipeline: Pipeline;
  target: VirtualDisk;
  ranges: 'all' | 'own' | RangesAtMoment;
}

export const POINT_IN_TIME_STAGE = 'point-in-time';
export { COPY_CHUNK };

/**
 * Quiesce the parts' pipelines together, put a copy stage on each, release them and start
 * copying. The caller checked the parts (distinct exports, sizes, writable targets) and keeps
 * swaps and resizes away until `done` settles.
 */
export async function startPointInTimeCopy(parts: readonly PointInTimePart[]): Promise<PointInTimeCopy> {
  const job = new CopyJob();
  await Pipeline.whileIdle(parts.map((p) => p.pipeline), async () => {
    const stages: CopyBeforeWriteStage[] = [];
    for (const p of parts) stages.push(new CopyBeforeWriteStage(job, p, await rangesAtMoment(p.pipeline, p.ranges, p.exportName, 'point-in-time-copy')));
    // Added only when every part is ready: a refusal leaves no stage behind.
    for (const s of stages) s.part.pipeline.add(s);
    job.stages = stages;
  });
  job.start();
  return job;
}

class CopyJob implements PointInTimeCopy {
  stages: CopyBeforeWriteStage[] = [];
  /** Set when the copy failed or was cancelled: stages pass everything on, nothing new is copied. */
  failure: VmhostError | undefined;
  /** Resolves when `failure` is set: guest writes waiting on a chunk copy are let go by it. */
  readonly stopped: Promise<void>;
  readonly done: Promise<void>;
  /** Starts the walkers (once the stages are in and the pipelines released). */
  start!: () => void;
  private markStopped!: () => void;

  constructor() {
    this.stopped = new Promise<void>((r) => { this.markStopped = r; });
    this.done = new Promise<void>((r) => { this.start = r; }).then(() => this.run());
    // The caller may drop the copy (a stopped export cancels it): its rejection must not go unhandled.
    this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    await Promise.all(this.stages.map((s) => s.walk()));
    if (this.failure) {
      // Nothing may write to a target once `done` settled: wait for copies under way.
      await Promise.all(this.stages.map((s) => s.settled()));
      throw this.failure;
    }
    this.removeStages();
    await Promise.all(this.stages.map(async (s) => {
      try {
        await s.part.target.flush();
      } catch (e) {
        throw copyFailed(s.part.exportName, 'target', 'flush', 0, 0, e);
      }
    }));
    if (this.failure) throw this.failure;
  }

  /** The first failure stops the whole set: the targets would no longer be one moment. */
  fail(e: VmhostError): void {
    if (this.failure) return;
    this.failure = e;
    this.removeStages();
    this.markStopped();
  }

  private removeStages(): void {
    for (const s of this.stages) if (s.part.pipeline.get(POINT_IN_TIME_STAGE) === s) s.part.pipeline.remove(POINT_IN_TIME_STAGE);
  }

  progress(): { copiedBytes: number; totalBytes: number } {
    let copiedBytes = 0, totalBytes = 0;
    for (const s of this.stages) {
      copiedBytes += s.copiedBytes;
      totalBytes += s.totalBytes;
    }
    return { copiedBytes, totalBytes };
  }

  async cancel(reason = 'cancelled'): Promise<void> {
    const names = this.stages.map((s) => s.part.exportName).join(', ');
    this.fail(new VmhostError('STORAGE_COPY_CANCELLED', `point-in-time copy of ${names} ${reason}`, { op: 'point-in-time-copy', export: names, reason }));
    await this.done.catch(() => undefined);
  }
}

/** The copy-before-write stage of one export, with its walker. */
export class CopyBeforeWriteStage implements Stage {
  readonly name = POINT_IN_TIME_STAGE;
  /** Chunks copied because a guest write came first (tests read it). */
  copiedBeforeWrite = 0;
  readonly walker: ChunkWalker;

  constructor(private readonly job: CopyJob, readonly part: PointInTimePart, pieces: readonly Piece[]) {
    this.walker = new ChunkWalker({
      get failure() { return job.failure; },
      fail: (e) => job.fail(e),
      copyError: (side, step, offset, length, e) => copyFailed(part.exportName, side, step, offset, length, e),
    }, part.pipeline.disk, part.target, pieces, { probeZeroes: 'skip' });
  }

  get totalBytes(): number {
    return this.walker.totalBytes;
  }

  get copiedBytes(): number {
    return this.walker.copiedBytes;
  }

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    if ((req.kind !== 'write' && req.kind !== 'trim' && req.kind !== 'write-zeroes') || req.length === 0 || this.job.failure) return next(req);
    const waits: Array<Promise<void>> = [];
    const [first, last] = ChunkWalker.chunksOf(req.offset, req.length);
    for (let c = first; c <= last; c++) {
      if (!this.walker.isCopied(c)) waits.push(this.walker.chunk(c).then((mine) => { if (mine) this.copiedBeforeWrite++; }));
    }
    if (waits.length === 0) return next(req);
    // A failed copy lets the write go: the guest never sees the copy's problems.
    return Promise.race([Promise.all(waits), this.job.stopped]).then(() => next(req));
  }

  walk(): Promise<void> {
    return this.walker.walk();
  }

  settled(): Promise<void> {
    return this.walker.settled();
  }
}

function copyFailed(exportName: string, side: 'source' | 'target', op: string, offset: number, length: number, e: unknown): VmhostError {
  const why = e instanceof Error ? e.message : String(e);
  return new VmhostError('STORAGE_COPY_FAILED', `point-in-time copy of ${exportName} failed: ${op} of the ${side} at [${offset}, +${length}): ${why}`, {
    op: 'point-in-time-copy', export: exportName, side, step: op, offset, length,
  }, { cause: e });
}
