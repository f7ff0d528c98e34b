// Move-VM, the source's side (shared storage: the disks stay where both hosts reach them).
// With the VM Migrating under its lock: the destination prepares (vm-move-in.ts) on the ticket
// the caller got from it, QEMU pre-copies memory through the relay (migration-stream.ts) until
// its last round stops the VM, this host stops serving the disks (their locks released), and
// the destination commits — it opens the disks and resumes the VM. Until the commit answers
// the source QEMU is kept, paused, so any failure (or Stop-Job) resumes the VM here untouched;
// a commit whose answer is lost is asked about again (GET the move) and, while nobody can say,
// the VM stays paused here rather than risk running twice.
//
// Shared-nothing (-IncludeStorage): disks first, then memory. After the prepare (the destination
// has created empty files), each running disk is mirrored by this host's block server into a
// RemoteDisk (storage/disk-stream.ts) — the walker copies what is allocated, guest writes to
// copied chunks go to both hosts — and once every disk is in step the memory pre-copy runs as
// above with the mirrors held in step. When QEMU has stopped, each mirror finishes (the
// destination flushed its copy) and the exports stop; the destination's commit opens its own
// copies. Until that commit the VM's own files here are complete and untouched as the
// authority: any failure cancels the mirrors (the destination then deletes its partial files)
// and the VM runs on from them. They are deleted only after the commit (unless
// -RetainVhdCopiesOnSource). Checkpoints are still refused: a chain would need its frozen
// parents copied too.
import { readFile, rm } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { RemoteDisk, type Mirror } from '../storage/index.ts';
import type { LiveMigrationResult, MigrationInfo } from '../qemu/index.ts';
import type { EventLevel } from './events.ts';
import type { Job, JobHandle, JobManager } from './jobs.ts';
import { askOutcome, httpDestination, type Destination } from './move-destination.ts';
import { tuningFor, type MigrationSettings } from './migration-settings.ts';
import { sourceRelay, moveSocketDir } from './migration-stream.ts';
import { MoveQueue } from './move-queue.ts';
import type { VmEntry } from './vm-entry.ts';
import type { LockHeld } from './vm-lock.ts';
import type { VmNetwork } from './vm-network.ts';
import type { VmRuntime } from './vm-runtime.ts';
import { invalid } from './invalid-argument.ts';
import type { HardDrive } from './drives.ts';
import type { VmConfig } from './vm-config.ts';
import { assertLegal } from './vm-state.ts';
import { VmStorage } from './vm-storage.ts';
import type { MovePrepare, PreparedMove } from './vm-move-in.ts';
import type { VmView } from './vm-view.ts';

export interface MoveRequest {
  /** HOST:PORT of the destination daemon. */
  destination: string;
  /** Issued by the destination to the caller (POST /migrations/tickets there). */
  ticket: string;
  /** Shared-nothing: where the disks go on the destination. */
  storage?: StorageMoveRequest;
  /** -SnapshotFilePath: the VM's checkpoint folder on the destination (absolute). */
  snapshotFilePath?: string;
}

/** Move-VM -IncludeStorage's parameters (paths on the destination, absolute). */
export interface StorageMoveRequest {
  destinationStoragePath?: string;
  vhds?: { SourceFilePath: string; DestinationFilePath: string }[];
  /** -RetainVhdCopiesOnSource: the source's files stay after a successful move. */
  retainSource?: boolean;
}

/** What the source side needs of its host. */
export interface MoveOutHost {
  readonly storage: VmStorage;
  readonly network: VmNetwork;
  readonly jobs: JobManager;
  /** Where a move's socket dir goes, and QEMU's group when it runs as its own user. */
  readonly socketRoot: string;
  readonly qemuGroup: number | undefined;
  readonly computerName: string;
  resolve(nameOrId: string): VmEntry;
  settings(): MigrationSettings;
  hasCheckpoints(e: VmEntry): boolean;
  /** The VM's running QEMU (INVALID_STATE when it has none). */
  live(e: VmEntry): VmRuntime;
  /** Wait until the exit of the VM's QEMU has been handled. */
  settleExit(e: VmEntry): Promise<void>;
  /** The VM is no longer registered here (its entry and checkpoint records dropped). */
  forget(e: VmEntry): void;
  isRegistered(e: VmEntry): boolean;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
}

