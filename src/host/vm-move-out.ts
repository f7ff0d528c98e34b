// Move-VM, the source's side (shared storage: the disks stay where both hosts reach them).
// With the VM Migrating under its lock: the destination prepares (vm-move-in.ts) on the ticket
// the caller got from it, QEMU pre-copies memory through the relay (migration-stream.ts) until
// its last round stops the VM, this host stops serving the disks (their locks released), and
// the destination commits — it opens the disks and resumes the VM. Until the commit answers
// the source QEMU is kept, paused, so any failure (or Stop-Job) resumes the VM here untouched;
// a commit whose answer is lost is asked about again (GET the move) and, while nobody can say,
// the VM stays paused here rather than risk running twice.
import { readFile, rm } from 'node:fs/promises';
import { VmhostError } from '../common/index.ts';
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
import { assertLegal } from './vm-state.ts';
import { VmStorage } from './vm-storage.ts';
import type { MovePrepare } from './vm-move-in.ts';
import type { VmView } from './vm-view.ts';

export interface MoveRequest {
  /** HOST:PORT of the destination daemon. */
  destination: string;
  /** Issued by the destination to the caller (POST /migrations/tickets there). */
  ticket: string;
}

/** What the source side needs of its host. */
export interface MoveOutHost {
  readonly storage: VmStorage;
  readonly network: VmNetwork;
  readonly jobs: JobManager;
  /** Where a move's socket dir goes, and QEMU's group when it runs as its own user. */
  readonly socketRoot: string;
  readonly qemuGroup: number | undefined;
  /** The local address the stream leaves from to reach the destination's `address` (migration networks); throws when none may. */
  streamFrom(address: string): string | undefined;
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
            return await moveOut(this.vmFor(e, held, rt, dest), dest, this.host, h);
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

  private vmFor(e: VmEntry, held: LockHeld, rt: VmRuntime, dest: Destination): MoveOutVm {
    const { storage } = this.host;
    const performance = this.host.settings().VirtualMachineMigrationPerformanceOption;
    const t0 = Date.now();
    let stats: LiveMigrationResult | undefined;
    return {
      name: e.config.name,
      id: e.config.id,
      describe: () => this.describe(e, rt, performance),
      uptimeMs: () => e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0),
      migrate: async (uri, onProgress, signal) => { stats = await rt.migrateTo(uri, tuningFor(performance), onProgress, signal); },
      releaseDisks: async () => { for (const d of e.config.hardDrives) await storage.stopDrive(d); },
      resumeHere: async () => {
        for (const d of e.config.hardDrives) await storage.serveDrive(d);
        await rt.resume();
      },
      leave: () => this.leave(e, held, `${dest.host} (QEMU: ${stats?.totalTimeMs ?? '?'} ms, downtime ${stats?.downtimeMs ?? '?'} ms, ${Math.round((stats?.transferredBytes ?? 0) / 1048576)} MiB; ${Date.now() - t0} ms in all)`),
    };
  }

  /** The prepare body: the VM as the destination must recreate it, its disks' geometry, NVRAM, counters. */
  private async describe(e: VmEntry, rt: VmRuntime, performance: MovePrepare['performance']): Promise<MovePrepare> {
    const disks: MovePrepare['disks'] = {};
    const chs: MovePrepare['chs'] = {};
    for (const d of e.config.hardDrives) {
      disks[d.id] = this.host.storage.geometry(d);
      chs[d.id] = await rt.diskGeometry(VmStorage.diskId(d));
    }
    const vars = e.config.generation === 2 ? await readFile(e.config.secureBoot ? e.paths.firmwareVarsSecure : e.paths.firmwareVars).catch(() => undefined) : undefined;
    return {
      config: e.config, disks, chs, firmwareVars: vars?.toString('base64'), boot: e.bootSource ?? 'Firmware',
      counters: this.host.network.portCounters(e), performance, sourceHost: this.host.computerName,
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
  if (i['cpu-throttle-percentage'] !== undefined) parts.push(`vCPUs throttled ${i['cpu-throttle-percentage']} %`);
  return parts.join(', ');
}

/** The move itself (the caller holds the VM Migrating under its lock and a queue slot). */
async function moveOut(vm: MoveOutVm, dest: Destination, host: Pick<MoveOutHost, 'socketRoot' | 'qemuGroup' | 'streamFrom'>, h: JobHandle): Promise<VmView> {
  h.progress(2, 'Preparing the destination');
  const prepared = await dest.prepare(await vm.describe());
  // The destination's stream listener is on its migration networks (on all addresses: the one we called); this host sends only into its own.
  const address = /^(0\.0\.0\.0|::)$/.test(prepared.Address) ? dest.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') : prepared.Address;
  let from: string | undefined;
  try {
    from = host.streamFrom(address);
  } catch (e) {
    await dest.abort(prepared).catch(() => undefined);
    throw e;
  }
  const dir = await moveSocketDir(host.socketRoot, host.qemuGroup, false);
  const relay = await sourceRelay(dir, host.qemuGroup, { host: address, port: prepared.Port, localAddress: from }, Buffer.from(prepared.Secret, 'base64'));
  try {
    await vm.migrate(relay.uri, (i) => {
      const r = i.ram;
      const pct = r && r.total > 0 ? Math.min(90, 5 + (85 * (r.total - r.remaining)) / r.total) : 5;
      h.progress(pct, progressText(i, i.status === 'device' ? 'Transferring device state' : 'Copying memory'));
    }, h.signal);
  } catch (e) {
    await relay.close();
    await dest.abort(prepared).catch(() => undefined);
    throw e;
  } finally {
    await relay.close();
  }
  h.progress(92, 'Handing the disks over');
  await vm.releaseDisks();
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
