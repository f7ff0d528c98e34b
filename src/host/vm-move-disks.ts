// Shared-nothing Move-VM, the disks' part on the source: where each disk goes on the
// destination (-DestinationStoragePath, -Vhds; refused before anything moves), where the frozen
// files of its chains go (`planChains`: the files checkpoints froze, beside their drive's leaf
// or in -DestinationStoragePath), and the copies: first the files sent as files (frozen disk
// files, checkpoint memory — the latter on shared storage too), then the mirrors that copy the
// running disks there (storage/mirror.ts into a storage/disk-stream.ts RemoteDisk; a leaf over
// copied parents takes only its own ranges) and hold them in step while the memory moves
// (vm-move-out.ts drives them).
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { RemoteDisk, sendFileData, type Mirror } from '../storage/index.ts';
import type { HardDrive } from './drives.ts';
import { invalid } from './invalid-argument.ts';
import type { VmConfig } from './vm-config.ts';
import type { PreparedMove } from './vm-move-in.ts';
import { VmStorage } from './vm-storage.ts';

/** Move-VM -IncludeStorage's parameters (paths on the destination, absolute). */
export interface StorageMoveRequest {
  destinationStoragePath?: string;
  vhds?: { SourceFilePath: string; DestinationFilePath: string }[];
  /** -RetainVhdCopiesOnSource: the source's files stay after a successful move. */
  retainSource?: boolean;
}

/**
 * Where each drive goes on the destination: its -Vhds entry, else DestinationStoragePath/<its file name>. Refused before anything moves.
 * A -Vhds entry may also name one of the `frozen` files of the VM's chains (a checkpoint's read-only parent): `planChains` places it.
 */
export function plannedDisks(vm: VmConfig, r: StorageMoveRequest, frozen: ReadonlySet<string> = new Set()): Record<string, string> {
  const dir = r.destinationStoragePath;
  if (dir !== undefined && !isAbsolute(dir)) throw invalid('DestinationStoragePath', `'${dir}' is not an absolute path`, vm.name);
  const byPath = new Map(vm.hardDrives.map((d) => [resolve(d.path), d]));
  const out: Record<string, string> = {};
  for (const v of r.vhds ?? []) {
    const d = byPath.get(resolve(v.SourceFilePath));
    if (!isAbsolute(v.DestinationFilePath)) throw invalid('Vhds', `DestinationFilePath '${v.DestinationFilePath}' is not an absolute path`, vm.name);
    if (!d && frozen.has(resolve(v.SourceFilePath))) continue;
    if (!d) throw invalid('Vhds', `VM '${vm.name}' has no disk ${v.SourceFilePath} (its disks: ${[...byPath.keys(), ...frozen].join(', ') || 'none'})`, vm.name);
    if (out[d.id] !== undefined) throw invalid('Vhds', `${v.SourceFilePath} is named twice`, vm.name);
    out[d.id] = resolve(v.DestinationFilePath);
  }
  for (const d of vm.hardDrives) {
    if (out[d.id] !== undefined) continue;
    if (dir === undefined) throw invalid('DestinationStoragePath', `Move-VM -IncludeStorage needs a destination for ${d.path}: give -DestinationStoragePath or a -Vhds entry for it`, vm.name);
    out[d.id] = join(resolve(dir), basename(d.path));
  }
  const seen = new Set<string>(named(r, frozen).values());
  for (const p of Object.values(out)) {
    if (seen.has(p)) throw invalid(r.vhds?.length ? 'Vhds' : 'DestinationStoragePath', `two disks would both become ${p}: name them apart with -Vhds`, vm.name);
    seen.add(p);
  }
  return out;
}

/** The -Vhds entries that name frozen files: source → destination, both resolved. */
function named(r: StorageMoveRequest, frozen: ReadonlySet<string>): Map<string, string> {
  return new Map((r.vhds ?? []).map((v) => [resolve(v.SourceFilePath), resolve(v.DestinationFilePath)] as const).filter(([f]) => frozen.has(f)));
}

