// Move-VM, the source's side. Shared storage: the disks stay where both hosts reach them.
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
// -RetainVhdCopiesOnSource).
//
// Checkpoints move with the VM: their records go in the prepare (the destination writes them
// into the VM's checkpoint folder there, -SnapshotFilePath or its default) and each
// checkpoint's memory is sent as a file before anything else; the source's records go after
// the commit. On shared storage the chains stay where they are. Shared-nothing, the frozen
// files of the chains (vm-move-disks.ts `planChains`) are sent as files first — the
// destination re-points them at their parents' copies — and each running leaf is then
// mirrored over its parent's copy, its own ranges only. A clustered VM's checkpoints stay in
// its shared folder and nothing of them is sent.
//
// A daemon killed during the commit: before asking the destination to commit, the source
// journals the move in the VM's folder (move-out.json: destination, move id and secret, files
// to delete). At the next start `settleInterrupted` asks the destination, by one rule: its
// answer decides. Committed — the VM is the destination's: this host's QEMU (kept paused in
// postmigrate) is killed, its files and folder removed. Not committed — the journal goes and
// the VM stays here. No answer — the journal stays, the VM stays paused, asked again at the next start.
import { readFile, rm, stat } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { LiveMigrationResult, MigrationInfo, MigrationTuning } from '../qemu/index.ts';
import type { EventLevel } from './events.ts';
import type { HnvMove } from './hnv-move.ts';
import type { Job, JobHandle, JobManager } from './jobs.ts';
import { askOutcome, httpDestination, type Destination, type DestinationTrust } from './move-destination.ts';
import { compressionChannels, overQemuTls, tuningFor, type MigrationSettings } from './migration-settings.ts';
import { spareCores } from './spare-cpu.ts';
import { boundRelay, moveSocketDir, routeSource, sourceRelay, type Relay } from './migration-stream.ts';
import { checkPeerCa, makeMoveIdentity, MIGRATION_TLS_HOSTNAME, writeQemuCredentials, type MoveTlsIdentity } from './migration-tls.ts';
import type { QemuUser } from './qemu-user.ts';
import { MoveQueue } from './move-queue.ts';
import type { VmEntry } from './vm-entry.ts';
import type { LockHeld } from './vm-lock.ts';
import type { VmNetwork } from './vm-network.ts';
import type { RuntimeRecord, VmRuntime } from './vm-runtime.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { invalid } from './invalid-argument.ts';
import { DiskCopies, planChains, plannedDisks, type ChainPlan, type CopyProgress, type DriveChain, type OutgoingFile, type StorageMoveRequest } from './vm-move-disks.ts';
import type { IncomingFile, IncomingFileKind, MovePrepare, PreparedMove } from './vm-move-in.ts';
import { chainOf } from './vm-export.ts';
import { chainFiles } from '../storage/index.ts';
import { assertLegal } from './vm-state.ts';
import { VmStorage } from './vm-storage.ts';
import type { VmView } from './vm-view.ts';
import type { MeteringState } from './metering-state.ts';
import type { CheckpointRecord, VmCheckpoints } from './vm-checkpoints.ts';
import type { VmConfig } from './vm-config.ts';
import { PAGING_DEVICE, type MemoryPlan } from './vm-memory.ts';

const JOURNAL = 'move-out.json';

/** move-out.json: what a source needs to learn, after a crash, whether its move committed. */
interface MoveOutJournal { destination: string; moveId: string; secret: string; deleteFiles: string[] }

export type { StorageMoveRequest } from './vm-move-disks.ts';

export interface MoveRequest {
  /** HOST:PORT of the destination daemon. */
  destination: string;
  /** Issued by the destination to the caller (POST /migrations/tickets there). */
  ticket: string;
  /** Shared-nothing: where the disks go on the destination. */
  storage?: StorageMoveRequest;
  /** -SnapshotFilePath: the VM's checkpoint folder on the destination (absolute). */
  snapshotFilePath?: string;
  /**
   * A clustered VM moving to another node of its cluster: called once this host has stopped
   * serving the disks and before the destination commits (it revokes this node's fence). From
   * then on a failure never resumes the VM here: it stays paused for the cluster node to settle.
   */
  handOver?: () => void;
}

