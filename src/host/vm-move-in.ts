// Move-VM, the destination's side. `prepare` (the source presents a ticket this host issued):
// Compare-VM's judge on the VM as it would arrive, then a staged VM that is not registered —
// its folder holds `incoming.json`, never vm.json — with switch ports carrying the adapters'
// policy and counters, held disk exports (storage/held-disk.ts: the file is not opened while
// the source still writes it), QEMU started paused with `-incoming defer`, and a relay for the
// stream. `commit` (the source's QEMU has finished and let go of the files): the disks are
// opened, vm.json written — the commit point — and the VM registered and resumed. Anything
// before the commit point is undone by `abort`, by QEMU exiting, or, after a crash, by `sweep`
// at the next start: nothing half-registered survives.
//
// Shared-nothing (Move-VM -IncludeStorage): the prepare names a new file per drive. This host
// creates them (dynamic, empty) after journalling their paths in incoming.json, and the source's
// block server mirrors each running disk into them over a disk stream (storage/disk-stream.ts,
// opened with the move's secret) before the memory moves. Commit needs every stream finished
// (flushed); a stream that ends unfinished abandons the move, and an abandoned move — or one a
// crash left, by `sweep` — deletes the files it created: they were never anyone's but the move's.
//
// A VM with checkpoints brings their records (written into its checkpoint folder here at the
// prepare, journalled like the disks) and, over disk streams before any mirror, each
// checkpoint's memory and — shared-nothing — the frozen files of its chains
// (move-incoming-files.ts: copied as files, then re-pointed at their parents' copies; a drive's
// leaf is then a differencing disk over its parent's copy, which the source fills with the
// leaf's own ranges). On shared storage the chains stay where they are.
//
// A clustered VM moving between cluster nodes (Move-ClusterVirtualMachineRole, a drain) arrives
// with a `ClusteredArrival` instead of a ticket's plain staging: its folder is the shared one both
// nodes see, so only the node-local part (DIR/clustered/<id>: incoming.json, runtime.json,
// sockets) is staged and removed on abort; the NVRAM file is not rewritten (the source's QEMU
// still has it). The commit's first step is `claim`: the ownership key handed over in etcd (by
// the cluster node), whose new token fences the disks before they are opened.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { TlsIdentity } from '../common/pinned-tls.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import type { MemoryPlan } from './vm-memory.ts';
import type { BootSourceKind } from './boot-order.ts';
import { createMirrorFile, serveDiskStream, type DiskStreamServer, type HeldGeometry, type MirrorTarget } from '../storage/index.ts';
import type { DiskGeometry } from '../qemu/index.ts';
import { incompatibilities, type Incompatibility } from './import-report.ts';
import type { ImportHostFacts } from './import-plan.ts';
import { tuningFor, type PerformanceOption } from './migration-settings.ts';
import { destinationRelay, moveSocketDir, type Relay } from './migration-stream.ts';
import { checkPeerCa, makeMoveIdentity, MIGRATION_TLS_HOSTNAME, writeQemuCredentials } from './migration-tls.ts';
import type { QemuUser } from './qemu-user.ts';
import type { SavedCounters } from './switch-counters.ts';
import type { VmConfig } from './vm-config.ts';
import type { OwnershipFence } from '../storage/index.ts';
import { VmEntry } from './vm-entry.ts';
import type { VmNetwork } from './vm-network.ts';
import { vmPaths, type VmPaths } from './vm-paths.ts';
import { VmRuntime } from './vm-runtime.ts';
import { VmStorage } from './vm-storage.ts';
import type { VmView } from './vm-view.ts';
import type { EventLevel } from './events.ts';
import type { HnvMove } from './hnv-move.ts';
import type { MeteringState } from './metering-state.ts';
import { VmMetering } from './vm-metering.ts';
import type { CheckpointRecord } from './vm-checkpoints.ts';
import { IncomingFiles, incomingPath, leafAfterFiles, type IncomingFile } from './move-incoming-files.ts';

export type { IncomingFile, IncomingFileKind } from './move-incoming-files.ts';

