// The I/O pipeline every request of a served disk passes through: an ordered list of stages
// with one small interface, the storage twin of the switch's extension pipeline (DESIGN §3).
// A stage sees the request, may wait, count, transform or refuse it, and calls `next` to
// pass it on; the last step is the disk itself. Metering and QoS are stages now; change
// tracking, mirroring and encryption slot in later by name and position. The disk under the
// stages can be replaced while clients stay connected (`swapDisk`: checkpoints put a new
// differencing leaf under a running VM, a live merge puts the merged chain back). Every failure
// leaves the pipeline as a VmhostError, so its NBD errno (and HTTP status) comes from the one table.
import type { Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError, isVmhostError, type ErrorCode } from '../common/index.ts';

export type IoKind = 'read' | 'write' | 'flush' | 'trim' | 'write-zeroes' | 'block-status';

export interface IoRequest {
  kind: IoKind;
  /** Byte offset and length in the virtual disk (0 for flush). */
  offset: number;
  length: number;
  /** read: filled by the disk; write: the payload. Length equals `length`. */
  data?: Uint8Array;
  /**
   * read without `data`: the buffer to fill, asked for only when the range holds data. A
   * result with `zero` means it was never asked for: the range reads as zeros.
   */
  buffer?: () => Uint8Array;
  /** Make the effect durable before completing (NBD FUA). */
  fua: boolean;
  /** write-zeroes: keep the range allocated (NBD NO_HOLE). */
  noHole: boolean;
  /** Which export the request came in on (for stages keyed per disk). */
  exportName: string;
}

export interface IoResult {
  /** block-status only. */
  extents?: Extent[];
  /** read with `buffer`: the whole range reads as zeros and nothing was read. */
  zero?: boolean;
}

export type Next = (req: IoRequest) => Promise<IoResult>;

export interface Stage {
  readonly name: string;
  handle(req: IoRequest, next: Next): Promise<IoResult>;
  /**
   * Whether a read the disk answers at once as zeros (`Pipeline.readZeroNow`) may skip
   * `handle`: such reads then take no promise. Without it they never do. Changes nothing.
   */
  passesNow?(req: IoRequest): boolean;
  /** Account for a read that skipped `handle` (called once every stage's `passesNow` said yes). */
  passedNow?(req: IoRequest): void;
  /**
   * The disk under the stages was replaced (`swapDisk`); called with the pipeline still idle,
   * before any request reaches the new disk. For stages that key on the disk's identity
   * (change tracking records the new leaf's DataWriteGuid). Must not throw: the swap is done.
   */
  swapped?(disk: VirtualDisk): Promise<void>;
  /** Called when the pipeline is torn down (timers, files). */
  close?(): void;
}

/** Host errnos of a failed file operation → the storage code a client should see. */
const ERRNO_CODES: Readonly<Record<string, ErrorCode>> = {
  ENOSPC: 'STORAGE_NO_SPACE', EDQUOT: 'STORAGE_NO_SPACE', EFBIG: 'STORAGE_NO_SPACE',
  EROFS: 'STORAGE_READ_ONLY', EPERM: 'STORAGE_READ_ONLY', EACCES: 'STORAGE_READ_ONLY',
};

/** A stage's or the disk's failure as a typed error: a raw errno (the host file) keeps its meaning. */
export function ioFailure(e: unknown, req: IoRequest): VmhostError {
  if (isVmhostError(e)) return e;
  const errno = (e as { code?: unknown } | null)?.code;
  const code = (typeof errno === 'string' ? ERRNO_CODES[errno] : undefined) ?? 'STORAGE_IO_ERROR';
  const message = `${req.exportName}: ${req.kind} [${req.offset}, +${req.length}) failed: ${e instanceof Error ? e.message : String(e)}`;
  return new VmhostError(code, message, {
    op: req.kind, export: req.exportName, offset: req.offset, length: req.length, errno: typeof errno === 'string' ? errno : undefined,
  }, { cause: e });
}

