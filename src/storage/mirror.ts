// Storage live migration: a served disk copied to another disk while the guest keeps reading
// and writing, then served from there (the seed: "reads and writes go to the source until …
// then to both … then to the destination"). A background walker (chunk-walker.ts, shared with
// the point-in-time copy) copies the disk in 1 MiB chunks: the whole chain flattened ('all') or
// only the leaf's own ranges ('own', the target being a differencing disk over copies of the
// parents: a chain moved file by file). A guest write to a chunk being copied waits for that
// copy (ChunkGate); to a chunk already copied it goes to both disks; to a chunk not yet copied
// it goes to the source only and the walker copies the whole chunk later. Trims are dropped
// meanwhile (NBD lets a server ignore them, and a trim would read differently in the two).
// When every chunk is copied, the export pauses (Pipeline.swapDisk: held requests, in-flight
// drained, flush), the target is flushed, the caller's `commit` records it (a VM's config) and
// the export goes on with the target.
//
// The target is a disk one can write ranges to, not a path, so a mirror to another host (a
// shared-nothing Move-VM) is a target whose writes cross the network. Crash safety: until
// `commit` the source alone is authoritative and complete (a crash leaves a partial target the
// caller's journal removes); `commit` runs only once the target holds every byte and is flushed.
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import { ChunkGate } from './chunk-gate.ts';
import { COPY_CHUNK, ChunkWalker, rangesAtMoment } from './chunk-walker.ts';
import { diskStep, Pipeline, type IoRequest, type IoResult, type Next, type Stage } from './pipeline.ts';

export interface MirrorTarget {
  /**
   * Where the copy writes: writable, the served disk's virtual size, reading as zeros where
   * nothing is written ('all') or as the source's parents ('own': a differencing disk over
   * copies of them). The export serves it after the switch (and then owns it).
   */
  readonly disk: VirtualDisk;
  /** The file `disk` is, when local: the export's path after the switch. */
  readonly path?: string;
  /** Close and remove what was written: the mirror failed or was cancelled. */
  discard(): Promise<void>;
}

export interface MirrorOptions {
  target: MirrorTarget;
  /** 'all' (default): the chain flattened into the target. 'own': only the leaf's ranges. */
  ranges?: 'all' | 'own';
  /** Bytes copied of the total, after each chunk the walker copied. */
  progress?(copied: number, total: number): void;
  /**
   * Called once every chunk is copied. Until the promise it returns resolves, the two disks
   * stay in step (every guest write goes to both); then the mirror commits and switches. A
   * shared-nothing Move-VM holds its disks so while the VM's memory moves. Without it the
   * mirror commits at once.
   */
  inSync?(): Promise<void>;
  /**
   * Runs with the export paused, every range in the target and the target flushed, before the
   * export switches to it: the caller records that the target is now the disk. A throw
   * abandons the mirror (the source stays served, the target is discarded).
   */
  commit(): Promise<void>;
}

export interface Mirror {
  /** Resolves once the export serves the target (the source disk closed); rejects with STORAGE_MIRROR_FAILED or STORAGE_MIRROR_CANCELLED, the source still served. */
  readonly done: Promise<void>;
  /** Bytes walked of the ranges to copy (grows when a guest write makes a chunk whole). */
  progress(): { copiedBytes: number; totalBytes: number };
  /** Stop before the switch: `done` rejects with STORAGE_MIRROR_CANCELLED, the target is discarded. Resolves once it is. A mirror past its commit ends normally. */
  cancel(reason?: string): Promise<void>;
}

export const MIRROR_STAGE = 'mirror';

/** Put the mirror stage on `pipeline` (idle for that instant) and start copying. The caller checked the target and keeps swaps away until `done` settles. */
export async function startMirror(exportName: string, pipeline: Pipeline, opts: MirrorOptions): Promise<Mirror> {
  const job = new MirrorJob(exportName, pipeline, opts);
  await Pipeline.whileIdle([pipeline], async () => {
    const pieces = await rangesAtMoment(pipeline, opts.ranges ?? 'all', exportName, 'mirror');
    job.stage = new MirrorStage(job, new ChunkWalker(job, pipeline.disk, opts.target.disk, pieces, {
      // A differencing target must hide its parent where the source reads zeros; a new disk reads zeros there already.
      probeZeroes: opts.target.disk.type === 'Differencing' ? 'trim' : 'skip',
      guard: async (c, copy) => {
        await job.gate.copy(c, copy);
        const p = job.progress();
        opts.progress?.(p.copiedBytes, p.totalBytes);
      },
    }), opts.target.disk);
    pipeline.add(job.stage);
  });
  job.start();
  return job;
}

class MirrorJob implements Mirror {
  readonly gate = new ChunkGate(COPY_CHUNK);
  stage!: MirrorStage;
  failure: VmhostError | undefined;
  /** Set once `commit` returned: the switch is the caller's record, a cancel comes too late. */
  private committed = false;
  readonly done: Promise<void>;
  start!: () => void;
  /** Resolves when the mirror fails or is cancelled. */
  private readonly failed: Promise<void>;
  private onFailed!: () => void;