/** What the source sends to prepare a move. */
export interface MovePrepare {
  config: VmConfig;
  /** Per hard drive id: what its export looked like to the source's QEMU, and the CHS geometry QEMU gave the device. */
  disks: Record<string, HeldGeometry>;
  chs: Record<string, DiskGeometry>;
  /** Generation 2: the NVRAM file, base64. */
  firmwareVars?: string;
  boot: BootSourceKind;
  counters: SavedCounters;
  performance: PerformanceOption;
  sourceHost: string;
  /** Move-VM -SnapshotFilePath: the VM's checkpoint folder here (absolute); else this host's default. */
  snapshotFilePath?: string;
  /**
   * Shared-nothing: per hard drive id, the new file this host creates and the source fills (its
   * disk stream); with `parent`, a differencing disk over that file (a frozen file copied here).
   */
  storage?: Record<string, { path: string; format: 'VHDX' | 'VHD'; parent?: string }>;
  /** The VM's checkpoint records (their drives at their paths here), written into its checkpoint folder here. */
  checkpoints?: CheckpointRecord[];
  /** Files sent before the mirrors: checkpoint memory, and shared-nothing the chains' frozen files. */
  files?: IncomingFile[];
  /** Dynamic memory's layout on the source (its QEMU's boot RAM and virtio-mem region); absent: static memory. */
  memory?: MemoryPlan;
  /** A multifd option's stream: the source's per-move CA (PEM); the QEMUs then talk over their own TLS, not the relay (migration-tls.ts). */
  streamCa?: string;
  /** Compression: the multifd channels the source chose for its spare CPU (migration-settings.ts `compressionChannels`); both QEMUs need the same. */
  channels?: number;
}

/**
 * `Address`: where the stream's listener is (on the destination's migration networks, migration-networks.ts); `DiskPort`: where a shared-nothing move's disk streams connect (with `Secret`), on the same address;
 * `Fingerprint`: the SHA-256 of the certificate both listeners present (TLS); the source sends the secret only to it;
 * `ProviderAddress`: the destination's network virtualization PA, which the VM's lookup records name once it is committed (hnv-move.ts);
 * `StreamCa`: answered to a `streamCa`: this host's per-move CA (PEM), the only issuer the source QEMU accepts; `Port` is then its QEMU's own listener.
 */
export interface PreparedMove { MoveId: string; Address: string; Port: number; Secret: string; Fingerprint: string; DiskPort?: number; ProviderAddress?: string; StreamCa?: string }

/** How a cluster node's move ticket starts (the rest is the cluster's: cluster/cluster-move.ts). */
export const CLUSTER_TICKET_PREFIX = 'cluster:';

/** A clustered VM arriving from another node of its cluster (see the header). */
export interface ClusteredArrival {
  /** Its paths on this node: the folder in the shared folder, runtime and sockets node-local. */
  paths: VmPaths;
  /** The commit point's first step: ownership taken over in etcd; the new token's fence for the disks. Throws when the source no longer owns it. */
  claim(): Promise<OwnershipFence>;
  /** The move ended here, committed or abandoned. */
  done(): void;
}

export interface MoveInHost {
  readonly dataDir: string;
  readonly storage: VmStorage;
  readonly network: VmNetwork;
  readonly qemuUser: QemuUser | undefined;
  readonly socketRoot: string;
  /** The address the stream's listener binds (the API's, or one on the migration networks); throws when there is none. */
  readonly listenHost: () => string;
  /** What the stream listeners present: the source accepts only its fingerprint, learned from the prepare's answer. */
  tlsIdentity(): Promise<TlsIdentity>;
  accelerator(): 'kvm' | 'tcg';
  /** Compare-VM's facts about this host; memoryBytes is what is free for one more running VM. */
  facts(): ImportHostFacts;
  migrationEnabled(): boolean;
  /** Under the names lock: the id and name are free, then the entry is registered running on `rt`. */
  register(entry: VmEntry, rt: VmRuntime, uptimeMs: number, boot: BootSourceKind): Promise<VmView>;
  /** After the commit point: the metering.json the move carried is counted on from. */
  adoptMetering(entry: VmEntry): Promise<void>;
  /** The VM's network virtualization lookup records here follow it (hnv-move.ts). */
  readonly hnv: HnvMove;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
}