/** Where a shared-nothing move puts the frozen files of the VM's chains, and what each file's parent becomes. */
export interface ChainPlan {
  /** Frozen files (every file of the chains but the drives' leaves), parents first, with their destination and their parent's. */
  frozen: Array<{ from: string; to: string; parent: string | null }>;
  /** Per drive id whose leaf is a differencing disk: its parent's copy on the destination. */
  leafParents: Record<string, string>;
  /** A disk file's path on the destination (the leaves' from `plannedDisks`). */
  map(path: string): string;
}

/** A chain of disk files, the leaf first, and the drive it is (or was, for a checkpoint's) in. */
export interface DriveChain { driveId: string; chain: string[] }

/**
 * `drives`: the chains of the VM's drives, whose leaves go where `leaves` says (plannedDisks);
 * `checkpoints`: its checkpoints' drives' (each names the file it froze). A frozen file goes to
 * its -Vhds entry, else -DestinationStoragePath, else beside the destination of the drive whose chain holds it.
 */
export function planChains(vm: string, leaves: Record<string, string>, drives: DriveChain[], checkpoints: DriveChain[], r: StorageMoveRequest): ChainPlan {
  const to = new Map<string, string>();
  for (const c of drives) to.set(c.chain[0]!, leaves[c.driveId]!);
  const chains = [...drives, ...checkpoints];
  const parentOf = new Map<string, string | null>();
  const order: string[] = [];
  const taken = new Set(to.values());
  const chosen = named(r, new Set(chains.flatMap((c) => c.chain.map((f) => resolve(f)))));
  for (const c of chains) {
    c.chain.forEach((f, i) => parentOf.set(f, c.chain[i + 1] ?? null));
    for (const f of [...c.chain].reverse()) {
      if (to.has(f)) continue;
      const asked = chosen.get(resolve(f));
      if (asked !== undefined) {
        if (taken.has(asked)) throw invalid('Vhds', `two of the VM's disk files would both become ${asked}`, vm);
        taken.add(asked);
        to.set(f, asked);
        order.push(f);
        continue;
      }
      const beside = leaves[c.driveId];
      const dir = r.destinationStoragePath !== undefined ? resolve(r.destinationStoragePath) : beside !== undefined ? dirname(beside) : undefined;
      if (dir === undefined) throw invalid('DestinationStoragePath', `the checkpoint file ${f} belongs to a drive the VM no longer has: give -DestinationStoragePath for it`, vm);
      const dest = join(dir, basename(f));
      if (taken.has(dest)) throw invalid('DestinationStoragePath', `two of the VM's disk files would both become ${dest}: name the drives apart with -Vhds`, vm);
      taken.add(dest);
      to.set(f, dest);
      order.push(f);
    }
  }
  const map = (p: string): string => to.get(p) ?? p;
  const leafParents: Record<string, string> = {};
  for (const c of drives) if (c.chain[1] !== undefined) leafParents[c.driveId] = map(c.chain[1]);
  return {
    frozen: order.map((f) => {
      const p = parentOf.get(f) ?? null;
      return { from: f, to: map(f), parent: p === null ? null : map(p) };
    }),
    leafParents, map,
  };
}

/**
 * How far the copies are: a fraction of the bytes known so far, and while the files go, which
 * one and its bytes the destination has acknowledged (a job's StatusDescription).
 */
export type CopyProgress = (fraction: number, status?: string) => void;

const mib = (n: number): number => Math.floor(n / 1048576);

/** A file sent as a file before the mirrors, over the disk stream `stream`. */
export interface OutgoingFile { from: string; stream: string }

/**
 * A move's copies: first the files sent as files (frozen disk files, checkpoint memory), then
 * the mirrors, one per drive, into the destination's new files. They stay
 * in step (guest writes to both hosts) from the moment all are copied until `finish`, when the
 * VM has stopped: each target is then flushed on the destination and its export stops.
 */
export class DiskCopies {
  private readonly mirrors: Mirror[] = [];
  private release!: () => void;
  private readonly held = new Promise<void>((r) => { this.release = r; });

