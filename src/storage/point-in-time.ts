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
   * copies as files; the target is then a differencing disk over a copy of them).
   */
  ranges?: 'all' | 'own';
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
  ranges: 'all' | 'own';
}

export const POINT_IN_TIME_STAGE = 'point-in-time';
/** The unit of copying and locking: big enough for sequential throughput, small enough that a guest write waits on little. */
export const COPY_CHUNK = 1024 * 1024;
/** Chunks the background walker copies side by side per export. */
const WALKERS = 2;

/** A range the leaf defines ('own') or a range whose state is asked of the disk when copied ('all'). */
interface Piece {
  offset: number;
  length: number;
  kind: 'probe' | 'data' | 'zero';
}

interface LeafRanges {
  ownRanges(): Promise<Array<{ offset: number; length: number; zero: boolean }>>;
}

function hasOwnRanges(d: VirtualDisk): d is VirtualDisk & LeafRanges {
  return typeof (d as Partial<LeafRanges>).ownRanges === 'function';
}

/**
 * Quiesce the parts' pipelines together, put a copy stage on each, release them and start
 * copying. The caller checked the parts (distinct exports, sizes, writable targets) and keeps
 * swaps and resizes away until `done` settles.
 */
export async function startPointInTimeCopy(parts: readonly PointInTimePart[]): Promise<PointInTimeCopy> {
  const job = new CopyJob();
  await Pipeline.whileIdle(parts.map((p) => p.pipeline), async () => {
    const stages: CopyBeforeWriteStage[] = [];
    for (const p of parts) stages.push(new CopyBeforeWriteStage(job, p, p.pipeline.disk, await rangesAtMoment(p)));
    // Added only when every part is ready: a refusal leaves no stage behind.
    for (const s of stages) s.part.pipeline.add(s);
    job.stages = stages;
  });
  job.start();
  return job;
}