interface Staged {
  id: string;
  secretHash: Buffer;
  entry: VmEntry;
  boot: BootSourceKind;
  rt?: VmRuntime;
  relay?: Relay;
  committing: boolean;
  timer?: NodeJS.Timeout;
  /** What only this move's staging made: the VM's folder, or for a clustered arrival its node-local part. */
  stageDir: string;
  arrival?: ClusteredArrival;
  /** The checkpoint records written at the prepare (their folder may be outside `stageDir`). */
  records?: string[];
  /** Shared-nothing: the files being filled, by drive id (the leaves) or stream (`files`), those the source finished, and their stream's listener. */
  incoming?: { targets: Map<string, MirrorTarget>; files: IncomingFiles; finished: Set<string>; server?: DiskStreamServer };
}

const INCOMING = 'incoming.json';
const MOVED_IN = 'moved-in.json';
/** A prepared move the source never commits is dropped after this (not counting the time its disk streams are being copied). */
const STAGE_TTL_MS = 15 * 60_000;

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

export class MoveIn {
  private readonly staged = new Map<string, Staged>();

  constructor(private readonly host: MoveInHost) {}

  /** VM ids and names staged here: a second move of either is refused like an existing VM. */
  stagedVms(): { id: string; name: string; macs: string[] }[] {
    return [...this.staged.values()].map((s) => ({ id: s.entry.config.id, name: s.entry.config.name, macs: s.entry.config.networkAdapters.map((a) => a.mac) }));
  }

  /** What would keep this VM from arriving here (Compare-VM's kinds that apply to a live move). */
  async judge(p: MovePrepare): Promise<Incompatibility[]> {
    const f = this.host.facts();
    const vm = withMovedDisks(p);
    const missing = new Set<string>();
    for (const path of [...vm.dvdDrives.map((d) => d.path), vm.floppyPath, ...(vm.boot.kind === 'Kernel' ? [vm.boot.kernel, vm.boot.initrd] : [])]) {
      if (path && !(await exists(path))) missing.add(path);
    }
    const disks = [];
    const collisions: string[] = [];
    // New files: none may be there yet.
    for (const f of arrivingFiles(p, vm.snapshotFileLocation)) if (await exists(f)) collisions.push(f);
    for (const d of p.storage ? [] : vm.hardDrives) {
      if (!(await exists(d.path))) disks.push({ driveId: d.id, problem: 'missing' as const, path: d.path, detail: 'not reachable from this host' });
      else if (this.host.storage.holderOf(d.path)) disks.push({ driveId: d.id, problem: 'in-use' as const, path: d.path, detail: 'served by this host' });
    }
    return incompatibilities({
      vm, host: f.host, vms: [...f.vms, ...this.stagedVms()], switches: f.switches, disks, missing,
      firmwareVars: vm.generation === 2 && p.firmwareVars === undefined ? 'Missing' : 'Exported',
      savedState: 'None', checkpointsWithoutMemory: [], collisions,
    });
  }