const EMPTY: IoResult = {};
const ZERO: IoResult = { zero: true };
const ZERO_CHUNK = 1024 * 1024;
let zeros: Uint8Array | undefined;

/** The final step: run the request against the disk. */
export async function diskStep(disk: VirtualDisk, req: IoRequest): Promise<IoResult> {
  switch (req.kind) {
    case 'read':
      if (req.data) await disk.read(req.data, req.offset);
      else if (disk.readSparse) return (await disk.readSparse(req.offset, req.length, req.buffer!)) === 'zero' ? ZERO : EMPTY;
      else await disk.read(req.buffer!(), req.offset);
      return EMPTY;
    case 'write':
      await disk.write(req.data!, req.offset);
      if (req.fua) await disk.flush();
      return EMPTY;
    case 'flush':
      await disk.flush();
      return EMPTY;
    case 'trim':
      await disk.trim(req.offset, req.length);
      if (req.fua) await disk.flush();
      return EMPTY;
    case 'write-zeroes':
      if (!req.noHole) await disk.trim(req.offset, req.length);
      else {
        zeros ??= new Uint8Array(ZERO_CHUNK);
        for (let o = 0; o < req.length; o += ZERO_CHUNK) {
          await disk.write(zeros.subarray(0, Math.min(ZERO_CHUNK, req.length - o)), req.offset + o);
        }
      }
      if (req.fua) await disk.flush();
      return EMPTY;
    case 'block-status':
      return { extents: await disk.blockStatus(req.offset, req.length) };
  }
}

export class Pipeline {
  private list: Stage[] = [];
  /** entry[i] runs the request from stage i on (entry[length] is the disk), built per list. */
  private entry: Next[];
  /** Requests started and not yet settled (stages included). */
  private inFlight = 0;
  /** Set while `whileIdle` holds the pipeline: new requests wait for it. */
  private paused: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(private current: VirtualDisk) {
    this.entry = this.chain([]);
  }

  /** The disk requests reach now (changes only by swapDisk). */
  get disk(): VirtualDisk {
    return this.current;
  }

  private get stages(): Stage[] {
    return this.list;
  }

  // Arrays are replaced, never edited: a request in flight keeps the chain it started with.
  private set stages(list: Stage[]) {
    this.list = list;
    this.entry = this.chain(list);
  }

