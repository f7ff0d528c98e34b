// The block server: one per daemon. Each served disk gets a unix socket of its own, an
// export name, and a pipeline (metering → QoS → disk). The daemon uses this class only:
// serve a path or an open VirtualDisk, read counters, change QoS, resize, stop. QoS alerts
// and connection events are emitted on the server.
import { EventEmitter } from 'node:events';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { mkdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError, isVmhostError } from '../common/errors.ts';
import { shareSocketWithGroup } from '../common/socket-group.ts';
import { Pipeline, type Stage } from './pipeline.ts';
import { MeteringStage, type DiskCounters } from './metering.ts';
import { QosStage, type QosLimits, type MinimumIopsAlert } from './qos.ts';
import { openDiskFile, resizeDisk } from './open-disk.ts';
import { branchDisk } from './disk-branch.ts';
import { mergeServed, type ServedMergeOptions } from './served-merge.ts';
import { startPointInTimeCopy, type PointInTimeCopy, type PointInTimeTarget } from './point-in-time.ts';
import { startMirror, type Mirror, type MirrorOptions } from './mirror.ts';
import { ChangeTracker } from './change-tracking/index.ts';
import { NbdConnection, type ServedExport } from './nbd/connection.ts';
import type { ExportDirectory } from './nbd/handshake.ts';
import type { VolumeOps } from './volume-ops.ts';

export interface BlockServerOptions {
  /** Directory for the per-disk unix sockets (created if missing). */
  socketDir: string;
  /** How long stop() waits for in-flight requests before cutting connections. Default 5000 ms. */
  drainTimeoutMs?: number;
  /** Disk files opened by path do requests up to this size synchronously (host-file.ts). Default 256 KiB; 0: never. */
  syncMaxBytes?: number;
  /** Group given rw on every socket (the unprivileged QEMU's, which connects after dropping root). Default: none. */
  socketGroup?: number;
}

export interface ServeOptions {
  /** Export name (letters, digits, '.', '_', '-'); default: derived from the file name. Also the socket's file name. */
  exportName?: string;
  readOnly?: boolean;
  description?: string;
  qos?: QosLimits;
  /** For a VirtualDisk argument: close it when the export stops. Paths are always closed. */
  closeDisk?: boolean;
  /** Track changed blocks in this file (trackChanges) from before the first request. */
  changeTracking?: string;
}

export interface ServedDisk {
  readonly exportName: string;
  readonly socketPath: string;
  /** nbd+unix:///<export>?socket=<path> */
  readonly uri: string;
  readonly disk: VirtualDisk;
  readonly readOnly: boolean;
  /** The file served, when serve() was given a path. */
  readonly path: string | undefined;
  stop(): Promise<void>;
}

export interface BlockServerEvents {
  'minimum-iops-alert': [MinimumIopsAlert];
  'minimum-iops-restored': [MinimumIopsAlert];
  'client-connected': [{ exportName: string }];
  'client-disconnected': [{ exportName: string }];
  'connection-error': [{ exportName: string; error: unknown }];
}