  async prepare(p: MovePrepare, arrival?: ClusteredArrival): Promise<PreparedMove> {
    const vm = withMovedDisks(p);
    if (!this.host.migrationEnabled()) {
      throw new VmhostError('MIGRATION_DISABLED', 'Virtual machine migration is disabled on the destination host: run Enable-VMMigration there', { vm: vm.name });
    }
    const address = this.host.listenHost();
    const found = await this.judge(p);
    if (found.length > 0) {
      throw new VmhostError('MIGRATION_INCOMPATIBLE', `The destination cannot take VM '${vm.name}': ${found.map((i) => `${i.Message} (fix: ${i.Fix})`).join('; ')}`,
        { vm: vm.name, report: JSON.stringify(found) });
    }
    const secret = randomBytes(32);
    const identity = await this.host.tlsIdentity();
    const paths = arrival?.paths ?? vmPaths(this.host.dataDir, vm.id);
    const s: Staged = {
      id: randomUUID(), secretHash: sha(secret), entry: new VmEntry(vm, paths), boot: p.boot, committing: false,
      stageDir: arrival ? dirname(paths.runtime) : paths.dir, ...(arrival ? { arrival } : {}),
    };
    this.staged.set(s.id, s);
    try {
      await mkdir(s.stageDir, { recursive: true });
      const files = arrivingFiles(p, vm.snapshotFileLocation);
      await writeFileAtomic(join(s.stageDir, INCOMING), JSON.stringify({ moveId: s.id, sourceHost: p.sourceHost, files }));
      if (p.checkpoints?.length) {
        await mkdir(vm.snapshotFileLocation, { recursive: true });
        s.records = [];
        for (const r of p.checkpoints) {
          const path = join(vm.snapshotFileLocation, `${r.id}.json`);
          s.records.push(path);
          await writeFileAtomic(path, JSON.stringify(r, null, 2) + '\n');
        }
      }
      if (vm.generation === 2 && p.firmwareVars !== undefined && !arrival) {
        await writeFileAtomic(vm.secureBoot ? paths.firmwareVarsSecure : paths.firmwareVars, Buffer.from(p.firmwareVars, 'base64'));
      }
      await this.host.network.attach(s.entry);
      await this.host.network.restorePortCounters(s.entry, p.counters);
      const diskPort = p.storage || p.files?.length ? await this.createIncomingDisks(s, p, identity, secret) : undefined;
      const disks = [];
      for (const d of vm.hardDrives) {
        const g = p.disks[d.id];
        if (!g) throw new VmhostError('INVALID_ARGUMENT', `the move of '${vm.name}' names no geometry for drive ${d.id}`, { vm: vm.name });
        disks.push({ ...(await this.host.storage.serveHeldDrive(d, g)), geometry: p.chs[d.id] });
      }
      for (const d of vm.dvdDrives) disks.push(VmStorage.dvdSpec(d));
      const nics = await this.host.network.nicsForStart(s.entry, false); // the memory moves with it: never a cold start
      const rt = await VmRuntime.launch({
        config: vm, paths, accelerator: this.host.accelerator(), disks, nics, boot: p.boot, runAs: this.host.qemuUser?.name, incomingMigration: true,
        memory: p.memory,
      });
      s.entry.memoryPlan = p.memory;
      s.rt = rt;
      await writeFileAtomic(join(s.stageDir, INCOMING), JSON.stringify({ moveId: s.id, sourceHost: p.sourceHost, files, pid: rt.pid, uuid: vm.id }));
      void rt.exited.then(() => { if (!s.committing) void this.abort(s.id, 'its QEMU exited before the move was committed'); });
      let port: number, streamCa: string | undefined;
      if (p.streamCa !== undefined) {
        ({ port, ca: streamCa } = await this.listenOverQemuTls(rt, address, p, p.streamCa));
      } else {
        const dir = await moveSocketDir(this.host.socketRoot, this.host.qemuUser?.gid, true);
        const sock = join(dir, 'in.sock');
        await rt.listenForMigration(`unix:${sock}`, tuningFor(p.performance, p.channels));
        const relay = await destinationRelay(address, identity, sock, secret, dir);
        s.relay = relay;
        port = relay.port;
      }
      this.arm(s);
      this.host.event('Information', 'VM_MOVE_PREPARED', `Incoming move of VM '${vm.name}' from ${p.sourceHost} prepared (move ${s.id})`, s.entry);
      const pa = this.host.hnv.providerAddress();
      return {
        MoveId: s.id, Address: address, Port: port, Secret: secret.toString('base64'), Fingerprint: identity.fingerprint, ...(streamCa === undefined ? {} : { StreamCa: streamCa }),
        ...(diskPort === undefined ? {} : { DiskPort: diskPort }), ...(pa === undefined ? {} : { ProviderAddress: pa }),
      };
    } catch (e) {
      await this.abort(s.id, `prepare failed: ${(e as Error).message}`);
      throw e;
    }
  }

  /**
   * A multifd option's stream: this host's QEMU listens on `address` itself (a port the kernel
   * picks), over its own TLS with this move's credentials, trusting only the source's CA and its own.
   */
  private async listenOverQemuTls(rt: VmRuntime, address: string, p: MovePrepare, sourceCa: string): Promise<{ port: number; ca: string }> {
    checkPeerCa(sourceCa, `source host ${p.sourceHost}`);
    const own = await makeMoveIdentity('server');
    const dir = await moveSocketDir(this.host.socketRoot, this.host.qemuUser?.gid, false);
    try {
      await writeQemuCredentials(dir, own, sourceCa, this.host.qemuUser);
      const port = await rt.listenForMigration(`tcp:${isIPv6(address) ? `[${address}]` : address}:0`, { ...tuningFor(p.performance, p.channels), tls: { dir, hostname: MIGRATION_TLS_HOSTNAME } });
      if (port === undefined) throw new VmhostError('INTERNAL', `QEMU did not say which port it listens on for the move of '${p.config.name}'`, { vm: p.config.name });
      return { port, ca: own.ca };
    } finally {
      await rm(dir, { recursive: true, force: true }); // QEMU read the credentials when they were added
    }
  }

