// The Replica server's copies of primaries' VMs. Per VM, in the storage folder its primary was
// authorized into, `<folder>/<VM id>/`: a base VHDX per drive (the initial replication's full
// copy) and, per recovery point, a differencing VHDX per drive on top of the one before
// (`<drive>-rp<seq>.avhdx`), listed in `replica.json`, which is the commit point: a point is
// acknowledged only after its files are flushed and replica.json names it. Beyond
// RecoveryHistory the oldest point is merged into the base (the offline merge through the disk
// facade, its child re-pointed), so the base holds the state of the oldest point still named;
// RecoveryHistory 0 merges every point at once (only the latest state stays). The host's
// registry of replicas (`DIR/replicas.json`: VM id → folder) lets a restarted daemon find them.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { VmhostError } from '../common/index.ts';
import { createDiskFile, createDifferencingFile, mergeDiskFile, openDiskFile, TRACKING_BLOCK } from '../storage/index.ts';
import { foldOffline, writeFileAtomic, type Host, type VmConfig } from '../host/index.ts';
import { prunePlan, type RecoveryPoint } from './recovery-points.ts';
import { assertReplicaStep, mergesDeferred, type ReplicaSide } from './failover-rules.ts';
import type { PointConsistency } from './app-consistent.ts';
import { wireError, type Compression, type WireDrive } from './wire.ts';
import type { ShipmentTrace } from './shipment-trace.ts';

const inflate = promisify(inflateRaw);

export interface ReplicaPoint extends RecoveryPoint, Partial<PointConsistency> {
  /** Drive id → its differencing file. */
  files: Record<string, string>;
  /** A continuous shipment, recorded as a point of its own and folded into the point before when the next one arrives. */
  fold?: true;
}

export interface ReplicaRecord {
  vmId: string;
  vmName: string;
  primaryServer: string;
  dir: string;
  drives: Record<string, { base: string; virtualSize: number }>;
  points: ReplicaPoint[];
  /** The state of the base: the initial replication's moment, then the newest merged point's. */
  baseTime: string;
  lastSeq: number;
  lastReplicationTime: string;
  recoveryHistory: number;
  /** Start-VMFailover (failover.ts): the point failed over to and the VM's differencing files on it. */
  failover?: { state: 'FailedOverWaitingCompletion' | 'FailedOver'; seq: number; files: Record<string, string> };
  /** Start-VMFailover -AsTest: the test VM and its differencing files on the chosen point. */
  test?: { vmId: string; seq: number; files: Record<string, string> };
  /** The primary's id of the initial copy the base is (absent from older replicas). */
  baseId?: string;
}

/** The Replica VM's failover state and whether a test VM stands on its chain (failover-rules.ts). */
export function replicaSide(rec: ReplicaRecord, vmState: string): ReplicaSide {
  return { state: rec.failover?.state ?? 'Replicating', testing: rec.test !== undefined, vmState };
}

type Open = Awaited<ReturnType<typeof openDiskFile>>;

/** One point being received: its files open for writing until `finish` or `abort`. */
export class IncomingPoint {
  private readonly disks = new Map<string, Open>();
  private readonly created: string[] = [];
  /** Each drive's file the point's new one stands on (a delta): the record's leaf when the point began. */
  private readonly parents: string[] = [];
  bytes = 0;
  /** Drive id → the 64 KiB blocks this point wrote (what an extended replication sends on). */
  readonly changed = new Map<string, Set<number>>();

  constructor(private readonly store: ReplicaStore, readonly rec: ReplicaRecord, readonly initial: boolean, readonly seq: number, readonly time: string,
    readonly compression: Compression, private readonly drives: readonly WireDrive[], readonly config: VmConfig | undefined,
    private readonly consistency: PointConsistency = { consistency: 'CrashConsistent' }, private readonly append = false) {}

