// The host's side of the block server: which disk file is served under which export, for
// which VM drive or host mount. A file is served at most once, so one running VM (or one
// Mount-VHD) holds it; QEMU reaches each disk over its own unix socket. Every served file is
// locked (storage/file-lock.ts): the disk exclusive, its parents shared, so neither a VHD
// cmdlet nor a second daemon writes it; `holderOf` says which export holds a file, parents included.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { VmhostError, isVmhostError } from '../common/index.ts';
import { BlockServer, FencingStage, HeldDisk, OwnershipFence, branchDiskFile, localVolumeOps, type VolumeOps, type ChangeTracker, chainFiles, describeDiskFile, openDiskFile, type DiskCounters, type MinimumIopsAlert, type ServedDisk } from '../storage/index.ts';
import type { DiskSpec } from '../qemu/index.ts';
import type { HeldGeometry } from '../storage/index.ts';
import type { HardDrive, DvdDrive } from './drives.ts';
import { invalid } from './invalid-argument.ts';
import { hasBootSignature } from './boot-order.ts';
import { socketDirFor } from './runtime-dir.ts';

export interface MountInfo { Path: string; ReadOnly: boolean; NbdUri: string; ExportName: string }

export class VmStorage {
  readonly server: BlockServer;
  private readonly mounts = new Map<string, ServedDisk>();
  /** Move-VM's destination: exports whose files are not open yet, by export name. */
  private readonly held = new Map<string, HeldDisk>();
  /** A clustered VM's drives, by export name: served only through a fencing stage on its ownership token. */
  private readonly fences = new Map<string, OwnershipFence>();
  /**
   * Who creates and deletes disk files for this host (storage/volume-ops.ts): this process, unless
   * a cluster node routes operations on its Cluster Shared Volumes to their coordinators.
   */
  volumeOps: VolumeOps = localVolumeOps;

  /** `qemuGroup`: QEMU's group when it runs as its own user (it reconnects and hot-adds after dropping root). */
  constructor(private readonly dataDir: string, qemuGroup?: number) {
    // Export names are 41 characters; keep the socket path inside sun_path.
    this.server = new BlockServer({ socketDir: socketDirFor(dataDir, 'nbd', qemuGroup), socketGroup: qemuGroup });
  }

  onMinimumIops(fn: (alert: MinimumIopsAlert, restored: boolean) => void): void {
    this.server.on('minimum-iops-alert', (a) => fn(a, false));
    this.server.on('minimum-iops-restored', (a) => fn(a, true));
  }

  static exportName(drive: HardDrive): string {
    return `disk-${drive.id}`;
  }

  /** The drive's device id inside QEMU. */
  static diskId(drive: HardDrive): string {
    return `hd-${drive.id.slice(0, 8)}`;
  }

  /** Open a disk file once to prove it is a usable virtual disk (and its chain is whole); its logical sector size and whether it is bootable. */
  static async probe(path: string, param = 'Path'): Promise<{ logicalSectorSize: number; bootable: boolean }> {
    await access(path).catch(() => { throw invalid(param, `no such file: ${path}`); });
    const disk = await openDiskFile(path, { readOnly: true }).catch((e: unknown) => {
      if (isVmhostError(e, 'VHD_IN_USE')) throw e;
      throw invalid(param, `${path} is not a usable virtual disk: ${(e as Error).message}`);
    });
    try {
      const sector0 = new Uint8Array(disk.logicalSectorSize);
      await disk.read(sector0, 0);
      return { logicalSectorSize: disk.logicalSectorSize, bootable: hasBootSignature(sector0) };
    } finally {
      await disk.close();
    }
  }

  /** The export serving `path` itself (symlinks resolved), if any. */
  servedPath(path: string): ServedDisk | undefined {
    const abs = canonical(path);
    return this.server.list().find((s) => s.path !== undefined && canonical(s.path) === abs);
  }

  /** The export whose chain holds `path`: as its disk (locked exclusive unless read-only), or as a parent (locked shared). */
  holderOf(path: string): { served: ServedDisk; asParent: boolean; mount: boolean } | undefined {
    const abs = canonical(path);
    for (const served of this.server.list()) {
      const at = chainFiles(served.disk).findIndex((f) => canonical(f) === abs);
      if (at >= 0) return { served, asParent: at > 0, mount: [...this.mounts.values()].includes(served) };
    }
    return undefined;
  }

  /**
   * Merge `child` into its parent `target` while the export whose chain holds it keeps
   * serving (the block server's live merge; `commit` runs paused, see served-merge.ts).
   * False when no export holds the child (one being stopped is waited for): the caller merges
   * offline. `signal` pauses it (STORAGE_MERGE_PAUSED, the chain whole).
   */
  async mergeServed(child: string, target: string, progress: (done: number, total: number) => void, commit: () => Promise<void>, signal?: AbortSignal): Promise<boolean> {
    const h = this.holderOf(child);
    if (!h) return false;
    if (h.mount) throw new VmhostError('VHD_IN_USE', `${child} is mounted (Mount-VHD): dismount it before removing the checkpoint that froze its parent`, { path: child });
    if (this.server.isStopping(h.served.exportName)) {
      await this.server.stop(h.served.exportName);
      return false;
    }
    await this.server.merge(h.served.exportName, { child, target, progress, commit, ops: this.volumeOps, ...(signal ? { signal } : {}) });
    return true;
  }