  constructor(private readonly exportName: string, private readonly pipeline: Pipeline, private readonly opts: MirrorOptions) {
    this.failed = new Promise<void>((r) => { this.onFailed = r; });
    this.done = new Promise<void>((r) => { this.start = r; }).then(() => this.run());
    // The caller may drop the mirror (a stopped export cancels it): its rejection must not go unhandled.
    this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const target = this.opts.target;
    try {
      await this.stage.walker.walk();
      // A failure or cancel while held ends the wait: nothing is mirrored any more.
      if (this.opts.inSync && !this.failure) await Promise.race([this.opts.inSync(), this.failed]);
      await this.pipeline.swapDisk(async (current) => {
        this.removeStage();
        if (this.failure) throw this.failure;
        await target.disk.flush().catch((e: unknown) => { throw this.copyError('target', 'flush', 0, 0, e); });
        try {
          await this.opts.commit();
        } catch (e) {
          throw this.failure ?? mirrorFailed(this.exportName, `its commit failed: ${(e as Error).message}`, { step: 'commit' }, e);
        }
        this.committed = true;
        // The source's files are the caller's to delete now; a close failure changes nothing served.
        await current.close().catch(() => undefined);
        return target.disk;
      });
    } catch (e) {
      const failure = this.failure ?? (e instanceof VmhostError && (e.code === 'STORAGE_MIRROR_FAILED' || e.code === 'STORAGE_MIRROR_CANCELLED')
        ? e : mirrorFailed(this.exportName, (e as Error).message, { step: 'switch' }, e));
      this.fail(failure);
      // Nothing may write to the target once it is discarded: copies and mirrored writes under way end first.
      await this.stage.walker.settled();
      await Pipeline.whileIdle([this.pipeline], () => Promise.resolve());
      await target.discard().catch(() => undefined);
      throw failure;
    }
  }

  fail(e: VmhostError): void {
    if (this.failure || this.committed) return;
    this.failure = e;
    this.removeStage();
    this.onFailed();
  }

  private removeStage(): void {
    if (this.pipeline.get(MIRROR_STAGE) === this.stage) this.pipeline.remove(MIRROR_STAGE);
  }

  copyError(side: 'source' | 'target', step: string, offset: number, length: number, e: unknown): VmhostError {
    return mirrorFailed(this.exportName, `${step} of the ${side} at [${offset}, +${length}): ${e instanceof Error ? e.message : String(e)}`, { side, step, offset, length }, e);
  }

  progress(): { copiedBytes: number; totalBytes: number } {
    return { copiedBytes: this.stage.walker.copiedBytes, totalBytes: this.stage.walker.totalBytes };
  }

  async cancel(reason = 'cancelled'): Promise<void> {
    this.fail(new VmhostError('STORAGE_MIRROR_CANCELLED', `mirror of ${this.exportName} ${reason}`, { op: 'mirror', export: this.exportName, reason }));
    await this.done.catch(() => undefined);
  }
}

/** Guest writes: to both disks where the target is current, to the source alone where the walker will copy later. */
class MirrorStage implements Stage {
  readonly name = MIRROR_STAGE;

  constructor(private readonly job: MirrorJob, readonly walker: ChunkWalker, private readonly target: VirtualDisk) {}

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    if (this.job.failure) return next(req);
    switch (req.kind) {
      case 'trim':
        return Promise.resolve({});
      case 'write':
      case 'write-zeroes':
        if (req.length === 0) return next(req);
        return this.job.gate.write(req.offset, req.length, () => {
          // Admitted: no chunk of it is being copied, and none starts until it is done.
          const [first, last] = ChunkWalker.chunksOf(req.offset, req.length);
          let anyCopied = false;
          for (let c = first; c <= last; c++) {
            if (this.walker.isCopied(c)) anyCopied = true;
            else this.walker.widen(c);
          }
          // A write over copied and uncopied chunks goes to both: the walker rewrites the rest from the source later.
          return anyCopied ? this.both(req, next) : next(req);
        });
      case 'flush':
        return this.both(req, next);
      default:
        return next(req);
    }
  }

  private async both(req: IoRequest, next: Next): Promise<IoResult> {
    const [r] = await Promise.all([next(req), this.mirror(req)]);
    return r;
  }

  /** A target failure fails the mirror, never the guest's request. */
  private async mirror(req: IoRequest): Promise<void> {
    if (this.job.failure) return;
    try {
      await diskStep(this.target, req);
    } catch (e) {
      this.job.fail(this.job.copyError('target', req.kind, req.offset, req.length, e));
    }
  }
}

function mirrorFailed(exportName: string, why: string, ctx: Record<string, string | number>, cause: unknown): VmhostError {
  return new VmhostError('STORAGE_MIRROR_FAILED', `mirror of ${exportName} failed: ${why}`, { op: 'mirror', export: exportName, ...ctx }, { cause });
}
