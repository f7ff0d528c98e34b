// Shared-nothing Move-VM, the disks' part on the source: where each disk goes on the
// destination (-DestinationStoragePath, -Vhds; refused before anything moves), and the mirrors
// that copy the running disks there (storage/mirror.ts into a storage/disk-stream.ts RemoteDisk)
// and hold them in step while the memory moves (vm-move-out.ts drives them).
import { basename, isAbsolute, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { RemoteDisk, type Mirror } from '../storage/index.ts';
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

/** Where each drive goes on the destination: its -Vhds entry, else DestinationStoragePath/<its file name>. Refused before anything moves. */
export function plannedDisks(vm: VmConfig, r: StorageMoveRequest): Record<string, string> {
  const dir = r.destinationStoragePath;
  if (dir !== undefined && !isAbsolute(dir)) throw invalid('DestinationStoragePath', `'${dir}' is not an absolute path`, vm.name);
  const byPath = new Map(vm.hardDrives.map((d) => [resolve(d.path), d]));
  const out: Record<string, string> = {};
  for (const v of r.vhds ?? []) {
    const d = byPath.get(resolve(v.SourceFilePath));
    if (!d) throw invalid('Vhds', `VM '${vm.name}' has no disk ${v.SourceFilePath} (its disks: ${[...byPath.keys()].join(', ') || 'none'})`, vm.name);
    if (!isAbsolute(v.DestinationFilePath)) throw invalid('Vhds', `DestinationFilePath '${v.DestinationFilePath}' is not an absolute path`, vm.name);
    if (out[d.id] !== undefined) throw invalid('Vhds', `${v.SourceFilePath} is named twice`, vm.name);
    out[d.id] = resolve(v.DestinationFilePath);
  }
  for (const d of vm.hardDrives) {
    if (out[d.id] !== undefined) continue;
    if (dir === undefined) throw invalid('DestinationStoragePath', `Move-VM -IncludeStorage needs a destination for ${d.path}: give -DestinationStoragePath or a -Vhds entry for it`, vm.name);
    out[d.id] = join(resolve(dir), basename(d.path));
  }
  const seen = new Set<string>();
  for (const p of Object.values(out)) {
    if (seen.has(p)) throw invalid(r.vhds?.length ? 'Vhds' : 'DestinationStoragePath', `two disks would both become ${p}: name them apart with -Vhds`, vm.name);
    seen.add(p);
  }
  return out;
}

/**
 * A shared-nothing move's mirrors, one per drive, into the destination's new files. They stay
 * in step (guest writes to both hosts) from the moment all are copied until `finish`, when the
 * VM has stopped: each target is then flushed on the destination and its export stops.
 */
export class DiskCopies {
  private readonly mirrors: Mirror[] = [];
  private release!: () => void;
  private readonly held = new Promise<void>((r) => { this.release = r; });

  constructor(private readonly storage: VmStorage, private readonly drives: readonly HardDrive[]) {}

  /** Start every mirror; resolves once all are in step, rejects at the first failure (`failed` is aborted with it). */
  async start(prepared: PreparedMove, host: string, progress: (fraction: number) => void, failed: AbortController): Promise<void> {
    if (prepared.DiskPort === undefined) throw new VmhostError('MIGRATION_FAILED', 'the destination answered no disk stream port for a move with its storage', {});
    const secret = Buffer.from(prepared.Secret, 'base64');
    const bytes = new Map<string, [number, number]>();
    const inStep: Promise<void>[] = [];
    const stopped = new Promise<never>((_, reject) => {
      if (failed.signal.aborted) reject(failed.signal.reason);
      failed.signal.addEventListener('abort', () => reject(failed.signal.reason), { once: true });
    });
    stopped.catch(() => undefined);
    for (const d of this.drives) {
      const remote = await RemoteDisk.connect(host, prepared.DiskPort, prepared.Fingerprint, secret, d.id);
      let synced!: () => void;
      inStep.push(new Promise<void>((r) => { synced = r; }));
      let mirror: Mirror;
      try {
        mirror = await this.storage.server.mirror(VmStorage.exportName(d), {
          target: { disk: remote, discard: () => remote.close() },
          ranges: 'all',
          progress: (copied, total) => {
            bytes.set(d.id, [copied, total]);
            let c = 0, t = 0;
            for (const [x, y] of bytes.values()) { c += x; t += y; }
            progress(t > 0 ? c / t : 0);
          },
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
