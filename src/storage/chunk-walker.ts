// The background copy under a served disk, in 1 MiB chunks: which ranges to copy (the whole
// virtual disk, or only the ranges a differencing leaf defines), which chunks are done, the
// per-chunk lock (a chunk is copied once, by whoever asks first; others wait on that copy) and
// the walkers. Shared by the point-in-time copy (copy before write) and the mirror (write to
// both once copied): they differ only in what a guest write does, which their stages decide.
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import type { Pipeline } from './pipeline.ts';

/** The unit of copying and locking: big enough for sequential throughput, small enough that a guest write waits on little. */
export const COPY_CHUNK = 1024 * 1024;
/** Chunks the background walker copies side by side per export. */
const WALKERS = 2;

/**
 * A range the leaf defines ('data', or 'zero' where it hides its parent), or a range whose
 * state is asked of the disk when copied ('probe').
 */
export interface Piece {
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
 * Ranges a copy asks for at its moment (with the disk idle): a change tracker's take, say.
 * Each is copied as the disk has it then (data, or zeros skipped).
 */
export type RangesAtMoment = (disk: VirtualDisk) => Promise<ReadonlyArray<{ offset: number; length: number }>>;

/** What to copy, read with the disk idle: for 'own' the leaf's ranges now, for 'all' everything, or what the caller's function says. */
export async function rangesAtMoment(pipeline: Pipeline, ranges: 'all' | 'own' | RangesAtMoment, exportName: string, op: string): Promise<Piece[]> {
  const disk = pipeline.disk;
  if (typeof ranges === 'function') return (await ranges(disk)).map((r) => ({ offset: r.offset, length: r.length, kind: 'probe' }));
  if (ranges === 'all' || disk.type !== 'Differencing') return [{ offset: 0, length: disk.virtualSize, kind: 'probe' }];
  if (!hasOwnRanges(disk)) {
    throw new VmhostError('STORAGE_UNSUPPORTED', `${exportName}: a ${disk.format} differencing disk cannot list its own ranges; copy 'all'`, { op, export: exportName });
  }
  return (await disk.ownRanges()).map((r) => ({ offset: r.offset, length: r.length, kind: r.zero ? 'zero' : 'data' }));
}

/** What the walker reports to its owner and how it words a failed step. */
export interface WalkerOwner {
  /** Set once the job failed or was cancelled: nothing new is copied. */
  readonly failure: VmhostError | undefined;
  fail(e: VmhostError): void;
  copyError(side: 'source' | 'target', step: string, offset: number, length: number, e: unknown): VmhostError;
}

export interface WalkerOptions {
  /**
   * What a probed zero range becomes in the target: 'skip' for a new disk that reads zeros
   * where nothing is written, 'trim' for a differencing target whose parent must be hidden.
   */
  probeZeroes: 'skip' | 'trim';
  /** Runs each chunk's copy (the mirror holds the chunk's guest writes off while it copies). */
  guard?: (chunk: number, copy: () => Promise<void>) => Promise<void>;
}

export class ChunkWalker {
  totalBytes: number;
  copiedBytes = 0;
  /** 1 per chunk once copied, or when it holds nothing to copy. */
  private readonly copied: Uint8Array;
  /** Chunks being copied now: the per-chunk lock. */
  private readonly busy = new Map<number, Promise<void>>();
  /** Index into `pieces` of the first piece that may touch a chunk (pieces are in order). */
  private readonly firstPiece: Int32Array;
  /** Chunks to copy whole, whatever the pieces say (a guest write landed there before the copy). */
  private readonly whole = new Set<number>();