/** What one move does to the VM here, as the protocol (`moveOut`) calls it. */
interface MoveOutVm {
  readonly name: string;
  readonly id: string;
  /** The prepare body: config, disk geometry, NVRAM, counters. */
  describe(): Promise<MovePrepare>;
  /** Shared-nothing: mirror every disk to the destination; resolves once all are in step (they stay so until released). */
  copyDisks?(prepared: PreparedMove, host: string, progress: (fraction: number) => void, failed: AbortController): Promise<void>;
  /** Before the commit, on any failure: stop the mirrors (the destination drops its copies); this host's files go on. */
  abandonCopies(): Promise<void>;
  uptimeMs(): number;
  migrate(uri: string, onProgress: (i: MigrationInfo) => void, signal: AbortSignal): Promise<unknown>;
  /** Stop serving the disks (the source QEMU is inactive): the destination may open them. */
  releaseDisks(): Promise<void>;
  /** Undo: serve the disks again and resume the source QEMU. */
  resumeHere(): Promise<void>;
  /** Done: the source QEMU quits and the VM leaves this host. */
  leave(): Promise<void>;
}

export class MoveOut {
  /** -MaximumVirtualMachineMigrations: moves beyond it wait their turn (Queued). */
  readonly queue: MoveQueue;

  constructor(private readonly host: MoveOutHost) {
    this.queue = new MoveQueue(host.settings().MaximumVirtualMachineMigrations);
  }

  /**
   * Move-VM (shared storage) as a job: Queued while -MaximumVirtualMachineMigrations moves run,
   * cancellable (Stop-Job) until the destination commits; the VM is Migrating meanwhile.
   */
  move(nameOrId: string, req: MoveRequest): { job: Job; result: Promise<VmView> } {
    const e = this.host.resolve(nameOrId);
    assertLegal('Move', e.state, e.config.name);
    const settings = this.host.settings();
    if (!settings.VirtualMachineMigrationEnabled) {
      throw new VmhostError('MIGRATION_DISABLED', 'Virtual machine migration is disabled on this host: run Enable-VMMigration', { vm: e.config.name });
    }
    this.refuseUnmovable(e);
    const moved = req.storage ? plannedDisks(e.config, req.storage) : undefined;
    if (req.snapshotFilePath !== undefined && !isAbsolute(req.snapshotFilePath)) throw invalid('SnapshotFilePath', `'${req.snapshotFilePath}' is not an absolute path`, e.config.name);
    // Measured here (bench/live-migration.ts): QEMU 7.2's multifd through the relay breaks at once, and the failed
    // migration leaves the source QEMU unable to migrate again ("duplicate yank instance"): refused until that is solved.
    if (settings.VirtualMachineMigrationPerformanceOption !== 'TCPIP') {
      throw new VmhostError('MIGRATION_UNSUPPORTED',
        `Move-VM with -VirtualMachineMigrationPerformanceOption ${settings.VirtualMachineMigrationPerformanceOption} (multifd) is not supported yet: Set-VMHost -VirtualMachineMigrationPerformanceOption TCPIP`, { vm: e.config.name });
    }
    const dest = httpDestination(req.destination, req.ticket);
    return this.host.jobs.run('Move-VM', { id: e.config.id, name: e.config.name }, async (h) => {
      const release = await this.queue.acquire(h.signal);
      try {
        h.started();
        return await e.lock.run(async (held) => {
          assertLegal('Move', e.state, e.config.name);
          this.refuseUnmovable(e);
          const rt = this.host.live(e);
          e.machine.transition(held, 'Migrating');
          try {
            return await moveOut(this.vmFor(e, held, rt, dest, req, moved), dest, this.host, h);
          } catch (err) {
            if (this.host.isRegistered(e) && e.state === 'Migrating') await this.settleFailed(e, held, rt, err);
            throw err;
          }
        });
      } finally {
        release();
      }
    }, { queued: true, cancellable: true });
  }

  /** What a move cannot carry yet, refused before anything starts. */
  private refuseUnmovable(e: VmEntry): void {
    if (this.host.hasCheckpoints(e)) {
      throw new VmhostError('MIGRATION_UNSUPPORTED', `VM '${e.config.name}' has checkpoints, which Move-VM cannot carry yet: remove them (Remove-VMSnapshot) or use Export-VM/Import-VM`, { vm: e.config.name });
    }
  }