  /** A disk file's parent (absolute), from the open chain when an export holds it (its lock keeps others out), else from the file. */
  async parentOf(path: string): Promise<string | null> {
    const h = this.holderOf(path);
    if (h) {
      const chain = chainFiles(h.served.disk);
      return chain[chain.findIndex((f) => canonical(f) === canonical(path)) + 1] ?? null;
    }
    const p = (await describeDiskFile(path)).ParentPath;
    return p === null ? null : resolve(p);
  }

  /** Serve one VM drive; the QEMU disk spec that reaches it. A drive with a change tracker file is tracked from its first write. */
  async serveDrive(d: HardDrive): Promise<DiskSpec> {
    const name = VmStorage.exportName(d);
    let served = this.server.get(name);
    if (!served) {
      const tracking = await access(this.trackerPath(d)).then(() => this.trackerPath(d), () => undefined);
      served = await this.serve(d.path, name, false, { maximumIops: d.maximumIops, minimumIops: d.minimumIops }, tracking);
      // First, before metering: a refused write reaches no other stage and is not counted as done.
      const fence = this.fences.get(name);
      if (fence) this.server.addStage(name, new FencingStage(fence), { before: 'metering' });
    }
    return this.diskSpec(d, served);
  }

  /** Where a drive's change tracker keeps its bitmap (DIR/cbt/, by drive id: it follows the drive, not the file). */
  trackerPath(d: HardDrive): string {
    return join(this.dataDir, 'cbt', `${VmStorage.exportName(d)}.cbt`);
  }

  /** Start tracking a served drive's changes (backup, replica); from then on every start tracks it. */
  async trackDrive(d: HardDrive): Promise<ChangeTracker> {
    const name = VmStorage.exportName(d);
    if (!this.server.get(name)) throw new VmhostError('INVALID_STATE', `${d.path} is not served: its VM is not running`, { path: d.path });
    await mkdir(join(this.dataDir, 'cbt'), { recursive: true, mode: 0o700 });
    return this.server.trackChanges(name, this.trackerPath(d));
  }

  /** A clustered VM's drives are written only while `fence` is valid (undefined: no longer fenced). Set before they are served. */
  fenceDrives(drives: readonly HardDrive[], fence: OwnershipFence | undefined): void {
    for (const d of drives) {
      if (fence) this.fences.set(VmStorage.exportName(d), fence);
      else this.fences.delete(VmStorage.exportName(d));
    }
  }

  private diskSpec(d: HardDrive, served: ServedDisk): DiskSpec {
    return {
      id: VmStorage.diskId(d),
      bus: d.controllerType === 'IDE' ? 'ide' : 'scsi',
      source: { kind: 'nbd', socketPath: served.socketPath, exportName: served.exportName },
      controllerNumber: d.controllerNumber,
      controllerLocation: d.controllerLocation,
      logicalBlockSize: served.disk.logicalSectorSize === 4096 ? 4096 : 512,
      physicalBlockSize: served.disk.physicalSectorSize === 4096 ? 4096 : 512,
    };
  }

  /** What a served drive looks like to its QEMU (Move-VM's destination serves the same before it may open the file). */
  geometry(d: HardDrive): HeldGeometry {
    const disk = this.server.get(VmStorage.exportName(d))?.disk;
    if (!disk) throw new VmhostError('NOT_FOUND', `${d.path} is not served`, { path: d.path });
    return { virtualSize: disk.virtualSize, logicalSectorSize: disk.logicalSectorSize, physicalSectorSize: disk.physicalSectorSize };
  }

  /**
   * Move-VM's destination: the drive's export exists (its QEMU connects at start) but holds
   * every request, the file unopened, until `activateDrive` — the source host still writes it.
   */
  async serveHeldDrive(d: HardDrive, g: HeldGeometry): Promise<DiskSpec> {
    const held = new HeldDisk(g);
    this.held.set(VmStorage.exportName(d), held);
    const served = await this.server.serve(held, { exportName: VmStorage.exportName(d), closeDisk: true, qos: { maximumIops: d.maximumIops, minimumIops: d.minimumIops } });
    return this.diskSpec(d, served);
  }

  /** The source has let go of the file: open it (locked exclusive) and let the held requests through. */
  async activateDrive(d: HardDrive): Promise<void> {
    const name = VmStorage.exportName(d);
    const held = this.held.get(name);
    if (!held) throw new VmhostError('NOT_FOUND', `${d.path} is not held for activation`, { path: d.path });
    const real = await openDiskFile(resolve(d.path), { readOnly: false });
    try {
      held.activate(real);
    } catch (e) {
      await real.close();
      throw e;
    }
    this.held.delete(name);
    // A clustered VM moved in: its writes pass only under the token its new owner took (set by fenceDrives before this).
    const fence = this.fences.get(name);
    if (fence) this.server.addStage(name, new FencingStage(fence), { before: 'metering' });
    await this.server.swapDisk(name, async () => ({ disk: real, path: d.path }));
  }