  /** The staged move's time limit, from now. */
  private arm(s: Staged): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => void this.abort(s.id, 'the source did not commit it in time'), STAGE_TTL_MS);
    s.timer.unref();
  }

  /**
   * The files that arrive as files (checkpoint memory, frozen disk files), the drives' new files
   * when shared-nothing (empty, dynamic, shaped like the source's disks; differencing over a
   * frozen file's copy once it is here), and the listener their streams fill them through.
   */
  private async createIncomingDisks(s: Staged, p: MovePrepare, identity: TlsIdentity, secret: Buffer): Promise<number> {
    const files = await IncomingFiles.create(p.files ?? [], s.entry.config.snapshotFileLocation);
    const incoming: NonNullable<Staged['incoming']> = { targets: new Map(), files, finished: new Set() };
    s.incoming = incoming;
    const streams = (p.files?.length ?? 0) + (p.storage ? s.entry.config.hardDrives.length : 0);
    for (const d of p.storage ? s.entry.config.hardDrives : []) {
      const g = p.disks[d.id], where = p.storage?.[d.id];
      if (!g || !where) throw new VmhostError('INVALID_ARGUMENT', `the move of '${s.entry.config.name}' names no geometry or destination for drive ${d.id}`, { vm: s.entry.config.name });
      await mkdir(dirname(where.path), { recursive: true });
      incoming.targets.set(d.id, where.parent === undefined
        ? await createMirrorFile({ ...g, format: where.format, type: 'Dynamic' }, where.path)
        : leafAfterFiles(files, { ...g, format: where.format, type: 'Differencing' }, where.path, where.parent));
    }
    incoming.server = await serveDiskStream(this.host.listenHost(), identity, secret, {
      // A copy may take longer than the stage's time limit: it is off while streams run (one that ends unfinished abandons the move).
      open: (name) => {
        const disk = incoming.finished.has(name) ? undefined : incoming.targets.get(name)?.disk ?? files.disk(name);
        if (disk) clearTimeout(s.timer);
        return disk;
      },
      finished: (name) => {
        incoming.finished.add(name);
        files.finished(name);
        if (incoming.finished.size === streams && !s.committing) this.arm(s);
      },
      lost: (name, why) => { if (!s.committing) void this.abort(s.id, `disk ${name}: ${why}`); },
    });
    return incoming.server.port;
  }

  /** The move's secret, checked in constant time; the staged move. */
  private need(moveId: string, secret: string): Staged {
    const s = this.staged.get(moveId);
    if (!s || !timingSafeEqual(sha(Buffer.from(secret, 'base64')), s.secretHash)) {
      throw new VmhostError('MIGRATION_TICKET_INVALID', `no move ${moveId} with that secret is staged on this host`, { move: moveId });
    }
    return s;
  }

  /** The source's QEMU has completed and its host has released the disks: this host takes the VM. */
  async commit(moveId: string, secret: string, uptimeMs: number, metering?: MeteringState): Promise<VmView> {
    const s = this.need(moveId, secret);
    const rt = s.rt;
    if (!rt || s.committing) throw new VmhostError('INVALID_STATE', `move ${moveId} is not ready to commit`, { move: moveId });
    s.committing = true;
    clearTimeout(s.timer);
    const e = s.entry;
    const t0 = Date.now();
    let view: VmView;
    // Where the hand-over's time goes (the guest is stopped throughout): printed in VM_MOVED_IN.
    const marks: string[] = [], epochs: string[] = [`commit called ${t0}`];
    let last = t0;
    const mark = (what: string): void => { const now = Date.now(); marks.push(`${what} ${now - last}`); epochs.push(`${what} ${now}`); last = now; };
    try {
      await rt.incomingDone(30_000);
      mark('state loaded');
      // The source's guest has stopped for good unless this commit fails (then the source
      // announces it again where it resumes): its peers' frames come here from now on and wait
      // in the paused QEMU, rather than reach the stopped source while disks open and vm.json is written.
      try {
        this.host.network.announce(e);
      } catch (err) { // only sooner than QEMU's announce after the resume: never a reason to fail the move
        this.host.event('Warning', 'VM_ANNOUNCE_FAILED', `MAC addresses not announced from the switch ports: ${(err as Error).message}`, e);
      }
      mark('ports announced');
      if (s.incoming) await closeIncomingDisks(s.incoming, e.config.name);
      if (s.arrival) {
        // The source's QEMU has stopped and its node let go of the disks (its fence revoked): ownership passes here, then the disks open fenced.
        e.fence = await s.arrival.claim();
        this.host.storage.fenceDrives(e.config.hardDrives, e.fence);
      }
      for (const d of e.config.hardDrives) await this.host.storage.activateDrive(d);
      mark('disks opened');
      if (metering) await VmMetering.writeCarried(e.paths.dir, metering);
      await writeFileAtomic(join(s.stageDir, MOVED_IN), JSON.stringify({ moveId, secretHash: s.secretHash.toString('base64') }));
      view = await this.host.register(e, rt, uptimeMs, s.boot); // writes vm.json: the commit point
      mark('registered');
    } catch (err) {
      s.committing = false;
      await this.abort(moveId, `commit failed: ${(err as Error).message}`);
      throw err;
    }
    // Registered: from here on the VM is this host's, whatever fails next. The guest runs again
    // first: the rest is bookkeeping, and the relay's close may wait for its connections to end.
    this.staged.delete(moveId);
    s.arrival?.done();
    // Before the guest runs: its lookup records here name this host, so its first frames are ours to route.
    const pa = this.host.hnv.providerAddress();
    if (pa !== undefined) await this.host.hnv.follow(e, pa);
    mark('records');
    await rt.resume();
    mark('resumed');
    await rt.announce().catch((err: unknown) => this.host.event('Warning', 'VM_ANNOUNCE_FAILED', `MAC addresses not announced: ${(err as Error).message}`, e));
    mark('announced');
    const handOver = Date.now() - t0;
    await rm(join(s.stageDir, INCOMING), { force: true });
    if (metering) await this.host.adoptMetering(e);
    await s.relay?.close();
    this.host.event('Information', 'VM_MOVED_IN', `VM moved in (move ${moveId}): disks opened, registered, resumed and announced ${handOver} ms after the source let go (ms: ${marks.join(', ')}; epoch ms: ${epochs.join(', ')}${rt.runStateAt.RESUME ? `, guest resumed ${Math.round(rt.runStateAt.RESUME)}` : ''})`, e);
    return view;
  }

  /** The move's outcome as this host knows it: a committed one leaves moved-in.json beside vm.json (it outlives a restart). */
  async outcome(moveId: string, secret: string, vmId: string): Promise<'Prepared' | 'Committed'> {
    if (this.staged.has(moveId)) { this.need(moveId, secret); return 'Prepared'; }
    const paths = vmPaths(this.host.dataDir, vmId);
    // A clustered arrival keeps its record node-local (its config is the shared folder's, there before the move).
    const clustered = join(this.host.dataDir, 'clustered', vmId, MOVED_IN);
    const rec = await readJson<{ moveId: string; secretHash: string }>(join(paths.dir, MOVED_IN)).catch(() => readJson<{ moveId: string; secretHash: string }>(clustered)).catch(() => undefined);
    const registered = (await exists(paths.config)) || (await exists(clustered));
    if (rec && rec.moveId === moveId && registered && timingSafeEqual(Buffer.from(rec.secretHash, 'base64'), sha(Buffer.from(secret, 'base64')))) return 'Committed';
    throw new VmhostError('NOT_FOUND', `move ${moveId} is not staged or committed on this host`, { move: moveId });
  }

  /** Undo a staged move: QEMU killed, held exports and ports gone, the folder removed. */
  async abortBySource(moveId: string, secret: string): Promise<void> {
    this.need(moveId, secret);
    await this.abort(moveId, 'cancelled by the source');
  }

  private async abort(moveId: string, why: string): Promise<void> {
    const s = this.staged.get(moveId);
    if (!s || s.committing) return;
    this.staged.delete(moveId);
    clearTimeout(s.timer);
    if (s.rt) { await s.rt.kill().catch(() => undefined); } // first: the relay's close then has nothing left to pass on
    await s.relay?.close().catch(() => undefined);
    for (const d of s.entry.config.hardDrives) await this.host.storage.stopDrive(d).catch(() => undefined);
    if (s.arrival) { this.host.storage.fenceDrives(s.entry.config.hardDrives, undefined); s.arrival.done(); }
    // Files a shared-nothing move created: partial copies, nobody's but the move's.
    await s.incoming?.server?.close().catch(() => undefined);
    for (const t of s.incoming?.targets.values() ?? []) await t.discard();
    await s.incoming?.files.discard();
    for (const f of s.records ?? []) await rm(f, { force: true });
    await this.host.network.forgetVm(s.entry).catch(() => undefined);
    await rm(s.stageDir, { recursive: true, force: true });
    await rm(s.entry.paths.sockets, { recursive: true, force: true });
    this.host.event('Warning', 'VM_MOVE_ABANDONED', `Incoming move ${moveId} of VM '${s.entry.config.name}' abandoned: ${why}`, s.entry);
  }

  /** Daemon start, before VMs load: folders of moves staged by a daemon that died are removed (their QEMU killed). */
  static async sweep(dataDir: string, event: MoveInHost['event']): Promise<void> {
    const root = join(dataDir, 'vms');
    for (const id of await readdir(root).catch(() => [] as string[])) {
      const dir = join(root, id);
      const rec = await readJson<{ moveId: string; files?: string[]; pid?: number; uuid?: string }>(join(dir, INCOMING)).catch(() => undefined);
      if (!rec || (await exists(join(dir, 'vm.json')))) continue;
      if (rec.pid !== undefined && rec.uuid !== undefined) {
        const cmdline = await readFile(`/proc/${rec.pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes(rec.uuid)) { try { process.kill(rec.pid, 'SIGKILL'); } catch { /* gone */ } }
      }
      for (const f of rec.files ?? []) await rm(f, { force: true });
      await rm(dir, { recursive: true, force: true });
      event('Warning', 'VM_MOVE_ABANDONED', `Incoming move ${rec.moveId} (VM ${id}) abandoned: the daemon stopped before it was committed${rec.files?.length ? `; its partial disk files removed (${rec.files.join(', ')})` : ''}`);
    }
  }
}

/** The VM as it arrives: a shared-nothing move's drives at their new paths. */
function withMovedDisks(p: MovePrepare): VmConfig {
  const storage = p.storage;
  if (!storage) return p.config;
  return {
    ...p.config,
    hardDrives: p.config.hardDrives.map((d) => {
      const to = storage[d.id];
      if (!to || !isAbsolute(to.path)) throw new VmhostError('INVALID_ARGUMENT', `the move of '${p.config.name}' names no absolute destination for ${d.path}`, { vm: p.config.name, path: d.path });
      return { ...d, path: to.path };
    }),
  };
}

/** Every file a move creates here (incoming.json lists them first): new disks, files sent as files, checkpoint records. */
function arrivingFiles(p: MovePrepare, snapshotDir: string): string[] {
  return [
    ...Object.values(p.storage ?? {}).map((x) => x.path),
    ...(p.files ?? []).map((f) => incomingPath(f, snapshotDir)),
    ...(p.checkpoints ?? []).map((r) => join(snapshotDir, `${r.id}.json`)),
  ];
}

/** Commit: every stream finished (all its writes flushed here), the files closed so the exports can open them. */
async function closeIncomingDisks(incoming: NonNullable<Staged['incoming']>, vm: string): Promise<void> {
  const unfinished = [...incoming.targets.keys()].filter((id) => !incoming.finished.has(id));
  if (unfinished.length > 0 || incoming.files.pending().length > 0) {
    throw new VmhostError('INVALID_STATE', `VM '${vm}': the copy of ${[...unfinished.map((id) => `drive ${id}`), ...incoming.files.pending()].join(', ')} is not complete`, { vm });
  }
  await incoming.files.ready; // every file arrived and re-pointed (the leaves over them could not finish otherwise)
  await incoming.server?.close();
  for (const t of incoming.targets.values()) await t.disk.close();
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