const NAME_RE = /^[A-Za-z0-9._-]{1,100}$/;
/** sun_path holds 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;

class Export implements ServedExport, ServedDisk, ExportDirectory<Export> {
  open = true;
  readonly pipeline: Pipeline;
  readonly metering = new MeteringStage();
  readonly qos: QosStage;
  readonly connections = new Set<NbdConnection<Export>>();
  readonly description: string;
  readonly uri: string;
  server: Server | undefined;
  stopping: Promise<void> | undefined;
  /** A live merge running on the export (its disk may not be swapped by anything else meanwhile). */
  merging: Promise<string> | undefined;
  /** Pauses that merge (STORAGE_MERGE_PAUSED). */
  mergeAbort: AbortController | undefined;

  constructor(
    readonly exportName: string,
    readonly socketPath: string,
    disk: VirtualDisk,
    readonly readOnly: boolean,
    /** The leaf file served; swapDisk moves it to the new leaf. */
    public path: string | undefined,
    /** Close the disk when the export stops: a path served, or a disk swapped in (the export owns those). */
    public closeDisk: boolean,
    description: string | undefined,
    private readonly owner: BlockServer,
  ) {
    this.description = description ?? path ?? exportName;
    this.uri = `nbd+unix:///${encodeURIComponent(exportName)}?socket=${socketPath}`;
    this.pipeline = new Pipeline(disk);
    this.qos = new QosStage({ exportName });
    this.pipeline.add(this.metering);
    this.pipeline.add(this.qos);
  }

  get disk(): VirtualDisk {
    return this.pipeline.disk;
  }

  // ExportInfo (read at every handshake, so a resize shows to new connections).
  get name(): string {
    return this.exportName;
  }
  get size(): number {
    return this.disk.virtualSize;
  }
  get minimumBlockSize(): number {
    return this.disk.logicalSectorSize;
  }
  get preferredBlockSize(): number {
    return Math.max(4096, this.disk.physicalSectorSize, this.disk.logicalSectorSize);
  }

  // ExportDirectory for this socket: its own name, or '' as the default export.
  find(name: string): Export | undefined {
    return this.open && (name === this.exportName || name === '') ? this : undefined;
  }
  list(): Export[] {
    return this.open ? [this] : [];
  }

  stop(): Promise<void> {
    return this.owner.stop(this.exportName);
  }
}

export class BlockServer extends EventEmitter<BlockServerEvents> {
  readonly socketDir: string;
  private readonly drainTimeoutMs: number;
  private readonly syncMaxBytes: number | undefined;
  private readonly socketGroup: number | undefined;
  private exports = new Map<string, Export>();
  /** Point-in-time copies and mirrors running (`job` unset while starting), by export: one per export. */
  private copies = new Map<string, { what: 'point-in-time copy' | 'mirror'; job?: PointInTimeCopy | Mirror }>();

  constructor(opts: BlockServerOptions) {
    super();
    this.socketDir = resolve(opts.socketDir);
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 5000;
    this.syncMaxBytes = opts.syncMaxBytes;
    this.socketGroup = opts.socketGroup;
  }