/** What the source side needs of its host. */
export interface MoveOutHost {
  /** How the destinations' certificates are judged (move-destination.ts). */
  readonly trust: DestinationTrust;
  readonly storage: VmStorage;
  readonly network: VmNetwork;
  readonly jobs: JobManager;
  /** Where a move's socket dir goes, and QEMU's group when it runs as its own user. */
  readonly socketRoot: string;
  readonly qemuGroup: number | undefined;
  /** QEMU's user when it runs as one: it reads the move's TLS credentials after dropping root. */
  readonly qemuUser: QemuUser | undefined;
  /** The local address the stream leaves from to reach the destination's `address` (migration networks); throws when none may. */
  streamFrom(address: string): string | undefined;
  readonly computerName: string;
  resolve(nameOrId: string): VmEntry;
  settings(): MigrationSettings;
  readonly checkpoints: Pick<VmCheckpoints, 'all' | 'memoryOf' | 'files' | 'pendingRemovals'>;
  /** The VM's running QEMU (INVALID_STATE when it has none). */
  live(e: VmEntry): VmRuntime;
  /** Wait until the exit of the VM's QEMU has been handled. */
  settleExit(e: VmEntry): Promise<void>;
  /** The VM is no longer registered here (its entry and checkpoint records dropped). */
  forget(e: VmEntry): void;
  isRegistered(e: VmEntry): boolean;
  /** The VM's metering totals to carry (VmMetering.carried). */
  metering(e: VmEntry): MeteringState | undefined;
  /** The VM's network virtualization lookup records here follow it to the destination's PA (hnv-move.ts). */
  readonly hnv: HnvMove;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
}

/** What one move does to the VM here, as the protocol (`moveOut`) calls it. */
interface MoveOutVm {
  readonly name: string;
  readonly id: string;
  /** The prepare body: config, disk geometry, NVRAM, counters. */
  describe(): Promise<MovePrepare>;
  /**
   * Shared-nothing, or checkpoints with memory: send the files sent as files, then mirror every
   * disk to the destination (shared-nothing); resolves once all are in step (they stay so until
   * released). `from`: this host's address on the migration network.
   */
  copyDisks?(prepared: PreparedMove, host: string, from: string | undefined, progress: CopyProgress, failed: AbortController): Promise<void>;
  /** Before the commit, on any failure: stop the mirrors (the destination drops its copies); this host's files go on. */
  abandonCopies(): Promise<void>;
  uptimeMs(): number;
  /** Its resource metering as of the last sample (Measure-VM goes on counting on the destination); none when not enabled. */
  metering(): MeteringState | undefined;
  migrate(uri: string, tuning: MigrationTuning, onProgress: (i: MigrationInfo) => void, signal: AbortSignal): Promise<unknown>;
  /** Stop serving the disks (the source QEMU is inactive): the destination may open them. */
  releaseDisks(): Promise<void>;
  /** Undo: serve the disks again and resume the source QEMU. */
  resumeHere(): Promise<void>;
  /** Done: the source QEMU quits and the VM leaves this host (its lookup records re-pointed to `prepared`'s PA first); `handOver` says where the time from QEMU's completion to the commit went. */
  leave(prepared: PreparedMove, handOver?: string): Promise<void>;
  /** Before the commit: move-out.json written (a crash from here on settles by asking the destination); `undefined` drops it. */
  journal(prepared: PreparedMove | undefined): Promise<void>;
}

export class MoveOut {
  /** -MaximumVirtualMachineMigrations: moves beyond it wait their turn (Queued). */
  readonly queue: MoveQueue;

  constructor(private readonly host: MoveOutHost) {
    this.queue = new MoveQueue(host.settings().MaximumVirtualMachineMigrations);
  }