/** What to copy, read with the disk idle: for 'own' the leaf's ranges now, for 'all' everything. */
async function rangesAtMoment(p: PointInTimePart): Promise<Piece[]> {
  const disk = p.pipeline.disk;
  if (p.ranges === 'all' || disk.type !== 'Differencing') return [{ offset: 0, length: disk.virtualSize, kind: 'probe' }];
  if (!hasOwnRanges(disk)) {
    throw new VmhostError('STORAGE_UNSUPPORTED', `${p.exportName}: a ${disk.format} differencing disk cannot list its own ranges; copy 'all'`, { op: 'point-in-time-copy', export: p.exportName });
  }
  return (await disk.ownRanges()).map((r) => ({ offset: r.offset, length: r.length, kind: r.zero ? 'zero' : 'data' }));
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
  readonly totalBytes: number;
  copiedBytes = 0;
  /** Chunks copied because a guest write came first (tests read it). */
  copiedBeforeWrite = 0;
  /** 1 per chunk once copied, or when it holds nothing to copy. */
  private readonly copied: Uint8Array;
  /** Chunks being copied now: the per-chunk lock. */
  private readonly busy = new Map<number, Promise<void>>();
  /** Index into `pieces` of the first piece that may touch a chunk (pieces are in order). */
  private readonly firstPiece: Int32Array;

  constructor(
    private readonly job: CopyJob,
    readonly part: PointInTimePart,
    private readonly source: VirtualDisk,
    private readonly pieces: readonly Piece[],
  ) {
    const chunks = Math.ceil(source.virtualSize / COPY_CHUNK);
    this.copied = new Uint8Array(chunks).fill(1);
    this.firstPiece = new Int32Array(chunks + 1).fill(pieces.length);
    let total = 0;
    for (let i = pieces.length - 1; i >= 0; i--) {
      const p = pieces[i]!;
      total += p.length;
      for (let c = Math.floor(p.offset / COPY_CHUNK); c * COPY_CHUNK < p.offset + p.length; c++) {
        this.copied[c] = 0;
        this.firstPiece[c] = i;
      }
    }
    this.totalBytes = total;
  }

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    if ((req.kind !== 'write' && req.kind !== 'trim' && req.kind !== 'write-zeroes') || req.length === 0 || this.job.failure) return next(req);
    const waits: Array<Promise<void>> = [];
    for (let c = Math.floor(req.offset / COPY_CHUNK); c * COPY_CHUNK < req.offset + req.length; c++) {
      if (this.copied[c] === 0) waits.push(this.chunk(c, true));
    }
    if (waits.length === 0) return next(req);
    // A failed copy lets the write go: the guest never sees the copy's problems.
    return Promise.race([Promise.all(waits), this.job.stopped]).then(() => next(req));
  }

  /** Copy every chunk left, WALKERS at a time, until done or the job stops. */
  async walk(): Promise<void> {
    let cursor = 0;
    const worker = async () => {
      while (!this.job.failure && cursor < this.copied.length) {
        const c = cursor++;
        if (this.copied[c] === 0) await this.chunk(c, false);
      }
    };
    await Promise.all(Array.from({ length: WALKERS }, worker));
  }

  /** Resolves when no chunk copy is under way (after the job stopped, none starts). */
  async settled(): Promise<void> {
    while (this.busy.size > 0) await Promise.all(this.busy.values());
  }

  /** The chunk's copy: the one under way, or a new one. Never rejects (a failure fails the job). */
  private chunk(c: number, forWrite: boolean): Promise<void> {
    const running = this.busy.get(c);
    if (running) return running;
    if (this.copied[c] === 1 || this.job.failure) return Promise.resolve();
    const p = this.copyChunk(c).then(
      (bytes) => {
        this.copied[c] = 1;
        this.copiedBytes += bytes;
        if (forWrite) this.copiedBeforeWrite++;
      },
      (e: VmhostError) => this.job.fail(e),
    ).finally(() => this.busy.delete(c));
    this.busy.set(c, p);
    return p;
  }

  /** Copy the pieces inside chunk `c`; returns their bytes. */
  private async copyChunk(c: number): Promise<number> {
    const start = c * COPY_CHUNK, end = Math.min(start + COPY_CHUNK, this.source.virtualSize);
    let bytes = 0;
    for (let i = this.firstPiece[c]!; i < this.pieces.length && this.pieces[i]!.offset < end; i++) {
      const p = this.pieces[i]!;
      const offset = Math.max(p.offset, start), length = Math.min(p.offset + p.length, end) - offset;
      if (length <= 0) continue;
      await this.copyPiece(p.kind, offset, length);
      bytes += length;
    }
    return bytes;
  }

  private async copyPiece(kind: Piece['kind'], offset: number, length: number): Promise<void> {
    const name = this.part.exportName;
    if (kind === 'zero') {
      // The leaf hides its parent there: the target must too (a differencing target marks it zero).
      await this.part.target.trim(offset, length).catch((e: unknown) => { throw copyFailed(name, 'target', 'trim', offset, length, e); });
      return;
    }
    const data = kind === 'data'
      ? [{ offset, length }]
      : (await this.source.blockStatus(offset, length).catch((e: unknown) => { throw copyFailed(name, 'source', 'block-status', offset, length, e); })).filter((x) => !x.zero);
    for (const x of data) {
      const buf = new Uint8Array(x.length);
      await this.source.read(buf, x.offset).catch((e: unknown) => { throw copyFailed(name, 'source', 'read', x.offset, x.length, e); });
      await this.part.target.write(buf, x.offset).catch((e: unknown) => { throw copyFailed(name, 'target', 'write', x.offset, x.length, e); });
    }
  }
}

function copyFailed(exportName: string, side: 'source' | 'target', op: string, offset: number, length: number, e: unknown): VmhostError {
  const why = e instanceof Error ? e.message : String(e);
  return new VmhostError('STORAGE_COPY_FAILED', `point-in-time copy of ${exportName} failed: ${op} of the ${side} at [${offset}, +${length}): ${why}`, {
    op: 'point-in-time-copy', export: exportName, side, step: op, offset, length,
  }, { cause: e });
}