  private chain(list: Stage[]): Next[] {
    const entry: Next[] = new Array<Next>(list.length + 1);
    entry[list.length] = (r) => diskStep(this.current, r);
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      const next = entry[i + 1]!;
      entry[i] = (r) => {
        try {
          return s.handle(r, next);
        } catch (e) {
          // A stage that throws instead of rejecting fails its request, not the connection.
          return Promise.reject(e);
        }
      };
    }
    return entry;
  }

  /** Stage names in order. */
  get names(): string[] {
    return this.stages.map((s) => s.name);
  }

  /** Add a stage at the end, or just before/after the named one. Names are unique. */
  add(stage: Stage, where: { before?: string; after?: string } = {}): void {
    if (this.stages.some((s) => s.name === stage.name)) {
      throw new VmhostError('STORAGE_STAGE_EXISTS', `pipeline already has a stage ${stage.name}`, { op: 'add-stage', stage: stage.name });
    }
    const anchor = where.before ?? where.after;
    if (anchor === undefined) {
      this.stages = [...this.stages, stage];
      return;
    }
    const i = this.stages.findIndex((s) => s.name === anchor);
    if (i < 0) throw new VmhostError('STORAGE_NO_SUCH_STAGE', `pipeline has no stage ${anchor}`, { op: 'add-stage', stage: stage.name, anchor });
    const at = where.before !== undefined ? i : i + 1;
    this.stages = [...this.stages.slice(0, at), stage, ...this.stages.slice(at)];
  }

  remove(name: string): Stage | undefined {
    const i = this.stages.findIndex((s) => s.name === name);
    if (i < 0) return undefined;
    const s = this.stages[i]!;
    this.stages = this.stages.filter((_, k) => k !== i);
    s.close?.();
    return s;
  }

  get<T extends Stage>(name: string): T | undefined {
    return this.stages.find((s) => s.name === name) as T | undefined;
  }

  /**
   * A read answered without the stage chain's promises: when every stage lets it skip `handle`
   * and the disk knows at once that the range reads as zeros (`readsZeroNow`: a cached map,
   * no I/O), the stages count it and the answer is true: the caller replies with zeros. False:
   * send it through `run` (a paused pipeline, data, a stage without the hook, a QoS limit).
   */
  readZeroNow(req: IoRequest): boolean {
    if (this.paused) return false;
    const list = this.list;
    for (const s of list) if (!s.passesNow?.(req)) return false;
    if (!this.current.readsZeroNow?.(req.offset, req.length)) return false;
    for (const s of list) s.passedNow?.(req);
    return true;
  }

  run(req: IoRequest): Promise<IoResult> {
    if (this.paused) return this.paused.then(() => this.run(req));
    this.inFlight++;
    return this.entry[0]!(req).then(
      (r) => { this.settled(); return r; },
      (e: unknown) => { this.settled(); return Promise.reject(ioFailure(e, req)); },
    );
  }

  private settled(): void {
    if (--this.inFlight === 0) this.drained?.();
  }

  /**
   * Run `work` with every pipeline in `pipelines` idle: new requests are held, those in flight
   * (stages included) finish, then `work` runs and the held requests go on when it settles.
   * Clients see a pause, never an error. All are paused at the same instant, so `work` sees the
   * disks at one moment (a VM's disks consistent with each other); pauses that overlap in any
   * pipeline run one after the other, never interleaved (no deadlock between two sets).
   */
  static async whileIdle<T>(set: readonly Pipeline[], work: () => Promise<T>): Promise<T> {
    const pipelines = [...new Set(set)];
    for (let busy = pipelines.find((p) => p.paused); busy; busy = pipelines.find((p) => p.paused)) await busy.paused;
    let resume!: () => void;
    const paused = new Promise<void>((r) => { resume = r; });
    for (const p of pipelines) p.paused = paused;
    try {
      await Promise.all(pipelines.map((p) => (p.inFlight > 0 ? new Promise<void>((r) => { p.drained = r; }) : undefined)));
      return await work();
    } finally {
      for (const p of pipelines) {
        p.drained = undefined;
        p.paused = undefined;
      }
      resume();
    }
  }

  /**
   * Replace the disk under the stages while clients stay connected (in `whileIdle`): the old
   * disk is flushed, then `replace` runs with nothing in flight and returns the disk to continue
   * on (the old one to keep it); held requests then go to it. The new disk must look the same
   * to the clients (size, sector sizes, writability): else STORAGE_INVALID_ARGUMENT, the old
   * disk stays, and what `replace` opened is the caller's to close. A `replace` that throws
   * must leave the old disk usable: it stays.
   */
  swapDisk(replace: (current: VirtualDisk) => Promise<VirtualDisk>): Promise<void> {
    return Pipeline.whileIdle([this], async () => {
      const old = this.current;
      await old.flush();
      const next = await replace(old);
      const differs = (['virtualSize', 'logicalSectorSize', 'physicalSectorSize', 'readOnly'] as const).filter((k) => next[k] !== old[k]);
      if (differs.length > 0) {
        throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the replacement disk differs from the served one in ${differs.join(', ')}`, { op: 'swap-disk', differs: differs.join(',') });
      }
      this.current = next;
      for (const s of this.list) await s.swapped?.(next);
    });
  }

  close(): void {
    for (const s of this.stages) s.close?.();
  }
}