  private vmFor(e: VmEntry, held: LockHeld, rt: VmRuntime, dest: Destination, req: MoveRequest, moved: Record<string, string> | undefined): MoveOutVm {
    const { storage } = this.host;
    const performance = this.host.settings().VirtualMachineMigrationPerformanceOption;
    const t0 = Date.now();
    let stats: LiveMigrationResult | undefined;
    const copies = new DiskCopies(storage, e.config.hardDrives);
    const sourceFiles = e.config.hardDrives.map((d) => d.path);
    return {
      name: e.config.name,
      id: e.config.id,
      describe: async () => ({ ...(await this.describe(e, rt, performance, moved)), ...(req.snapshotFilePath ? { snapshotFilePath: req.snapshotFilePath } : {}) }),
      ...(moved ? { copyDisks: (prepared: PreparedMove, host: string, progress: (f: number) => void, failed: AbortController) => copies.start(prepared, host, progress, failed) } : {}),
      abandonCopies: () => copies.abandon(),
      uptimeMs: () => e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0),
      migrate: async (uri, onProgress, signal) => { stats = await rt.migrateTo(uri, tuningFor(performance), onProgress, signal); },
      releaseDisks: async () => {
        await copies.finish();
        for (const d of e.config.hardDrives) await storage.stopDrive(d);
      },
      resumeHere: async () => {
        await copies.abandon();
        for (const d of e.config.hardDrives) await storage.serveDrive(d);
        await rt.resume();
      },
      leave: async () => {
        await this.leave(e, held, `${dest.host} (QEMU: ${stats?.totalTimeMs ?? '?'} ms, downtime ${stats?.downtimeMs ?? '?'} ms, ${Math.round((stats?.transferredBytes ?? 0) / 1048576)} MiB; ${Date.now() - t0} ms in all)`);
        if (moved && !req.storage?.retainSource) {
          // The destination runs the VM from its own copies now: these files are nobody's.
          for (const f of sourceFiles) await rm(f, { force: true });
          this.host.event('Information', 'VM_MOVED_OUT_FILES_REMOVED', `The source's disk files of VM '${e.config.name}' were removed after its move: ${sourceFiles.join(', ')}`);
        }
      },
    };
  }

  /** The prepare body: the VM as the destination must recreate it, its disks' geometry, NVRAM, counters. */
  private async describe(e: VmEntry, rt: VmRuntime, performance: MovePrepare['performance'], moved: Record<string, string> | undefined): Promise<MovePrepare> {
    const disks: MovePrepare['disks'] = {};
    const chs: MovePrepare['chs'] = {};
    const storage: NonNullable<MovePrepare['storage']> = {};
    for (const d of e.config.hardDrives) {
      disks[d.id] = this.host.storage.geometry(d);
      chs[d.id] = await rt.diskGeometry(VmStorage.diskId(d));
      const to = moved?.[d.id];
      // A VHD stays a VHD; VHDX and raw disks arrive as dynamic VHDX (only what holds data is copied).
      if (to !== undefined) storage[d.id] = { path: to, format: this.host.storage.server.get(VmStorage.exportName(d))?.disk.format === 'VHD' ? 'VHD' : 'VHDX' };
    }
    const vars = e.config.generation === 2 ? await readFile(e.config.secureBoot ? e.paths.firmwareVarsSecure : e.paths.firmwareVars).catch(() => undefined) : undefined;
    return {
      config: e.config, disks, chs, firmwareVars: vars?.toString('base64'), boot: e.bootSource ?? 'Firmware',
      counters: this.host.network.portCounters(e), performance, sourceHost: this.host.computerName,
      ...(moved ? { storage } : {}),
    };
  }

  /** The move failed before the destination took the VM: it runs on here; an unknown outcome leaves it paused. */
  private async settleFailed(e: VmEntry, held: LockHeld, rt: VmRuntime, err: unknown): Promise<void> {
    if (err instanceof VmhostError && err.code === 'MIGRATION_OUTCOME_UNKNOWN') {
      e.machine.transition(held, 'Paused');
      this.host.event('Error', 'VM_MOVE_OUTCOME_UNKNOWN', err.message, e);
      return;
    }
    const status = await rt.status().catch(() => 'other');
    if (status === 'paused') await rt.resume().catch(() => undefined);
    e.machine.transition(held, 'Running');
    this.host.event('Warning', 'VM_MOVE_FAILED', `Move-VM failed; the VM keeps running here: ${(err as Error).message}`, e);
  }

  /** The destination has the VM: QEMU here quits and the VM leaves this host's registry (its disks stay, shared). */
  private async leave(e: VmEntry, held: LockHeld, to: string): Promise<void> {
    const rt = e.runtime;
    if (rt) {
      e.expectedExit = `moved to ${to.replace(/ \(.*$/, '')}`;
      await rt.quit().catch(() => rt.kill());
      await rt.exited;
      await this.host.settleExit(e);
    }
    if (e.state !== 'Off') e.machine.transition(held, 'Off');
    await this.host.network.forgetVm(e);
    await rm(e.paths.dir, { recursive: true, force: true });
    await rm(e.paths.sockets, { recursive: true, force: true });
    this.host.forget(e);
    this.host.event('Information', 'VM_MOVED_OUT', `VM moved to ${to}`, e);
  }
}