  /**
   * Move-VM (shared storage, or shared-nothing with `req.storage`) as a job: Queued while -MaximumVirtualMachineMigrations moves run,
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
    const moved = req.storage ? plannedDisks(e.config, req.storage, this.frozenFiles(e)) : undefined;
    if (req.snapshotFilePath !== undefined && !isAbsolute(req.snapshotFilePath)) throw invalid('SnapshotFilePath', `'${req.snapshotFilePath}' is not an absolute path`, e.config.name);
    const dest = httpDestination(req.destination, req.ticket, this.host.trust);
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

  /**
   * Daemon start, before the VM's disks are served: a move this host's daemon died in the middle
   * of committing is settled by the destination's answer. True when the VM left (it is not loaded).
   */
  async settleInterrupted(e: VmEntry): Promise<boolean> {
    const path = join(e.paths.dir, JOURNAL);
    const j = await readJson<MoveOutJournal>(path).catch(() => undefined);
    if (!j) return false;
    const dest = httpDestination(j.destination, '', this.host.trust);
    const mv = { MoveId: j.moveId, Secret: j.secret, Address: '', Port: 0, Fingerprint: '' }; // only the id and secret are used to ask
    const ask = () => dest.outcome(mv, e.config.id).catch(() => 'Unknown' as const);
    let outcome = await ask();
    if (outcome === 'Prepared') {
      // Still staged there: called off, unless its commit is under way (then it stays undecided).
      await dest.abort(mv).catch(() => undefined);
      outcome = await ask();
      if (outcome === 'Prepared') outcome = 'Unknown';
    }
    if (outcome === 'Committed') {
      await killStaleQemu(e);
      await removeMovedFiles(j.deleteFiles, e, this.host);
      await this.host.network.forgetVm(e).catch(() => undefined);
      await rm(e.paths.dir, { recursive: true, force: true });
      await rm(e.paths.sockets, { recursive: true, force: true });
      this.host.event('Information', 'VM_MOVED_OUT', `VM moved to ${j.destination} (move ${j.moveId}): the destination had committed it when this host's daemon stopped; settled at start`, e);
      return true;
    }
    if (outcome === 'Unknown') {
      this.host.event('Error', 'VM_MOVE_OUTCOME_UNKNOWN', `VM '${e.config.name}': its move ${j.moveId} to ${j.destination} was committing when this host's daemon stopped, and the destination does not answer; it stays paused here — asked again at the next start, or check Get-VM there`, e);
      return false;
    }
    await rm(path, { force: true });
    this.host.event('Warning', 'VM_MOVE_FAILED', `VM '${e.config.name}': its move ${j.moveId} to ${j.destination} did not commit before this host's daemon stopped; the VM stays here (Resume-VM if it is paused)`, e);
    return false;
  }

  /** What a move cannot carry now, refused before anything starts. */
  private refuseUnmovable(e: VmEntry): void {
    if (this.host.checkpoints.pendingRemovals(e).length > 0) {
      throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' is busy: a checkpoint merge is running (Remove-VMSnapshot); move it when it ends`, { vm: e.config.name });
    }
  }