  /** `drives`: those mirrored (none on shared storage); `files`: sent before them. */
  constructor(private readonly storage: VmStorage, private readonly drives: readonly HardDrive[], private readonly files: readonly OutgoingFile[] = []) {}

  /**
   * Send the files, then start every mirror; resolves once all are in step, rejects at the first
   * failure (`failed` is aborted with it). `from`: this host's address on the migration network.
   */
  async start(prepared: PreparedMove, host: string, from: string | undefined, progress: CopyProgress, failed: AbortController): Promise<void> {
    if (prepared.DiskPort === undefined) throw new VmhostError('MIGRATION_FAILED', 'the destination answered no disk stream port for a move with files to copy', {});
    const port = prepared.DiskPort;
    const secret = Buffer.from(prepared.Secret, 'base64');
    const bytes = new Map<string, [number, number]>();
    const report = (key: string, copied: number, total: number, status?: string) => {
      bytes.set(key, [copied, total]);
      let c = 0, t = 0;
      for (const [x, y] of bytes.values()) { c += x; t += y; }
      progress(t > 0 ? c / t : 0, status);
    };
    const inStep: Promise<void>[] = [];
    const stopped = new Promise<never>((_, reject) => {
      if (failed.signal.aborted) reject(failed.signal.reason);
      failed.signal.addEventListener('abort', () => reject(failed.signal.reason), { once: true });
    });
    stopped.catch(() => undefined);
    // The destination creates a drive's leaf over its parents only once every file is there.
    for (const [i, f] of this.files.entries()) {
      const remote = await RemoteDisk.connect(host, port, prepared.Fingerprint, secret, f.stream, from);
      try {
        // Stop-Job or a failure stops the copy at its next chunk.
        await sendFileData(f.from, async (b, at) => {
          failed.signal.throwIfAborted();
          await remote.write(b, at);
        }, (c, t) => report(f.stream, c, t, `Copying file ${i + 1} of ${this.files.length} (${basename(f.from)}): ${mib(c)} of ${mib(t)} MiB arrived`));
        failed.signal.throwIfAborted();
        await remote.finish();
      } finally {
        await remote.close();
      }
    }
    for (const d of this.drives) {
      const remote = await RemoteDisk.connect(host, port, prepared.Fingerprint, secret, d.id, from);
      let synced!: () => void;
      inStep.push(new Promise<void>((r) => { synced = r; }));
      let mirror: Mirror;
      try {
        const served = this.storage.server.get(VmStorage.exportName(d))?.disk;
        mirror = await this.storage.server.mirror(VmStorage.exportName(d), {
          target: { disk: remote, discard: () => remote.close() },
          // Over copies of its parents a VHDX leaf sends only its own ranges (a VHD one its chain flattened, as Move-VMStorage does).
          ranges: remote.type === 'Differencing' && served?.format === 'VHDX' ? 'own' : 'all',
          progress: (copied, total) => report(d.id, copied, total),
          inSync: () => { synced(); return this.held; },
          commit: () => remote.finish(),
        });
      } catch (e) {
        await remote.close();
        throw e;
      }
      this.mirrors.push(mirror);
      mirror.done.catch((e: unknown) => { if (!failed.signal.aborted) failed.abort(e); });
    }
    await Promise.race([Promise.all(inStep), stopped]);
  }

  /** The VM has stopped: every mirror commits (the destination flushes and keeps its copy). */
  async finish(): Promise<void> {
    this.release();
    await Promise.all(this.mirrors.map((m) => m.done));
  }

  /** Mirrors stopped, and every drive served from this host's own files again (a finished mirror's export served the remote copy). */
  async abandon(): Promise<void> {
    for (const m of this.mirrors) await m.cancel('the move was abandoned');
    for (const d of this.drives) {
      const served = this.storage.server.get(VmStorage.exportName(d));
      if (served?.disk instanceof RemoteDisk) await this.storage.stopDrive(d);
      if (!this.storage.server.get(VmStorage.exportName(d))) await this.storage.serveDrive(d);
    }
  }
}