/** Progress text of a running pre-copy: what Get-Job shows. */
export function progressText(i: MigrationInfo, phase: string): string {
  const r = i.ram;
  const mb = (n: number | undefined) => `${Math.round((n ?? 0) / 1048576)} MiB`;
  const parts = [phase, `${mb(r?.transferred)} sent`];
  if (r && 'dirty-pages-rate' in r) parts.push(`dirty ${Math.round(((r as { 'dirty-pages-rate': number })['dirty-pages-rate'] * 4096) / 1048576)} MiB/s`);
  if (i['expected-downtime'] !== undefined) parts.push(`expected downtime ${i['expected-downtime']} ms`);
  return parts.join(', ');
}

/** The move itself (the caller holds the VM Migrating under its lock and a queue slot). */
async function moveOut(vm: MoveOutVm, dest: Destination, host: Pick<MoveOutHost, 'socketRoot' | 'qemuGroup'>, h: JobHandle): Promise<VmView> {
  h.progress(2, 'Preparing the destination');
  const prepared = await dest.prepare(await vm.describe());
  const destHost = dest.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  // Stop-Job, or a mirror that fails (its target is gone), stops the move at once, whatever phase it is in.
  const failed = new AbortController();
  const cancel = (): void => failed.abort(new VmhostError('JOB_CANCELLED', `the move of VM '${vm.name}' was cancelled (Stop-Job); it keeps running here`, { vm: vm.name }));
  if (h.signal.aborted) cancel();
  h.signal.addEventListener('abort', cancel, { once: true });
  const signal = failed.signal;
  const base = vm.copyDisks ? 50 : 5;
  try {
    if (vm.copyDisks) {
      await vm.copyDisks(prepared, destHost, (f) => h.progress(2 + 48 * f, `Copying the disks: ${Math.round(100 * f)} %`), failed);
      signal.throwIfAborted();
    }
    const dir = await moveSocketDir(host.socketRoot, host.qemuGroup, false);
    const relay = await sourceRelay(dir, host.qemuGroup, { host: destHost, port: prepared.Port }, Buffer.from(prepared.Secret, 'base64'));
    try {
      await vm.migrate(relay.uri, (i) => {
        const r = i.ram;
        const pct = r && r.total > 0 ? Math.min(90, base + ((90 - base) * (r.total - r.remaining)) / r.total) : base;
        h.progress(pct, progressText(i, i.status === 'device' ? 'Transferring device state' : 'Copying memory'));
      }, signal);
    } finally {
      await relay.close();
    }
    h.progress(92, 'Handing the disks over');
    await vm.releaseDisks();
  } catch (e) {
    await vm.abandonCopies();
    await dest.abort(prepared).catch(() => undefined);
    throw failed.signal.aborted ? failed.signal.reason as Error : e;
  } finally {
    h.signal.removeEventListener('abort', cancel);
  }
  let view: VmView;
  try {
    view = await dest.commit(prepared, vm.uptimeMs());
  } catch (e) {
    const outcome = e instanceof VmhostError && e.code !== 'MIGRATION_DESTINATION_UNREACHABLE' && e.code !== 'INTERNAL' && e.code !== 'MIGRATION_FAILED'
      ? 'Gone' : await askOutcome(dest, prepared, vm.id);
    if (outcome === 'Committed') {
      await vm.leave();
      throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN', `VM '${vm.name}' was moved to ${dest.host}, but its answer was lost (${(e as Error).message}); it runs there now`, { vm: vm.name });
    }
    if (outcome === 'Gone') {
      await dest.abort(prepared).catch(() => undefined);
      await vm.resumeHere();
      throw e;
    }
    throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN',
      `VM '${vm.name}': the destination ${dest.host} did not say whether it took the VM (${(e as Error).message}); it stays paused here so it never runs twice — check Get-VM on ${dest.host}, then Resume-VM here or Remove-VM here`, { vm: vm.name });
  }
  h.progress(97, 'Removing the VM from this host');
  await vm.leave();
  return view;
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
class DiskCopies {
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
      const remote = await RemoteDisk.connect(host, prepared.DiskPort, secret, d.id);
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