  private vmFor(e: VmEntry, held: LockHeld, rt: VmRuntime, dest: Destination, req: MoveRequest, moved: Record<string, string> | undefined): MoveOutVm {
    const { storage } = this.host;
    const performance = this.host.settings().VirtualMachineMigrationPerformanceOption;
    const t0 = Date.now();
    let stats: LiveMigrationResult | undefined;
    let channels: number | undefined;
    // A clustered VM's checkpoints are in its shared folder already: none travel.
    const records = e.fence ? [] : this.host.checkpoints.all(e);
    // Set by `describe`, which plans the chains' files (none on shared storage) and the memory files.
    let copies = new DiskCopies(storage, []);
    let deleteFiles: string[] = [];
    return {
      name: e.config.name,
      id: e.config.id,
      describe: async () => {
        const chains = moved && req.storage ? await this.planChains(e, moved, records, req.storage) : undefined;
        const { incoming, outgoing } = await this.filesToSend(e, records, chains);
        copies = new DiskCopies(storage, moved ? e.config.hardDrives : [], outgoing);
        // After the commit: the disk files the destination copied (unless retained), and the checkpoint records and memory it took.
        deleteFiles = [
          ...(moved && !req.storage?.retainSource ? [...e.config.hardDrives.map((d) => d.path), ...(chains?.frozen.map((f) => f.from) ?? [])] : []),
          ...(e.fence ? [] : this.host.checkpoints.files(e)),
        ];
        const mapped = (c: VmConfig): VmConfig => (chains ? { ...c, hardDrives: c.hardDrives.map((d) => ({ ...d, path: chains.map(d.path) })) } : c);
        return {
          ...(await this.describe(e, rt, performance, moved, chains)),
          ...(req.snapshotFilePath ? { snapshotFilePath: req.snapshotFilePath } : {}),
          ...(records.length > 0 ? { checkpoints: records.map((r) => ({ ...r, config: mapped(r.config) })) } : {}),
          ...(incoming.length > 0 ? { files: incoming } : {}),
        };
      },
      ...(moved || records.some((r) => r.memory !== null)
        ? { copyDisks: (prepared: PreparedMove, host: string, from: string | undefined, progress: CopyProgress, failed: AbortController) => copies.start(prepared, host, from, progress, failed) }
        : {}),
      abandonCopies: () => copies.abandon(),
      uptimeMs: () => e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0),
      metering: () => this.host.metering(e),
      migrate: async (uri, tuning, onProgress, signal) => { channels = tuning.multifd?.channels; stats = await rt.migrateTo(uri, tuning, onProgress, signal); },
      releaseDisks: async () => {
        await copies.finish();
        for (const d of e.config.hardDrives) await storage.stopDrive(d);
        req.handOver?.();
      },
      resumeHere: async () => {
        await copies.abandon();
        if (req.handOver) throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN', `VM '${e.config.name}': its ownership was being handed to ${dest.host} when the move failed; it stays paused here for the cluster to settle`, { vm: e.config.name });
        for (const d of e.config.hardDrives) await storage.serveDrive(d);
        await rt.resume();
        this.reannounce(e, rt);
      },
      leave: async (prepared, handOver) => {
        // First: until this host's records name the destination, its VMs cannot reach the moved one.
        if (prepared.ProviderAddress !== undefined) await this.host.hnv.follow(e, prepared.ProviderAddress);
        // The destination runs the VM from its own copies now: these files are nobody's (removed before the journal goes with the folder).
        await removeMovedFiles(deleteFiles, e, this.host);
        await this.leave(e, held, `${dest.host} (QEMU: ${stats?.totalTimeMs ?? '?'} ms, downtime ${stats?.downtimeMs ?? '?'} ms, ${Math.round((stats?.transferredBytes ?? 0) / 1048576)} MiB ${prepared.StreamCa === undefined ? 'through the relay' : "over QEMU's TLS"}${channels ? `, ${channels} multifd channels` : ''}${stats ? `, QEMU's lock held up to ${stats.longestAnswer.ms} ms in ${stats.longestAnswer.status} at ${stats.longestAnswer.at}${stats.setupPriority ? `, ${stats.setupPriority}` : ''}` : ''}; ${Date.now() - t0} ms in all${handOver ? `; hand-over ms: ${handOver}` : ''}${rt.runStateAt.STOP ? `, guest stopped ${Math.round(rt.runStateAt.STOP)}` : ''})`);
      },
      journal: async (prepared) => {
        const path = join(e.paths.dir, JOURNAL);
        if (!prepared) { await rm(path, { force: true }); return; }
        const j: MoveOutJournal = { destination: dest.host, moveId: prepared.MoveId, secret: prepared.Secret, deleteFiles };
        await writeFileAtomic(path, JSON.stringify(j, null, 2));
      },
    };
  }