  /**
   * A checkpoint of one drive: a new differencing child named `childName` beside its file
   * takes the writes from now on. A served drive is branched under its connected QEMU (the
   * block server swaps the export: a short I/O pause); an idle one is branched on disk.
   * Returns the child's path: the drive's file from now on.
   */
  async branchDrive(d: HardDrive, childName: string): Promise<string> {
    const served = this.server.get(VmStorage.exportName(d));
    return served ? this.server.branch(served.exportName, childName, this.volumeOps) : branchDiskFile(d.path, childName, this.volumeOps);
  }

  /** A DVD drive for QEMU: the ISO opened read-only by QEMU itself, or an empty tray. */
  static dvdSpec(d: DvdDrive): DiskSpec {
    return {
      id: VmStorage.dvdId(d), bus: d.controllerType === 'IDE' ? 'ide' : 'scsi', media: 'cdrom', readOnly: true,
      source: d.path ? { kind: 'file', path: d.path, format: 'raw' } : { kind: 'empty' },
      controllerNumber: d.controllerNumber, controllerLocation: d.controllerLocation,
    };
  }

  /** The DVD drive's device id inside QEMU. */
  static dvdId(d: DvdDrive): string {
    return `dvd-${d.id.slice(0, 8)}`;
  }

  /** A served drive's first sector (boot-order.ts reads its boot signature). */
  async firstSector(d: HardDrive): Promise<Uint8Array> {
    const served = this.server.get(VmStorage.exportName(d));
    if (!served) throw new VmhostError('NOT_FOUND', `${d.path} is not served`, { path: d.path });
    const buf = new Uint8Array(served.disk.logicalSectorSize);
    await served.disk.read(buf, 0);
    return buf;
  }

  private async serve(path: string, exportName: string, readOnly: boolean, qos?: { maximumIops: number; minimumIops: number }, changeTracking?: string): Promise<ServedDisk> {
    try {
      return await this.server.serve(resolve(path), { exportName, readOnly, qos, ...(changeTracking === undefined ? {} : { changeTracking }) });
    } catch (e) {
      if ((e as VmhostError).code === 'STORAGE_DISK_IN_USE') {
        throw new VmhostError('INVALID_STATE', `${path} is in use (attached to a running VM or mounted)`, { path }, { cause: e });
      }
      throw e;
    }
  }

  async stopDrive(d: HardDrive): Promise<void> {
    this.held.delete(VmStorage.exportName(d));
    if (this.server.get(VmStorage.exportName(d))) await this.server.stop(VmStorage.exportName(d));
  }

  setQos(d: HardDrive): void {
    const name = VmStorage.exportName(d);
    if (this.server.get(name)) this.server.setQos(name, { maximumIops: d.maximumIops, minimumIops: d.minimumIops });
  }

  counters(d: HardDrive): DiskCounters | undefined {
    const name = VmStorage.exportName(d);
    return this.server.get(name) ? this.server.counters(name) : undefined;
  }

  uri(d: HardDrive): string | undefined {
    return this.server.get(VmStorage.exportName(d))?.uri;
  }

  /** Mount-VHD; `holder` names who holds the file (or a chain it is a parent in): a read-write mount of either is refused. */
  async mount(path: string, readOnly: boolean, holder: (path: string) => string | undefined): Promise<MountInfo> {
    const abs = resolve(path);
    const held = this.holderOf(abs);
    if (held && (!readOnly || !held.asParent)) throw diskInUse(abs, holder(abs) ?? 'another export of this host');
    await VmStorage.probe(path);
    const name = `mount-${createHash('sha256').update(abs).digest('hex').slice(0, 16)}`;
    const served = await this.serve(abs, name, readOnly);
    this.mounts.set(abs, served);
    return mountInfo(served);
  }

  async dismount(path: string): Promise<void> {
    const abs = resolve(path);
    const served = this.mounts.get(abs);
    if (!served) throw new VmhostError('NOT_FOUND', `${path} is not mounted`, { path });
    await served.stop();
    this.mounts.delete(abs);
  }

  listMounts(): MountInfo[] {
    return [...this.mounts.values()].map(mountInfo);
  }

  isMounted(path: string): boolean {
    return this.mounts.has(resolve(path));
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** A path with its symlinks resolved (as the path itself when it does not exist any more). */
function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Hyper-V's "in use" refusal, naming the holder ("VM 'web1'", "a host mount"). */
export function diskInUse(path: string, holder: string): VmhostError {
  return new VmhostError('VHD_IN_USE', `${path} is in use by ${holder}`, { path, holder });
}

function mountInfo(s: ServedDisk): MountInfo {
  return { Path: s.path ?? '', ReadOnly: s.readOnly, NbdUri: s.uri, ExportName: s.exportName };
}