  /** Serve a disk file (VHDX, VHD or raw, with its parents) or an already open VirtualDisk. */
  async serve(disk: string | VirtualDisk, opts: ServeOptions = {}): Promise<ServedDisk> {
    const path = typeof disk === 'string' ? resolve(disk) : undefined;
    const exportName = opts.exportName ?? defaultExportName(path ?? 'disk');
    const ctx = { op: 'serve', export: exportName, path };
    if (!NAME_RE.test(exportName)) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `export name "${exportName}" may only use letters, digits, '.', '_' and '-'`, ctx);
    if (this.exports.has(exportName)) throw new VmhostError('STORAGE_EXPORT_EXISTS', `an export named ${exportName} is already served`, ctx);
    for (const e of this.exports.values()) {
      if ((path && e.path === path) || e.disk === disk) throw new VmhostError('STORAGE_DISK_IN_USE', `${path ?? exportName} is already served as ${e.exportName}`, ctx);
    }
    const socketPath = join(this.socketDir, `${exportName}.sock`);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes`, ctx);
    await mkdir(this.socketDir, { recursive: true });
    await removeStaleSocket(socketPath, ctx);

    const vd = typeof disk === 'string' ? await openDiskFile(disk, { readOnly: opts.readOnly ?? false, ...(this.syncMaxBytes === undefined ? {} : { syncMaxBytes: this.syncMaxBytes }) }) : disk;
    const readOnly = (opts.readOnly ?? false) || vd.readOnly;
    const exp = new Export(exportName, socketPath, vd, readOnly, path, typeof disk === 'string' || (opts.closeDisk ?? false), opts.description, this);
    this.exports.set(exportName, exp);
    exp.qos.on('minimum-iops-alert', (a: MinimumIopsAlert) => this.emit('minimum-iops-alert', a));
    exp.qos.on('minimum-iops-restored', (a: MinimumIopsAlert) => this.emit('minimum-iops-restored', a));
    if (opts.qos) exp.qos.set(opts.qos);
    try {
      if (opts.changeTracking !== undefined && !readOnly) exp.pipeline.add(await ChangeTracker.open(vd, opts.changeTracking), { after: 'qos' });
      exp.server = await listen(socketPath, (s) => this.accept(exp, s));
      await shareSocketWithGroup(socketPath, this.socketGroup);
      exp.server.on('error', (error) => this.emit('connection-error', { exportName, error }));
    } catch (e) {
      exp.server?.close();
      this.exports.delete(exportName);
      exp.pipeline.close();
      if (exp.closeDisk) await vd.close().catch(() => undefined);
      if (isVmhostError(e, 'STORAGE_TRACKING_FAILED')) throw e;
      throw new VmhostError('STORAGE_LISTEN_FAILED', `cannot listen on ${socketPath}`, ctx, { cause: e });
    }
    return exp;
  }

  private accept(exp: Export, socket: Socket): void {
    if (!exp.open) {
      socket.destroy();
      return;
    }
    const c = new NbdConnection<Export>(socket, exp, (error) => this.emit('connection-error', { exportName: exp.exportName, error }));
    exp.connections.add(c);
    this.emit('client-connected', { exportName: exp.exportName });
    void c.run().then(() => {
      exp.connections.delete(c);
      this.emit('client-disconnected', { exportName: exp.exportName });
    });
  }

  private need(exportName: string): Export {
    const e = this.exports.get(exportName);
    if (!e) throw new VmhostError('STORAGE_NO_SUCH_EXPORT', `no export named ${exportName}`, { export: exportName });
    return e;
  }

  get(exportName: string): ServedDisk | undefined {
    return this.exports.get(exportName);
  }

  list(): ServedDisk[] {
    return [...this.exports.values()];
  }

  /**
   * Track the export's changed blocks (change-tracking/): the tracker file at `path` is opened
   * (or created) and the stage goes in after metering and QoS, so every write is marked
   * durably before it lands. Resolves with the tracker; a second call answers the same one.
   */
  async trackChanges(exportName: string, path: string): Promise<ChangeTracker> {
    const e = this.need(exportName);
    const have = e.pipeline.get<ChangeTracker>('change-tracking');
    if (have) return have;
    if (e.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${exportName} is served read-only: nothing to track`, { op: 'change-tracking', export: exportName });
    // Opened with the pipeline idle: no write lands between reading the disk's identity and the stage going in.
    return Pipeline.whileIdle([e.pipeline], async () => {
      const t = await ChangeTracker.open(e.disk, path);
      e.pipeline.add(t, { after: 'qos' });
      return t;
    });
  }

  /** The export's change tracker, if it has one. */
  tracker(exportName: string): ChangeTracker | undefined {
    return this.need(exportName).pipeline.get<ChangeTracker>('change-tracking');
  }

  /** Change MaximumIOPS / MinimumIOPS (normalized IOPS; 0 removes the limit). Omitted fields stay. */
  setQos(exportName: string, limits: QosLimits): void {
    for (const v of [limits.maximumIops, limits.minimumIops]) {
      if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new VmhostError('STORAGE_INVALID_ARGUMENT', 'IOPS limits must be 0 or positive', { export: exportName });
    }
    this.need(exportName).qos.set(limits);
  }

  getQos(exportName: string): { maximumIops: number; minimumIops: number } {
    return this.need(exportName).qos.limits;
  }

  counters(exportName: string): DiskCounters {
    return this.need(exportName).metering.counters();
  }

  /** The export's pipeline, for stages added later (change tracking, mirror, encryption). */
  pipeline(exportName: string): Pipeline {
    return this.need(exportName).pipeline;
  }

  /** Add a stage just before the disk (after metering and QoS) unless a position is given. */
  addStage(exportName: string, stage: Stage, where: { before?: string; after?: string } = {}): void {
    this.need(exportName).pipeline.add(stage, where);
  }

  /**
   * Change the disk's virtual size (VHDX grow/shrink down to MinimumSize, VHD grow, raw).
   * New NBD connections see the new size; a running QEMU learns it through QMP block_resize.
   */
  async resize(exportName: string, newSize: number): Promise<void> {
    const e = this.need(exportName);
    if (e.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${exportName} is served read-only`, { op: 'resize', export: exportName });
    this.refuseDuringCopy(exportName, 'resize');
    if (e.merging) throw new VmhostError('STORAGE_EXPORT_BUSY', `${exportName}: a merge of its chain is running`, { op: 'resize', export: exportName });
    await resizeDisk(e.disk, newSize);
  }

  /**
   * Put another disk under a served export while its clients stay connected (Pipeline.swapDisk:
   * a pause, no error). `replace` gets the current disk, idle and flushed, and returns the
   * disk to serve and the file it is (a checkpoint's new leaf, a merged chain's top).
   */
  async swapDisk(exportName: string, replace: (current: VirtualDisk) => Promise<{ disk: VirtualDisk; path: string }>): Promise<void> {
    const e = this.need(exportName);
    if (!e.open) throw new VmhostError('STORAGE_NO_SUCH_EXPORT', `${exportName} is stopping`, { op: 'swap-disk', export: exportName });
    if (e.merging) throw new VmhostError('STORAGE_EXPORT_BUSY', `${exportName}: a merge of its chain is running`, { op: 'swap-disk', export: exportName });
    let path = e.path;
    await e.pipeline.swapDisk(async (current) => {
      // Checked with the pipeline idle: a copy that started first holds the disk, one after sees the new one.
      this.refuseDuringCopy(exportName, 'swap-disk');
      const next = await replace(current);
      path = resolve(next.path);
      return next.disk;
    });
    e.path = path;
    e.closeDisk = true;
  }

  /**
   * A checkpoint of a served disk: a new differencing leaf at `childPath` (relative to the
   * leaf's folder) takes the writes from now on; the old leaf becomes its read-only parent.
   * Clients stay connected and see a pause (disk-branch.ts). Returns the new leaf's path.
   * `ops` creates the child file (volume-ops.ts).
   */
  async branch(exportName: string, childPath: string, ops?: VolumeOps): Promise<string> {
    let failed: { error: unknown } | undefined;
    await this.swapDisk(exportName, async (current) => {
      const b = await branchDisk(current, childPath, ops);
      if (b.error !== undefined) failed = { error: b.error };
      return b;
    });
    if (failed) throw failed.error;
    return this.need(exportName).path!;
  }

  /**
   * Live merge (served-merge.ts): fold `child`, a file of the export's chain, into its parent
   * while clients keep reading and writing. Resolves with the leaf served afterwards; one
   * merge per export at a time, and no other swap meanwhile (STORAGE_EXPORT_BUSY).
   */
  async merge(exportName: string, opts: Omit<ServedMergeOptions, 'syncMaxBytes'>): Promise<string> {
    const e = this.need(exportName);
    if (!e.open) throw new VmhostError('STORAGE_NO_SUCH_EXPORT', `${exportName} is stopping`, { op: 'live-merge', export: exportName });
    this.refuseDuringCopy(exportName, 'live-merge');
    if (e.merging) throw new VmhostError('STORAGE_EXPORT_BUSY', `${exportName}: a merge of its chain is running`, { op: 'live-merge', export: exportName });
    // Stopping the export pauses the merge (stopExport), as does the caller's own signal.
    e.mergeAbort = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, e.mergeAbort.signal]) : e.mergeAbort.signal;
    e.merging = mergeServed(e.pipeline, { ...opts, signal, ...(this.syncMaxBytes === undefined ? {} : { syncMaxBytes: this.syncMaxBytes }) });
    try {
      const path = await e.merging;
      e.path = path;
      e.closeDisk = true;
      return path;
    } finally {
      e.merging = undefined;
      e.mergeAbort = undefined;
    }
  }

  /**
   * A point-in-time copy of one or more served disks into `targets` (point-in-time.ts): their
   * pipelines pause together for a moment, then the guest goes on while the disks are copied as
   * they were at that moment. While it runs, the exports refuse swaps (checkpoints) and resizes
   * with STORAGE_COPY_RUNNING; stopping an export cancels it.
   */
  async startPointInTimeCopy(targets: PointInTimeTarget[]): Promise<PointInTimeCopy> {
    const ctx = { op: 'point-in-time-copy' };
    if (targets.length === 0) throw new VmhostError('STORAGE_INVALID_ARGUMENT', 'a point-in-time copy needs at least one target', ctx);
    const names = new Set<string>();
    const parts = targets.map((t, i) => {
      const e = this.need(t.exportName);
      const where = { ...ctx, export: t.exportName };
      if (!e.open) throw new VmhostError('STORAGE_NO_SUCH_EXPORT', `${t.exportName} is stopping`, where);
      if (names.has(t.exportName)) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `${t.exportName} is named twice`, where);
      names.add(t.exportName);
      this.refuseDuringCopy(t.exportName, 'point-in-time-copy');
      if (e.merging) throw new VmhostError('STORAGE_EXPORT_BUSY', `${t.exportName}: a merge of its chain is running`, where);
      const ranges = t.ranges ?? 'all';
      if (ranges !== 'all' && ranges !== 'own' && typeof ranges !== 'function') throw new VmhostError('STORAGE_INVALID_ARGUMENT', `ranges must be 'all', 'own' or a function, not ${String(ranges)}`, where);
      if (t.target.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `the target of ${t.exportName} is open read-only`, where);
      if (t.target === e.disk) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the target of ${t.exportName} is the served disk itself`, where);
      if (targets.slice(0, i).some((o) => o.target === t.target)) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the target of ${t.exportName} is another export's target too`, where);
      if (t.target.virtualSize !== e.disk.virtualSize || t.target.logicalSectorSize > e.disk.logicalSectorSize) {
        throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the target of ${t.exportName} (${t.target.virtualSize} bytes, ${t.target.logicalSectorSize}-byte sectors) does not fit the disk (${e.disk.virtualSize} bytes, ${e.disk.logicalSectorSize}-byte sectors)`, where);
      }
      return { exportName: t.exportName, pipeline: e.pipeline, target: t.target, ranges };
    });
    // Claimed before the pause, so a swap or resize asked meanwhile is refused, not raced.
    for (const n of names) this.copies.set(n, { what: 'point-in-time copy' });
    let copy: PointInTimeCopy;
    try {
      copy = await startPointInTimeCopy(parts);
    } catch (err) {
      for (const n of names) this.copies.delete(n);
      throw err;
    }
    for (const n of names) this.copies.set(n, { what: 'point-in-time copy', job: copy });
    const release = () => { for (const n of names) if (this.copies.get(n)?.job === copy) this.copies.delete(n); };
    copy.done.then(release, release);
    // An export stopped during the pause found nothing to cancel yet.
    const stopped = [...names].filter((n) => !this.exports.get(n)?.open);
    if (stopped.length > 0) await copy.cancel(`stopped: ${stopped.join(', ')} stopped`);
    return copy;
  }

  /**
   * Storage live migration (mirror.ts): copy the export's disk to `opts.target` while clients
   * keep reading and writing, then serve the target. While it runs the export refuses swaps,
   * merges, resizes and copies (STORAGE_COPY_RUNNING); stopping the export cancels it.
   */
  async mirror(exportName: string, opts: MirrorOptions): Promise<Mirror> {
    const e = this.need(exportName);
    const where = { op: 'mirror', export: exportName };
    if (!e.open) throw new VmhostError('STORAGE_NO_SUCH_EXPORT', `${exportName} is stopping`, where);
    if (e.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${exportName} is served read-only: copy its file instead`, where);
    this.refuseDuringCopy(exportName, 'mirror');
    if (e.merging) throw new VmhostError('STORAGE_EXPORT_BUSY', `${exportName}: a merge of its chain is running`, where);
    const t = opts.target.disk;
    if (opts.ranges !== undefined && opts.ranges !== 'all' && opts.ranges !== 'own') throw new VmhostError('STORAGE_INVALID_ARGUMENT', `ranges must be 'all' or 'own', not ${String(opts.ranges)}`, where);
    if (t.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `the mirror target of ${exportName} is open read-only`, where);
    if (t === e.disk) throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the mirror target of ${exportName} is the served disk itself`, where);
    if (t.virtualSize !== e.disk.virtualSize || t.logicalSectorSize !== e.disk.logicalSectorSize || t.physicalSectorSize !== e.disk.physicalSectorSize) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the mirror target of ${exportName} (${t.virtualSize} bytes, ${t.logicalSectorSize}/${t.physicalSectorSize}-byte sectors) does not match the disk (${e.disk.virtualSize} bytes, ${e.disk.logicalSectorSize}/${e.disk.physicalSectorSize}-byte sectors)`, where);
    }
    // Claimed before the pause, so a swap or resize asked meanwhile is refused, not raced.
    this.copies.set(exportName, { what: 'mirror' });
    let mirror: Mirror;
    try {
      mirror = await startMirror(exportName, e.pipeline, opts);
    } catch (err) {
      this.copies.delete(exportName);
      throw err;
    }
    this.copies.set(exportName, { what: 'mirror', job: mirror });
    const release = () => { if (this.copies.get(exportName)?.job === mirror) this.copies.delete(exportName); };
    mirror.done.then(() => {
      e.path = opts.target.path === undefined ? undefined : resolve(opts.target.path);
      e.closeDisk = true;
      release();
    }, release);
    if (!e.open) await mirror.cancel(`stopped: export ${exportName} stopped`);
    return mirror;
  }

  private refuseDuringCopy(exportName: string, op: string): void {
    const running = this.copies.get(exportName);
    if (running) {
      throw new VmhostError('STORAGE_COPY_RUNNING', `a ${running.what} of ${exportName} is running`, { op, export: exportName });
    }
  }

  /** Stop serving: refuse new requests, let in-flight ones finish, close sockets and (if owned) the disk. */
  stop(exportName: string): Promise<void> {
    const e = this.need(exportName);
    e.stopping ??= this.stopExport(e);
    return e.stopping;
  }

  /** Whether the export is being stopped (it refuses new work; its stop() ends when it is gone). */
  isStopping(exportName: string): boolean {
    return !this.need(exportName).open;
  }

  private async stopExport(e: Export): Promise<void> {
    e.open = false;
    // A merge pauses after its current chunk (its files stay as a crash would leave them, resumable), or finishes its commit.
    if (e.merging) {
      e.mergeAbort?.abort();
      await e.merging.catch(() => undefined);
    }
    // The copy reads the disk about to close: it ends here, its `done` rejects as cancelled.
    await this.copies.get(e.exportName)?.job?.cancel(`stopped: export ${e.exportName} stopped`);
    const closed = new Promise<void>((r) => (e.server ? e.server.close(() => r()) : r()));
    const drained = Promise.all([...e.connections].map((c) => c.idle()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, this.drainTimeoutMs)))]);
    clearTimeout(timer);
    for (const c of e.connections) c.close(true);
    await closed;
    e.pipeline.close();
    await unlink(e.socketPath).catch(() => undefined);
    this.exports.delete(e.exportName);
    if (e.closeDisk) await e.disk.close();
  }

  /** Stop every export. */
  async close(): Promise<void> {
    await Promise.all([...this.exports.keys()].map((n) => this.stop(n)));
  }
}

function defaultExportName(path: string): string {
  const base = path.split('/').pop()!.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
  return base.slice(0, 100) || 'disk';
}

function listen(path: string, onSocket: (s: Socket) => void): Promise<Server> {
  return new Promise((resolveP, reject) => {
    const srv = createServer({ allowHalfOpen: false, pauseOnConnect: false }, onSocket);
    srv.once('error', reject);
    srv.listen(path, () => {
      srv.off('error', reject);
      resolveP(srv);
    });
  });
}

/** A socket file left by a dead server is removed; one that still answers is an error. */
async function removeStaleSocket(path: string, ctx: Record<string, string | undefined>): Promise<void> {
  const alive = await new Promise<boolean>((r) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
  if (alive) throw new VmhostError('STORAGE_SOCKET_IN_USE', `${path} is in use by a running server`, ctx);
  await unlink(path).catch(() => undefined);
}