  /** The read-only files of the VM's chains that -Vhds may name: its served drives' parents and the files its checkpoints froze. */
  private frozenFiles(e: VmEntry): Set<string> {
    const files = new Set<string>();
    for (const d of e.config.hardDrives) {
      const served = this.host.storage.server.get(VmStorage.exportName(d));
      if (served) for (const f of chainFiles(served.disk).slice(1)) files.add(f);
    }
    for (const r of e.fence ? [] : this.host.checkpoints.all(e)) for (const d of r.config.hardDrives) files.add(resolve(d.path));
    return files;
  }

  /** Shared-nothing: the chains of the VM's drives and of its checkpoints' drives, and where their frozen files go. */
  private async planChains(e: VmEntry, moved: Record<string, string>, records: readonly CheckpointRecord[], r: StorageMoveRequest): Promise<ChainPlan> {
    const drives: DriveChain[] = [];
    for (const d of e.config.hardDrives) {
      const served = this.host.storage.server.get(VmStorage.exportName(d));
      drives.push({ driveId: d.id, chain: served ? chainFiles(served.disk) : await chainOf(d.path) });
    }
    const frozen: DriveChain[] = [];
    for (const rec of records) for (const d of rec.config.hardDrives) frozen.push({ driveId: d.id, chain: await chainOf(d.path) });
    return planChains(e.config.name, moved, drives, frozen, r);
  }

  /** The files sent as files before the mirrors: the frozen disk files (shared-nothing), then the checkpoints' memory. */
  private async filesToSend(e: VmEntry, records: readonly CheckpointRecord[], chains: ChainPlan | undefined): Promise<{ incoming: IncomingFile[]; outgoing: OutgoingFile[] }> {
    const incoming: IncomingFile[] = [];
    const outgoing: OutgoingFile[] = [];
    const add = async (from: string, f: IncomingFileKind) => {
      const stream = `file:${incoming.length}`;
      incoming.push({ ...f, stream, size: (await stat(from)).size });
      outgoing.push({ from, stream });
    };
    for (const f of chains?.frozen ?? []) await add(f.from, { kind: 'disk', path: f.to, parent: f.parent });
    for (const r of records) {
      const memory = this.host.checkpoints.memoryOf(e, r);
      if (memory !== null && r.memory !== null) await add(memory, { kind: 'memory', name: r.memory });
    }
    return { incoming, outgoing };
  }

