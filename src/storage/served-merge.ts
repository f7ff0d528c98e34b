// Live merge: fold one file of a served VHDX chain into its parent while the guest keeps
// reading and writing (Remove-VMSnapshot of a running VM). Two shapes, one code path:
//   - the child is the served leaf (C → P): guest writes go to both C and P during the copy,
//     so C stays a complete disk until the end, and the export then continues on P alone;
//   - the child is a frozen layer (B → A → P): nothing writes A or P but the copy, the
//     layer above A is re-linked to P at the end and A leaves the chain.
// The copy itself is the offline merge's (vhd/merge.ts: mergeRanges, CopyDown), walked one
// chunk at a time under a ChunkGate, so a guest write never races the copy of its chunk.
//
// Crash safety (a SIGKILL anywhere leaves every file consistent and no acknowledged write
// lost): P is only ever written where C/A define data, so every chain through the child reads
// the same at every moment; the child's locator carries P's next DataWriteGuid as
// parent_linkage2 before P is first written (MS-VHDX's provision for merges), so the chain
// still links after a crash; in the leaf shape the caller's `commit` (the VM's drive names P
// from then on) runs with the export paused and P flushed, before any write reaches P alone.
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError, isVmhostError } from '../common/errors.ts';
import { CopyDown, mergeRanges, type VhdxDisk } from '../vhd/index.ts';
import { prepareMergeLinkage, relinkFile } from './merge-linkage.ts';
import { relativeLocator } from './disk-args.ts';
import { isVhdx, leafFile } from './disk-info.ts';
import { openDiskFile, type OpenDiskOptions } from './open-disk.ts';
import { reopenChain, type Reopened } from './chain-reopen.ts';
import { ChunkGate } from './chunk-gate.ts';
import { localVolumeOps, type VolumeOps } from './volume-ops.ts';
import { diskStep, type IoRequest, type IoResult, type Next, type Pipeline, type Stage } from './pipeline.ts';

/** Guest writes to a chunk wait while it is copied: 1 MiB keeps that wait to a few ms. */
const CHUNK = 1024 * 1024;

export interface ServedMergeOptions {
  /** The file merged away: the served leaf or a layer under it. */
  child: string;
  /** The child's parent in the chain: it takes the child's data. */
  target: string;
  /** Bytes copied of the total, after each chunk. */
  progress?(done: number, total: number): void;
  /**
   * Runs with the export paused, every range in the target and the target flushed, before
   * the child leaves the chain: the caller records that the target replaces the child (a
   * VM's drive, checkpoint records). A throw abandons the merge; the chain stays whole.
   */
  commit(): Promise<void>;
  /**
   * Aborted: the merge stops after the chunk being copied (never once the commit has begun)
   * with STORAGE_MERGE_PAUSED, the chain whole. The files are left as a crash would leave them,
   * so the same merge, live or offline, picks up from them (the VM stopping meanwhile).
   */
  signal?: AbortSignal;
  /** Passed on to the files reopened (host-file.ts). */
  syncMaxBytes?: number;
  /** Deletes the merged child at the end (volume-ops.ts: a Cluster Shared Volume's coordinator does it); default: this process. */
  ops?: VolumeOps;
}

function mergeError(message: string, ctx: Record<string, string | number | undefined>, cause?: unknown): VmhostError {
  return new VmhostError('STORAGE_MERGE_FAILED', message, { op: 'live-merge', ...ctx }, cause === undefined ? undefined : { cause });
}

function paused(ctx: Record<string, string>, done: number, total: number): VmhostError {
  return new VmhostError('STORAGE_MERGE_PAUSED', `merging ${ctx.child} into ${ctx.target} paused at ${done} of ${total} bytes; the chain is whole`, { op: 'live-merge', ...ctx });
}

/** The layers of an open chain, leaf first; every one must be a VHDX. */
function vhdxLayers(d: VirtualDisk): VhdxDisk[] {
  const out: VhdxDisk[] = [];
  for (let l: VirtualDisk | undefined = d; l; l = (l as VhdxDisk).parent) {
    if (!isVhdx(l)) throw new VmhostError('STORAGE_UNSUPPORTED', `live merge works on VHDX chains; ${leafFile(l)?.name ?? 'a layer'} is ${l.format}: turn the VM off to merge it`, { op: 'live-merge' });
    out.push(l);
  }
  return out;
}

/** Close `current` and open its leaf again with `opts`, running `between` while no file of the chain is open (chain-reopen.ts). */
function reopenLeaf(current: VirtualDisk, between: () => Promise<void>, opts: OpenDiskOptions): Promise<Reopened> {
  const leaf = resolve(leafFile(current)?.name ?? '');
  return reopenChain(current, async () => {
    await between();
    return openDiskFile(leaf, { ...opts, leafLock: 'shared' });
  }, opts.syncMaxBytes === undefined ? {} : { syncMaxBytes: opts.syncMaxBytes }, 'live-merge');
}

/**
 * The leaf shape's stage: guest writes go to the served chain (the child) and to the target,
 * under the gate; trims are dropped (NBD lets a server ignore them, and a trimmed differencing
 * block would read differently in the two files). A target failure breaks the merge, never
 * the guest's write: the child alone is complete.
 */