  /** Create this point's files: the bases (initial) or a differencing file per drive on the current leaf. */
  async open(host: Host, trace?: ShipmentTrace): Promise<void> {
    await mkdir(this.rec.dir, { recursive: true, mode: 0o700 });
    // The shipment before, if it waits to be folded, is folded first: this point's files stand on the result.
    if (!this.initial) await this.store.serial(() => this.store.foldPending(host, this.rec));
    trace?.mark('fold');
    for (const d of this.drives) {
      let path: string;
      if (this.initial) {
        path = join(this.rec.dir, `${d.fileName.replace(/\.[^.]*$/, '')}-${d.id.slice(0, 8)}.vhdx`);
        await rm(path, { force: true });
        this.created.push(path);
        await createDiskFile(path, { format: 'VHDX', type: 'Dynamic', size: d.virtualSize, logicalSectorSize: d.logicalSectorSize as 512 | 4096, physicalSectorSize: d.physicalSectorSize as 512 | 4096 });
        this.rec.drives[d.id] = { base: path, virtualSize: d.virtualSize };
      } else {
        const have = this.rec.drives[d.id];
        if (!have || have.virtualSize !== d.virtualSize) throw wireError(`drive ${d.id} (${d.virtualSize} bytes) is not the replica's (initial replication again after a drive was added or resized)`);
        path = join(this.rec.dir, `${d.fileName.replace(/\.[^.]*$/, '')}-${d.id.slice(0, 8)}-rp${this.seq}.avhdx`);
        await rm(path, { force: true });
        this.created.push(path);
        this.parents.push(ReplicaStore.leaf(this.rec, d.id));
        await createDifferencingFile(path, this.parents.at(-1)!, { format: 'VHDX' });
      }
      this.disks.set(d.id, await openDiskFile(path));
    }
  }

  /** One extent piece: inflated when the relationship compresses, checked to fit its drive. */
  async write(drive: string, offset: number, length: number, zero: boolean, payload: Buffer | undefined): Promise<void> {
    const disk = this.disks.get(drive);
    if (!disk) throw wireError(`data for drive ${drive}, which the point does not list`);
    if (offset + length > disk.virtualSize) throw wireError(`extent [${offset}, +${length}) is outside drive ${drive} (${disk.virtualSize} bytes)`);
    let data: Uint8Array;
    if (zero) data = new Uint8Array(length);
    else {
      data = this.compression === 'deflate' ? await inflate(payload!, { maxOutputLength: length }).catch((e: Error) => { throw wireError(`a data frame does not inflate: ${e.message}`); }) : payload!;
      if (data.length !== length) throw wireError(`a data frame holds ${data.length} bytes for an extent of ${length}`);
    }
    await disk.write(data, offset);
    this.bytes += length;
    let blocks = this.changed.get(drive);
    if (!blocks) this.changed.set(drive, (blocks = new Set()));
    for (let b = Math.floor(offset / TRACKING_BLOCK); b * TRACKING_BLOCK < offset + length; b++) blocks.add(b);
  }

  /** Flush and record the point (the commit), re-point the replica VM, then merge what history no longer keeps. */
  async finish(host: Host, trace?: ShipmentTrace): Promise<number> {
    for (const d of this.disks.values()) await d.flush();
    for (const d of this.disks.values()) await d.close();
    this.disks.clear();
    trace?.mark('flush');
    return this.store.serial(() => this.commit(host, trace));
  }

  private async commit(host: Host, trace?: ShipmentTrace): Promise<number> {
    const rec = this.rec;
    // While the point arrived a failover may have begun (refused then), a test VM come or gone, the older points
    // been merged (Stop-VMFailover's waiting merges): the point goes on the record as it is now.
    const now = await this.store.get(rec.vmId);
    if (now) {
      assertReplicaStep(now.vmName, replicaSide(now, ''), 'Receive');
      if (!this.initial) Object.assign(rec, { drives: now.drives, points: now.points, baseTime: now.baseTime });
      if (now.test) rec.test = now.test;
      else delete rec.test;
    }
    // Merges never take the file the point stands on while it is open (its lock); should the chain have changed
    // under it all the same, the point is refused rather than recorded on a parent the record no longer names.
    const moved = this.drives.findIndex((d, i) => !this.initial && ReplicaStore.leaf(rec, d.id) !== this.parents[i]);
    if (moved >= 0) throw wireError(`drive ${this.drives[moved]!.id}'s newest point changed while this point arrived: it is sent again next cycle`);
    if (this.initial) {
      rec.points = [];
      rec.baseTime = this.time;
    } else {
      rec.points.push({ seq: this.seq, time: this.time, ...this.consistency, files: Object.fromEntries(this.drives.map((d, i) => [d.id, this.created[i]!])), ...(this.append ? { fold: true as const } : {}) });
    }
    rec.lastSeq = this.seq;
    rec.lastReplicationTime = this.time;
    trace?.mark('checks');
    await this.store.save(rec);
    trace?.mark('record');
    await this.store.pointVm(host, rec, this.config);
    trace?.mark('repoint');
    // A continuous shipment is acknowledged as it stands (its fold waits for the next shipment, off this one's path):
    // the count is the points it leaves once folded.
    if (this.append) return mergesDeferred(replicaSide(rec, '')) ? rec.points.length : rec.points.length - 1;
    // The point is recorded: a merge that fails now (a file held open) must not undo it; it is tried again next point.
    await this.store.prune(host, rec).catch((e: unknown) => host.events.emit({
      Level: 'Warning', Code: 'VM_REPLICA_MERGE_DEFERRED', Message: `The recovery points' merges wait for the next point: ${(e as Error).message}`, VMId: rec.vmId, VMName: rec.vmName,
    }));
    trace?.mark('merges');
    return rec.points.length;
  }

