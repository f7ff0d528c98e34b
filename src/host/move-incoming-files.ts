// Move-VM, the destination's files that arrive as files, before any disk's mirror: the
// checkpoints' memory and, shared-nothing, the frozen disk files of the VM's chains (the files
// checkpoints froze). Each is a new file of its source's size (storage/mirror-file.ts
// `createFileTarget`) that the source fills over its own disk stream with the source file's
// data runs (storage/file-copy.ts `sendFileData`), so a sparse file stays sparse. Once every
// one has finished, the frozen files are closed and re-pointed at their parents' copies here,
// parents first (they are byte copies: each still names the source's path). A drive's new leaf
// over such a parent can only be created then (`leafAfterFiles`): its stream may open before,
// and its writes wait for it.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DiskFormat, DiskType, Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/index.ts';
import { createFileTarget, createMirrorFile, setDiskParent, type DiskShape, type MirrorTarget } from '../storage/index.ts';

/** What an incoming file is. */
export type IncomingFileKind =
  /** A checkpoint's memory: `name` in the VM's checkpoint folder here. */
  | { kind: 'memory'; name: string }
  /** A frozen disk file at `path` here, re-pointed at `parent` (its parent's copy here) once all have arrived. */
  | { kind: 'disk'; path: string; parent: string | null };

/** A file the source sends before the mirrors, over the disk stream named `stream`. */
export type IncomingFile = { stream: string; size: number } & IncomingFileKind;

/** Where an incoming file goes on this host. */
export function incomingPath(f: IncomingFile, snapshotDir: string): string {
  return f.kind === 'memory' ? join(snapshotDir, f.name) : f.path;
}

export class IncomingFiles {
  private readonly targets = new Map<string, MirrorTarget>();
  private readonly waiting: Set<string>;
  private settle!: { ok: () => void; fail: (e: Error) => void };
  /** Resolves once every file arrived and the frozen ones name their parents' copies; rejects when that failed or the move was abandoned. */
  readonly ready: Promise<void>;

  private constructor(private readonly files: readonly IncomingFile[]) {
    this.waiting = new Set(files.map((f) => f.stream));
    this.ready = new Promise<void>((ok, fail) => { this.settle = { ok, fail }; });
    this.ready.catch(() => undefined);
    if (files.length === 0) this.settle.ok();
  }

  /** The new files, created empty at their size (a name taken already refuses the move; the ones made are removed). */
  static async create(files: readonly IncomingFile[], snapshotDir: string): Promise<IncomingFiles> {
    const made = new IncomingFiles(files);
    try {
      for (const f of files) {
        const path = incomingPath(f, snapshotDir);
        await mkdir(dirname(path), { recursive: true });
        made.targets.set(f.stream, await createFileTarget(path, f.size));
      }
    } catch (e) {
      await made.discard();
      throw e;
    }
    return made;
  }

  /** The disk a stream of these files writes to (undefined: not one of them). */
  disk(stream: string): VirtualDisk | undefined {
    return this.targets.get(stream)?.disk;
  }

  /** The streams not finished yet. */
  pending(): string[] {
    return [...this.waiting];
  }

  /** A stream of these files finished (its data flushed); the last one closes them and re-points the frozen ones. */
  finished(stream: string): void {
    if (!this.waiting.delete(stream) || this.waiting.size > 0) return;
    void this.repoint().then(() => this.settle.ok(), (e: unknown) => this.settle.fail(e as Error));
  }

  private async repoint(): Promise<void> {
    for (const t of this.targets.values()) await t.disk.close();
    for (const f of this.files) if (f.kind === 'disk' && f.parent !== null) await setDiskParent(f.path, f.parent, false);
  }

  /** The move was abandoned: every file it created goes (a leaf still waiting for them gives up). */
  async discard(): Promise<void> {
    this.settle.fail(new VmhostError('MIGRATION_FAILED', 'the move was abandoned before its files arrived', {}));
    for (const t of this.targets.values()) await t.discard();
  }
}

/**
 * A drive's new leaf, a differencing disk over a parent that arrives as a file: created once
 * `files` are ready. The stream's hello needs its shape at once; its writes, trims and flushes
 * wait for the file, and fail if the files never come.
 */
export function leafAfterFiles(files: IncomingFiles, shape: DiskShape, path: string, parent: string): MirrorTarget {
  const disk = new LeafAfterFiles(shape, () => files.ready.then(() => createMirrorFile(shape, path, parent)));
  return { disk, path, discard: () => disk.discard() };
}

class LeafAfterFiles implements VirtualDisk {
  readonly format: DiskFormat;
  readonly type: DiskType;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly readOnly = false;
  private made: Promise<MirrorTarget> | undefined;
  private gone = false;

  constructor(shape: DiskShape, private readonly make: () => Promise<MirrorTarget>) {
    this.format = shape.format;
    this.type = shape.type;
    this.virtualSize = shape.virtualSize;
    this.logicalSectorSize = shape.logicalSectorSize;
    this.physicalSectorSize = shape.physicalSectorSize;
  }

  private target(): Promise<MirrorTarget> {
    if (this.gone) return Promise.reject(new VmhostError('MIGRATION_FAILED', 'the move was abandoned', {}));
    return (this.made ??= this.make());
  }

  write(buf: Uint8Array, offset: number): Promise<void> { return this.target().then((t) => t.disk.write(buf, offset)); }
  trim(offset: number, length: number): Promise<void> { return this.target().then((t) => t.disk.trim(offset, length)); }
  flush(): Promise<void> { return this.target().then((t) => t.disk.flush()); }
  read(): Promise<void> { return Promise.reject(this.writeOnly('read')); }
  blockStatus(): Promise<Extent[]> { return Promise.reject(this.writeOnly('block-status')); }

  async close(): Promise<void> {
    if (this.made) await (await this.made).disk.close();
  }

  async discard(): Promise<void> {
    this.gone = true;
    if (this.made) await this.made.then((t) => t.discard(), () => undefined);
  }

  private writeOnly(step: string): VmhostError {
    return new VmhostError('STORAGE_UNSUPPORTED', `an incoming disk is write-only (${step})`, { op: step });
  }
}