class MergeStage implements Stage {
  readonly name = 'merge';
  broken: unknown;

  constructor(private readonly gate: ChunkGate, private readonly target: VhdxDisk) {}

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    switch (req.kind) {
      case 'write':
      case 'write-zeroes':
        return this.gate.write(req.offset, req.length, async () => {
          const [r] = await Promise.all([next(req), this.mirror(req)]);
          return r;
        });
      case 'flush':
        return Promise.all([next(req), this.mirror(req)]).then(([r]) => r);
      case 'trim':
        return Promise.resolve({});
      default:
        return next(req);
    }
  }

  private async mirror(req: IoRequest): Promise<void> {
    if (this.broken !== undefined) return;
    try {
      await diskStep(this.target, req);
    } catch (e) {
      this.broken = e;
    }
  }
}

/**
 * Merge `child` into `target` under a served pipeline (see the file comment). Resolves with
 * the file the export serves afterwards (the target in the leaf shape, else the same leaf);
 * the child's file is deleted. Rejects with the chain still whole (the child in it).
 */
export async function mergeServed(pipeline: Pipeline, opts: ServedMergeOptions): Promise<string> {
  const childPath = await realpath(opts.child);
  const targetPath = await realpath(opts.target);
  const ctx = { child: childPath, target: targetPath };
  const paths = await Promise.all(vhdxLayers(pipeline.disk).map((l) => realpath(l.file.name)));
  const at = paths.indexOf(childPath);
  if (at < 0) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${childPath} is not a file of the served chain (${paths.join(' → ')})`, { op: 'live-merge', ...ctx });
  if (paths[at + 1] !== targetPath) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${targetPath} is not the parent of ${childPath} in the served chain`, { op: 'live-merge', ...ctx });
  const leafShape = at === 0;
  const reopen: OpenDiskOptions = opts.syncMaxBytes === undefined ? {} : { syncMaxBytes: opts.syncMaxBytes };
  // 1. The target opened writable, the child linking to it before and after its first write.
  let failed: unknown;
  let nextGuid = '';
  await pipeline.swapDisk(async (current) => {
    const r = await reopenLeaf(current, async () => { nextGuid = await prepareMergeLinkage(childPath, targetPath, 'shared'); }, { ...reopen, writableAncestor: targetPath });
    if (r.error !== undefined) failed = r.error;
    else vhdxLayers(r.disk)[at + 1]!.presetDataWriteGuid(nextGuid);
    return r.disk;
  });
  if (failed !== undefined) throw mergeError(`could not start merging ${childPath} into ${targetPath}: ${(failed as Error).message}`, ctx, failed);

  // 2. The copy, beside the guest's I/O.
  const layers = vhdxLayers(pipeline.disk);
  const child = layers[at]!, target = layers[at + 1]!;
  const gate = leafShape ? new ChunkGate(CHUNK) : undefined;
  const stage = gate ? new MergeStage(gate, target) : undefined;
  if (stage) pipeline.add(stage);
  try {
    const ranges = await mergeRanges([child]);
    const total = ranges.reduce((n, [s, e]) => n + e - s, 0);
    let done = 0;
    const copy = new CopyDown(child, target, CHUNK);
    for (const [s, e] of ranges) {
      for (let o = s; o < e;) {
        const end = Math.min(e, (Math.floor(o / CHUNK) + 1) * CHUNK);
        const piece = () => copy.range(o, end - o);
        await (gate ? gate.copy(Math.floor(o / CHUNK), piece) : piece());
        if (stage?.broken !== undefined) throw stage.broken;
        done += end - o;
        opts.progress?.(done, total);
        o = end;
        if (opts.signal?.aborted) throw paused(ctx, done, total);
      }
    }
    await target.flush();

    // 3. The child leaves the chain, with the export paused.
    let result = '';
    await pipeline.swapDisk(async (current) => {
      const now = vhdxLayers(current);
      if (stage) pipeline.remove(stage.name);
      if (stage?.broken !== undefined) throw stage.broken;
      await now[at + 1]!.flush();
      if (leafShape) {
        await opts.commit();
        await now[at]!.closeSelf();
        result = targetPath;
        return now[at + 1]!;
      }
      const above = resolve(now[at - 1]!.file.name);
      const guid = now[at + 1]!.dataWriteGuid;
      const r = await reopenLeaf(current, () => relinkFile(above, { relativePath: relativeLocator(above, targetPath), absoluteWin32Path: targetPath, parentLinkage: guid }, 'shared'), reopen);
      if (r.error !== undefined) failed = r.error;
      else {
        result = resolve(leafFile(r.disk)!.name);
        try {
          await opts.commit();
        } catch (e) {
          failed = e;
        }
      }
      return r.disk;
    });
    if (failed !== undefined) throw failed;
    await (opts.ops ?? localVolumeOps).run({ Op: 'remove', Path: childPath });
    return result;
  } catch (e) {
    if (isVmhostError(e, 'STORAGE_MERGE_PAUSED')) throw e;
    throw mergeError(`merging ${childPath} into ${targetPath} failed: ${(e as Error).message}`, ctx, e);
  } finally {
    if (stage) pipeline.remove(stage.name);
  }
}