  /** The point did not arrive whole: its files go, the replica stays at its last point. */
  async abort(): Promise<void> {
    for (const d of this.disks.values()) await d.close().catch(() => undefined);
    this.disks.clear();
    for (const f of this.created) await rm(f, { force: true });
  }
}

export class ReplicaStore {
  private registry: Record<string, string> = {};
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataDir: string) {}

  /** Record changes one at a time: a point's commit with its merges, a failover's steps. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  async load(): Promise<ReplicaRecord[]> {
    this.registry = await readFile(join(this.dataDir, 'replicas.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, string>, () => ({}));
    const out: ReplicaRecord[] = [];
    for (const dir of Object.values(this.registry)) {
      const r = await this.read(dir);
      if (r) out.push(r);
    }
    return out;
  }

  private read(dir: string): Promise<ReplicaRecord | undefined> {
    return readFile(join(dir, 'replica.json'), 'utf8').then((t) => JSON.parse(t) as ReplicaRecord, () => undefined);
  }

  /** The replica of `vmId`, if this host has one. */
  async get(vmId: string): Promise<ReplicaRecord | undefined> {
    const dir = this.registry[vmId];
    return dir === undefined ? undefined : this.read(dir);
  }

  async save(rec: ReplicaRecord): Promise<void> {
    await writeFileAtomic(join(rec.dir, 'replica.json'), JSON.stringify(rec, null, 2));
    if (this.registry[rec.vmId] !== rec.dir) {
      this.registry[rec.vmId] = rec.dir;
      await writeFileAtomic(join(this.dataDir, 'replicas.json'), JSON.stringify(this.registry, null, 2));
    }
  }

  /** The drive's newest file: its newest point's, else the base. */
  static leaf(rec: ReplicaRecord, driveId: string): string {
    return rec.points.at(-1)?.files[driveId] ?? rec.drives[driveId]!.base;
  }

  /** A point of `primary`'s VM begins: the replica's record (a new one for an initial replication). */
  async begin(vm: { id: string; name: string }, primary: string, storage: string, initial: boolean, history: number): Promise<ReplicaRecord> {
    const have = await this.get(vm.id);
    // No primary recorded: a replica seeded from a backup (replica-server.ts), claimed by the first primary authorized for it.
    if (have && have.primaryServer !== '' && have.primaryServer !== primary) {
      throw new VmhostError('REPLICATION_UNAUTHORIZED', `the replica of VM ${vm.id} belongs to primary '${have.primaryServer}', not '${primary}'`, { vm: vm.id });
    }
    if (!have && !initial) throw new VmhostError('REPLICATION_NOT_ENABLED', `this server holds no replica of VM '${vm.name}' (${vm.id}): start the initial replication`, { vm: vm.id });
    if (have) {
      assertReplicaStep(have.vmName, replicaSide(have, ''), 'Receive');
      return { ...have, primaryServer: primary, vmName: vm.name, recoveryHistory: history };
    }
    return {
      vmId: vm.id, vmName: vm.name, primaryServer: primary, dir: join(storage, vm.id), drives: {}, points: [],
      baseTime: '', lastSeq: 0, lastReplicationTime: '', recoveryHistory: history,
    };
  }

  /** The Replica VM: registered at the initial replication (Off, ReplicationMode Replica), its drives at the newest files. */
  async pointVm(host: Host, rec: ReplicaRecord, config: VmConfig | undefined): Promise<void> {
    const exists = (() => {
      try {
        host.get(rec.vmId);
        return true;
      } catch {
        return false;
      }
    })();
    const leaves = Object.fromEntries(Object.keys(rec.drives).map((id) => [id, ReplicaStore.leaf(rec, id)]));
    if (!exists) {
      if (!config) throw new VmhostError('REPLICATION_NOT_ENABLED', `the Replica VM ${rec.vmId} is gone: start the initial replication again`, { vm: rec.vmId });
      const drives = config.hardDrives.filter((d) => leaves[d.id] !== undefined).map((d) => ({ ...d, path: leaves[d.id]! }));
      await host.registerReplica({ ...config, hardDrives: drives });
      return;
    }
    await host.setReplicaDrives(rec.vmId, leaves);
  }

  /**
   * Continuous mode: the newest point, when it is a shipment waiting to be folded, is merged into
   * the one before (which takes its time and type). Until the merge is recorded the shipment
   * stays a point of its own, so a crash in between leaves one more recovery point, never a
   * half-applied one. Not while a test VM or a failover stands on the chain (failover-rules.ts):
   * the shipment stays a point of its own. The Replica VM is moved onto the merged files before
   * the shipment's files go. `rec` takes the record as it is now.
   */
  async foldPending(host: Host, rec: ReplicaRecord): Promise<void> {
    const now = (await this.get(rec.vmId)) ?? rec;
    Object.assign(rec, { drives: now.drives, points: now.points, baseTime: now.baseTime });
    if (mergesDeferred(replicaSide(now, ''))) return;
    const [prev, last] = rec.points.slice(-2);
    if (!prev || !last?.fold) return;
    // Every drive merged (the new files kept) before the record drops them, and removed only after.
    for (const [id, file] of Object.entries(last.files)) await mergeDiskFile(file, prev.files[id]!, undefined, { keepMerged: true });
    rec.points.pop();
    Object.assign(prev, { time: last.time, consistency: last.consistency, reason: last.reason });
    if (last.reason === undefined) delete prev.reason;
    await this.save(rec);
    await this.pointVm(host, rec, undefined);
    for (const file of Object.values(last.files)) await rm(file, { force: true });
  }

  /**
   * Merge the points RecoveryHistory no longer keeps into the base, oldest first, each recorded
   * when done. Not while a test VM or a failover stands on the chain: those merges wait (the
   * points pile up beyond RecoveryHistory) until Stop-VMFailover, so no file under a VM changes.
   */
  async prune(host: Host, rec: ReplicaRecord): Promise<void> {
    if (mergesDeferred(replicaSide(rec, ''))) return;
    const { merge } = prunePlan(rec.points, rec.recoveryHistory);
    for (let i = 0; i < merge.length; i++) await this.mergeOldest(host, rec);
  }

  /**
   * The oldest point merged into the base and recorded: the next point — or, on the newest, the
   * failed-over VM's own differencing file (Complete-VMFailover) — re-pointed to the base; with
   * neither, the Replica VM now stands on the base.
   */
  async mergeOldest(host: Host, rec: ReplicaRecord): Promise<void> {
    const p = rec.points[0]!;
    const next = rec.points[1];
    for (const [id, file] of Object.entries(p.files)) {
      const child = next ? next.files[id] : rec.failover?.files[id];
      await foldOffline(rec.drives[id]!.base, { child: file, grandchildren: child ? [child] : [] }, async () => undefined);
    }
    rec.points.shift();
    rec.baseTime = p.time;
    await this.save(rec);
    if (!next && !rec.failover) await host.setReplicaDrives(rec.vmId, Object.fromEntries(Object.entries(rec.drives).map(([id, d]) => [id, d.base])));
  }

  /** Set-VMReplication -Reverse: the VM is no replica here any more (its files stay: they are its disks). */
  async forget(rec: ReplicaRecord): Promise<void> {
    await rm(join(rec.dir, 'replica.json'), { force: true });
    delete this.registry[rec.vmId];
    await writeFileAtomic(join(this.dataDir, 'replicas.json'), JSON.stringify(this.registry, null, 2));
  }
}