  /** The prepare body: the VM as the destination must recreate it, its disks' geometry, NVRAM, counters. */
  private async describe(e: VmEntry, rt: VmRuntime, performance: MovePrepare['performance'], moved: Record<string, string> | undefined, chains: ChainPlan | undefined): Promise<MovePrepare> {
    const disks: MovePrepare['disks'] = {};
    const chs: MovePrepare['chs'] = {};
    const storage: NonNullable<MovePrepare['storage']> = {};
    for (const d of e.config.hardDrives) {
      disks[d.id] = this.host.storage.geometry(d);
      chs[d.id] = await rt.diskGeometry(VmStorage.diskId(d));
      const to = moved?.[d.id];
      // A VHD stays a VHD; VHDX and raw disks arrive as dynamic VHDX (only what holds data is copied).
      const parent = chains?.leafParents[d.id];
      if (to !== undefined) storage[d.id] = { path: to, format: this.host.storage.server.get(VmStorage.exportName(d))?.disk.format === 'VHD' ? 'VHD' : 'VHDX', ...(parent === undefined ? {} : { parent }) };
    }
    const vars = e.config.generation === 2 ? await readFile(e.config.secureBoot ? e.paths.firmwareVarsSecure : e.paths.firmwareVars).catch(() => undefined) : undefined;
    return {
      config: e.config, disks, chs, firmwareVars: vars?.toString('base64'), boot: e.bootSource ?? 'Firmware', memory: await memoryLayout(e, rt),
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
    if (status === 'paused') { await rt.resume().catch(() => undefined); this.reannounce(e, rt); }
    e.machine.transition(held, 'Running');
    this.host.event('Warning', 'VM_MOVE_FAILED', `Move-VM failed; the VM keeps running here: ${(err as Error).message}`, e);
  }

  /**
   * The VM runs here again after a failed move: the destination may have announced its MACs
   * from its ports already (vm-move-in.ts, at the commit), so this host's ports say them again —
   * its switch at once, QEMU's RARP rounds as well — and its peers' frames come back here.
   */
  private reannounce(e: VmEntry, rt: VmRuntime): void {
    try {
      this.host.network.announce(e);
    } catch (err) {
      this.host.event('Warning', 'VM_ANNOUNCE_FAILED', `MAC addresses not announced from the switch ports: ${(err as Error).message}`, e);
    }
    void rt.announce().catch((err: unknown) => this.host.event('Warning', 'VM_ANNOUNCE_FAILED', `MAC addresses not announced: ${(err as Error).message}`, e));
  }

  /** The destination has the VM: QEMU here goes and the VM leaves this host's registry (its disks stay, shared). */
  private async leave(e: VmEntry, held: LockHeld, to: string): Promise<void> {
    const rt = e.runtime;
    if (rt) {
      e.expectedExit = `moved to ${to.replace(/ \(.*$/, '')}`;
      // Killed, not asked to quit: the destination has committed, and this QEMU (postmigrate) holds
      // nothing — QEMU flushed and inactivated its disks at the migration's completion, and this
      // host let go of their exports before the commit. Asked to quit, it used its whole 5 s timeout
      // after every move (measured in the cluster move test: each Move-VM ended 5 s after its commit).
      await rt.kill();
      await this.host.settleExit(e);
    }
    if (e.state !== 'Off') e.machine.transition(held, 'Off');
    await this.host.network.forgetVm(e);
    // A clustered VM's folder is the shared one its new owner runs it from: only the node-local part (and the journal) goes.
    if (e.fence) await Promise.all([rm(dirname(e.paths.runtime), { recursive: true, force: true }), rm(join(e.paths.dir, JOURNAL), { force: true })]);
    else await rm(e.paths.dir, { recursive: true, force: true });
    await rm(e.paths.sockets, { recursive: true, force: true });
    this.host.forget(e);
    this.host.event('Information', 'VM_MOVED_OUT', `VM moved to ${to}`, e);
  }
}

/**
 * The running machine's memory devices, read from its QEMU (so a VM re-attached after a daemon
 * restart has them too): the destination's QEMU must be built alike. A VM started from a smart
 * paging file keeps that device (empty once the balancer has it in RAM) until it restarts, and
 * the file does not move: such a VM is refused.
 */
async function memoryLayout(e: VmEntry, rt: VmRuntime): Promise<MemoryPlan | undefined> {
  const r = await rt.readMemory();
  const devices = Object.entries(r.devices);
  if (devices.length === 0 && !e.config.dynamicMemory.enabled) return undefined;
  if (devices.some(([id]) => id === PAGING_DEVICE)) {
    throw new VmhostError('MIGRATION_UNSUPPORTED', `VM '${e.config.name}' was started from a smart paging file, whose device its QEMU keeps until the VM restarts: restart it, then move it`, { vm: e.config.name });
  }
  return {
    bootBytes: r.bootBytes, deflateOnOom: e.config.dynamicMemory.enabled,
    virtioMem: devices.map(([id, d]) => ({ id, sizeBytes: d.maxBytes, requestedBytes: d.requestedBytes })),
  };
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
async function moveOut(vm: MoveOutVm, dest: Destination, host: StreamHost, h: JobHandle): Promise<VmView> {
  h.progress(2, 'Preparing the destination');
  const body = await vm.describe();
  const client = overQemuTls(body.performance) ? await makeMoveIdentity('client') : undefined;
  const channels = body.performance === 'Compression' ? compressionChannels(await spareCores()) : undefined;
  const prepared = await dest.prepare({ ...body, ...(client ? { streamCa: client.ca } : {}), ...(channels ? { channels } : {}) });
  // The destination's stream listener is on its migration networks (on all addresses: the one we called); this host sends only into its own.
  const address = /^(0\.0\.0\.0|::)$/.test(prepared.Address) ? dest.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') : prepared.Address;
  let from: string | undefined;
  try {
    from = host.streamFrom(address);
  } catch (e) {
    await dest.abort(prepared).catch(() => undefined);
    throw e;
  }
  // Stop-Job, or a mirror that fails (its target is gone), stops the move at once, whatever phase it is in.
  const failed = new AbortController();
  const cancel = (): void => failed.abort(new VmhostError('JOB_CANCELLED', `the move of VM '${vm.name}' was cancelled (Stop-Job); it keeps running here`, { vm: vm.name }));
  if (h.signal.aborted) cancel();
  h.signal.addEventListener('abort', cancel, { once: true });
  const signal = failed.signal;
  const base = vm.copyDisks ? 50 : 5;
  // From QEMU's completion (the guest stopped) to the commit's answer: where our part of the blackout goes.
  // Each step's end is also kept as an epoch time, so a trace can line it up with the destination's and the switches' (bench/live-migration.ts).
  const marks: string[] = [], epochs: string[] = [];
  let last = 0;
  const mark = (what: string): void => { const now = Date.now(); marks.push(`${what} ${now - last}`); epochs.push(`${what} ${now}`); last = now; };
  try {
    if (vm.copyDisks) {
      await vm.copyDisks(prepared, address, from, (f, status) => h.progress(2 + 48 * f, status ?? `Copying the disks: ${Math.round(100 * f)} %`), failed);
      signal.throwIfAborted();
    }
    const stream = await openStream(host, prepared, address, from, client);
    try {
      await vm.migrate(stream.uri, { ...tuningFor(body.performance, channels), ...(stream.tls ? { tls: stream.tls } : {}) }, (i) => {
        const r = i.ram;
        const pct = r && r.total > 0 ? Math.min(90, base + ((90 - base) * (r.total - r.remaining)) / r.total) : base;
        h.progress(pct, progressText(i, i.status === 'device' ? 'Transferring device state' : 'Copying memory'));
      }, signal);
      last = Date.now(); // QEMU has completed: the guest stays stopped until the destination resumes it
      epochs.push(`completed ${last}`);
    } catch (e) {
      throw stream.refused(e);
    } finally {
      await stream.close();
    }
    mark('relay closed');
    h.progress(92, 'Handing the disks over');
    await vm.releaseDisks();
    mark('disks released');
  } catch (e) {
    await vm.abandonCopies();
    await dest.abort(prepared).catch(() => undefined);
    throw failed.signal.aborted ? failed.signal.reason as Error : e;
  } finally {
    h.signal.removeEventListener('abort', cancel);
  }
  let view: VmView;
  try {
    await vm.journal(prepared);
    mark('journal');
    view = await dest.commit(prepared, vm.uptimeMs(), vm.metering());
    mark('commit');
  } catch (e) {
    const outcome = e instanceof VmhostError && e.code !== 'MIGRATION_DESTINATION_UNREACHABLE' && e.code !== 'INTERNAL' && e.code !== 'MIGRATION_FAILED'
      ? 'Gone' : await askOutcome(dest, prepared, vm.id);
    if (outcome === 'Committed') {
      await vm.leave(prepared);
      throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN', `VM '${vm.name}' was moved to ${dest.host}, but its answer was lost (${(e as Error).message}); it runs there now`, { vm: vm.name });
    }
    if (outcome === 'Gone') {
      await dest.abort(prepared).catch(() => undefined);
      await vm.journal(undefined);
      await vm.resumeHere();
      throw e;
    }
    throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN',
      `VM '${vm.name}': the destination ${dest.host} did not say whether it took the VM (${(e as Error).message}); it stays paused here so it never runs twice — check Get-VM on ${dest.host}, then Resume-VM here or Remove-VM here`, { vm: vm.name });
  }
  h.progress(97, 'Removing the VM from this host');
  await vm.leave(prepared, `${marks.join(', ')}; epoch ms: ${epochs.join(', ')}`);
  return view;
}

type StreamHost = Pick<MoveOutHost, 'socketRoot' | 'qemuGroup' | 'qemuUser' | 'streamFrom'>;

/** How the source QEMU reaches the destination; `refused` turns QEMU's failure into why the stream was refused, when that is known. */
interface Stream { uri: string; tls: MigrationTuning['tls']; refused(e: unknown): unknown; close(): Promise<void> }

/**
 * A multifd option (the destination answered its CA): over QEMU's own TLS straight to the
 * destination's QEMU, from `from` through `boundRelay` only when the kernel's route would leave
 * from another address. TCPIP: through the relay, which checks the destination's certificate.
 */
async function openStream(host: StreamHost, prepared: PreparedMove, address: string, from: string | undefined, client: MoveTlsIdentity | undefined): Promise<Stream> {
  const dir = await moveSocketDir(host.socketRoot, host.qemuGroup, false);
  const where = `the destination's migration stream listener ${address}:${prepared.Port}`;
  try {
    if (prepared.StreamCa === undefined || !client) {
      const relay = await sourceRelay(dir, host.qemuGroup, { host: address, port: prepared.Port, fingerprint: prepared.Fingerprint, localAddress: from }, Buffer.from(prepared.Secret, 'base64'));
      // QEMU saw only its socket closed; the relay knows why (a certificate other than the prepared one).
      return { uri: relay.uri, tls: undefined, refused: (e) => relay.refused() ?? e, close: () => relay.close() };
    }
    const ca = checkPeerCa(prepared.StreamCa, where);
    await writeQemuCredentials(dir, client, prepared.StreamCa, host.qemuUser);
    const relay: Relay | undefined = from !== undefined && (await routeSource(address)) !== from
      ? await boundRelay(dir, host.qemuGroup, { host: address, port: prepared.Port, localAddress: from }) : undefined;
    return {
      uri: relay?.uri ?? `tcp:${isIPv6(address) ? `[${address}]` : address}:${prepared.Port}`,
      tls: { dir, hostname: MIGRATION_TLS_HOSTNAME },
      // GnuTLS's words for a peer certificate that does not chain to the pinned CA or names another host.
      refused: (e) => (e instanceof Error && /certificate|issuer/i.test(e.message)
        ? new VmhostError('TLS_CERTIFICATE_CHANGED', `${where} presented a TLS certificate not issued by the move's CA ${ca} that the destination answered (${e.message}): refused before any memory was sent (someone between the hosts, or not the host that was asked)`,
          { peer: where, pinned: ca }, { cause: e })
        : e),
      close: async () => { await relay?.close(); await rm(dir, { recursive: true, force: true }); },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** After a committed move: the source's files the destination has copied (disk files unless shared or -RetainVhdCopiesOnSource; checkpoint records and memory). */
async function removeMovedFiles(files: readonly string[], e: VmEntry, host: Pick<MoveOutHost, 'event'>): Promise<void> {
  if (files.length === 0) return;
  for (const f of files) await rm(f, { force: true });
  host.event('Information', 'VM_MOVED_OUT_FILES_REMOVED', `The source's files of VM '${e.config.name}' were removed after its move: ${files.join(', ')}`, e);
}

/** The source QEMU a crashed daemon left paused after a committed move: killed if its pid is still that VM's QEMU. */
async function killStaleQemu(e: VmEntry): Promise<void> {
  const rec = await readJson<RuntimeRecord>(e.paths.runtime).catch(() => undefined);
  if (!rec) return;
  const cmdline = await readFile(`/proc/${rec.pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes(rec.uuid)) return;
  try { process.kill(rec.pid, 'SIGKILL'); } catch { return; }
  // Not our child (a previous daemon's): gone once /proc no longer lists it, within a few seconds of SIGKILL.
  for (let i = 0; i < 250 && (await stat(`/proc/${rec.pid}`).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 20));
}