  constructor(
    private readonly owner: WalkerOwner,
    private readonly source: VirtualDisk,
    private readonly target: VirtualDisk,
    private readonly pieces: readonly Piece[],
    private readonly opts: WalkerOptions,
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

  /** The chunks [first, last] of a request. */
  static chunksOf(offset: number, length: number): [number, number] {
    return [Math.floor(offset / COPY_CHUNK), Math.floor((offset + Math.max(length, 1) - 1) / COPY_CHUNK)];
  }

  isCopied(c: number): boolean {
    return this.copied[c] === 1;
  }

  /** The copy of chunk `c` under way, if any. */
  copying(c: number): Promise<void> | undefined {
    return this.busy.get(c);
  }

  /**
   * Copy chunk `c` whole when its turn comes (not only the leaf's pieces): a guest write landed
   * in it that only the source has. Only for a chunk not copied and not being copied.
   */
  widen(c: number): void {
    if (this.copied[c] === 1 || this.whole.has(c)) return;
    const [start, end] = this.bounds(c);
    this.totalBytes += end - start - this.pieceBytes(c);
    this.whole.add(c);
  }

  /** Copy every chunk left, WALKERS at a time, until done or the job stops. */
  async walk(): Promise<void> {
    let cursor = 0;
    const worker = async () => {
      while (!this.owner.failure && cursor < this.copied.length) {
        const c = cursor++;
        if (this.copied[c] === 0) await this.chunk(c);
      }
    };
    await Promise.all(Array.from({ length: WALKERS }, worker));
  }

  /** Resolves when no chunk copy is under way (after the job stopped, none starts). */
  async settled(): Promise<void> {
    while (this.busy.size > 0) await Promise.all(this.busy.values());
  }

  /** The chunk's copy: the one under way, or a new one. Never rejects (a failure fails the job). Resolves true when this call copied it. */
  chunk(c: number): Promise<boolean> {
    const running = this.busy.get(c);
    if (running) return running.then(() => false);
    if (this.copied[c] === 1 || this.owner.failure) return Promise.resolve(false);
    const copy = () => this.copyChunk(c).then((bytes) => {
      this.copied[c] = 1;
      this.copiedBytes += bytes;
    });
    const p = (this.opts.guard ? this.opts.guard(c, copy) : copy())
      .catch((e: VmhostError) => this.owner.fail(e))
      .finally(() => this.busy.delete(c));
    this.busy.set(c, p);
    return p.then(() => this.copied[c] === 1);
  }

  private bounds(c: number): [number, number] {
    const start = c * COPY_CHUNK;
    return [start, Math.min(start + COPY_CHUNK, this.source.virtualSize)];
  }

  /** Bytes of the pieces inside chunk `c`. */
  private pieceBytes(c: number): number {
    const [start, end] = this.bounds(c);
    let bytes = 0;
    for (let i = this.firstPiece[c]!; i < this.pieces.length && this.pieces[i]!.offset < end; i++) {
      const p = this.pieces[i]!;
      bytes += Math.max(0, Math.min(p.offset + p.length, end) - Math.max(p.offset, start));
    }
    return bytes;
  }

  /** Copy the pieces inside chunk `c` (or all of it when widened); returns their bytes. */
  private async copyChunk(c: number): Promise<number> {
    const [start, end] = this.bounds(c);
    if (this.whole.has(c)) {
      await this.copyPiece('probe', start, end - start);
      return end - start;
    }
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
    const fail = (side: 'source' | 'target', step: string, o: number, l: number) => (e: unknown) => { throw this.owner.copyError(side, step, o, l, e); };
    if (kind === 'zero') {
      // The leaf hides its parent there: the target must too (a differencing target marks it zero).
      await this.target.trim(offset, length).catch(fail('target', 'trim', offset, length));
      return;
    }
    const extents = kind === 'data'
      ? [{ offset, length, zero: false }]
      : await this.source.blockStatus(offset, length).catch(fail('source', 'block-status', offset, length));
    for (const x of extents) {
      if (x.zero) {
        if (this.opts.probeZeroes === 'trim') await this.target.trim(x.offset, x.length).catch(fail('target', 'trim', x.offset, x.length));
        continue;
      }
      // Stored in one piece of an OS file (a fully present VHDX block, a raw image): copied file
      // to file by the kernel, as conversion does. The slice holds: the chunk's guest writes wait
      // for this copy, and nothing else moves a disk's data while it is served.
      const slice = this.target.writeFrom && this.source.locate ? await this.source.locate(x.offset, x.length).catch(fail('source', 'locate', x.offset, x.length)) : undefined;
      if (slice) {
        await this.target.writeFrom!(slice, x.length, x.offset).catch(fail('target', 'write', x.offset, x.length));
        continue;
      }
      const buf = new Uint8Array(x.length);
      await this.source.read(buf, x.offset).catch(fail('source', 'read', x.offset, x.length));
      await this.target.write(buf, x.offset).catch(fail('target', 'write', x.offset, x.length));
    }
  }
}
