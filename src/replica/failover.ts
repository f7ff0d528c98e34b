// Hyper-V Replica failover on the Replica server (and -Prepare on the primary); the rules of
// which step is legal when are failover-rules.ts's.
//
// - Recovery points are Get-VMSnapshot's answer for a Replica VM: the base (the oldest state
//   kept) and each point, named by its time, so -VMRecoverySnapshot can name one.
// - Test failover (-AsTest) makes "<name> - Test": a new VM whose drives are new differencing
//   files on the chosen point, adapters unconnected. The chain under it must not change, so the
//   point merges wait while it exists (store.prune: the points pile up beyond RecoveryHistory);
//   cycles still arrive, each a new file on the newest point, which nothing of the test VM
//   reads. Stop-VMFailover removes the test VM and its files and runs the merges that waited
//   (or leaves them to the next point's commit when one is arriving and holds the chain open).
//   (A copy of the chain would cost a full disk's read and write per test; deferring costs
//   only the points' space while the test runs.)
// - Failover: the Replica VM goes on a differencing file per drive on the chosen point (the
//   points, later ones too, stay as they are, so Stop-VMFailover can undo by dropping that
//   file), FailedOverWaitingCompletion, startable. Its `replica` change tracker starts clean
//   right there, so a later Set-VMReplication -Reverse sends only what the VM wrote since.
//   Complete-VMFailover drops the later points and merges the chosen chain into the base, each
//   point recorded gone once merged: offline when the VM is off (the VM's own file then stands
//   on the base: it carries the change tracking a delta Reverse sends from, and an offline merge
//   of it would make the tracker lose track), else live in the block server (the live merge
//   Remove-VMSnapshot of a running VM uses, the guest reading and writing meanwhile), the VM's
//   own file last — the tracker follows a live merge — so a running VM ends on one file per drive.
// - Reverse: the old primary is asked (wire `reverse`) to become the replica. It decides
//   (failover-rules.ts reverseStart): `delta` when it was prepared and its last point is the one
//   failed over to — its disks are then that point, and they become the replica's base as they
//   are — else its disks still become the replica as they are, but they are not that point (an
//   unplanned failover, or the old VM ran since): `resync`, the new primary's relationship waits
//   in WaitingForStartResynchronize, and Resume-VMReplication -Resynchronize compares the
//   blocks of both sides and sends only those that differ (block-compare.ts), not the whole disk.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { createDifferencingFile, openDiskFile } from '../storage/index.ts';
import { foldOffline, type Host, type SnapshotView, type VmView } from '../host/index.ts';
import { assertPrimaryStep, assertReplicaStep, choosePoint, reverseStart, type PointRef } from './failover-rules.ts';
import { ReplicaConnection } from './connection.ts';
import { REPLICA_CONSUMER, type PrimaryReplication, type ReplicationSettings, type ReplicationView } from './primary.ts';
import { ReplicaStore, replicaSide, type ReplicaRecord } from './replica-store.ts';
import type { ReplicaServer } from './replica-server.ts';

export interface FailoverRequest { AsTest?: boolean; Prepare?: boolean; VMRecoverySnapshot?: string }

/** A recovery point's Id: stable for the VM and the point's number. */
function pointId(vmId: string, seq: number): string {
  const h = createHash('sha1').update(`${vmId}/${seq}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The drive files that hold point `seq` (0: the base). */
function filesAt(rec: ReplicaRecord, seq: number): Record<string, string> {
  if (seq === 0) return Object.fromEntries(Object.entries(rec.drives).map(([id, d]) => [id, d.base]));
  return rec.points.find((p) => p.seq === seq)!.files;
}

export class Failover {
  constructor(private readonly host: Host, private readonly server: ReplicaServer, private readonly primary: PrimaryReplication) {
    server.onReverse = (vm, from, basedOn) => this.becomeReplica(vm, from, basedOn);
  }

  private get store() {
    return this.server.store;
  }

  /** The test VM `vmId` is, if it is one: its Replica VM's record. */
  testOf(vmId: string): ReplicaRecord | undefined {
    return [...this.server.replicas.values()].find((r) => r.test?.vmId === vmId);
  }

  /** Get-VMSnapshot of a Replica VM: the base and the recovery points, oldest first (a failed-over VM's are gone). */
  recoveryPoints(vmId: string): SnapshotView[] | undefined {
    const rec = this.server.replicas.get(vmId);
    if (!rec || rec.failover?.state === 'FailedOver') return undefined;
    const vm = this.host.configOf(vmId);
    const all: PointRef[] = [{ seq: 0, time: rec.baseTime }, ...rec.points];
    return all.map((p, i) => {
      const parent = i === 0 ? null : all[i - 1]!;
      return {
        VMName: vm.name, VMId: vm.id, Name: p.time, Id: pointId(vm.id, p.seq), SnapshotType: 'Replica', CreationTime: p.time,
        ParentSnapshotId: parent && pointId(vm.id, parent.seq), ParentSnapshotName: parent?.time ?? null,
        ParentCheckpointId: parent && pointId(vm.id, parent.seq), ParentCheckpointName: parent?.time ?? null,
        State: 'Off', Path: rec.dir, SizeOfSystemFiles: 0, ProcessorCount: vm.processorCount, MemoryStartup: vm.memoryStartupBytes,
        Generation: vm.generation, Notes: vm.notes, HardDrives: Object.values(filesAt(rec, p.seq)), ComputerName: this.host.facts.computerName, IsDeleted: false,
      };
    });
  }

  /** Start-VMFailover: -Prepare on the primary, -AsTest or a failover on the Replica server. */
  async start(nameOrId: string, o: FailoverRequest): Promise<VmView | ReplicationView> {
    const vm = this.host.get(nameOrId);
    const rel = this.primary.has(vm.Id);
    if (o.Prepare) {
      if (!rel) throw new VmhostError('REPLICATION_FAILOVER_STATE', `'${vm.Name}' is not a primary VM: -Prepare runs on the primary of a planned failover`, { vm: vm.Name });
      return this.primary.prepare(vm.Id);
    }
    if (rel) assertPrimaryStep(vm.Name, rel.replicationState, vm.State, 'Start');
    return o.AsTest ? this.startTest(vm.Id, o.VMRecoverySnapshot) : this.failover(vm.Id, o.VMRecoverySnapshot);
  }

  private async record(vmId: string): Promise<ReplicaRecord> {
    const rec = await this.store.get(vmId);
    if (!rec) throw new VmhostError('REPLICATION_NOT_ENABLED', `'${this.host.get(vmId).Name}' is not a Replica VM on this server`, { vm: vmId });
    return rec;
  }

  private side(rec: ReplicaRecord) {
    return replicaSide(rec, this.host.get(rec.vmId).State);
  }

  /** A differencing file per drive on point `seq`, in `dir`, named `<parent>-<tag>.avhdx`; all or none. */
  private async childrenOf(rec: ReplicaRecord, seq: number, dir: string, tag: string): Promise<Record<string, string>> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const made: Record<string, string> = {};
    try {
      for (const [id, parent] of Object.entries(filesAt(rec, seq))) {
        const path = join(dir, `${basename(parent).replace(/\.[^.]*$/, '')}-${tag}.avhdx`);
        await rm(path, { force: true });
        made[id] = path;
        await createDifferencingFile(path, parent, { format: 'VHDX' });
      }
      return made;
    } catch (e) {
      for (const f of Object.values(made)) await rm(f, { force: true });
      throw e;
    }
  }

  private saved(rec: ReplicaRecord): Promise<void> {
    this.server.replicas.set(rec.vmId, rec);
    return this.store.save(rec);
  }

  /** The newest point's files: where the Replica VM stands while it is not failed over. */
  private leaves(rec: ReplicaRecord): Record<string, string> {
    return Object.fromEntries(Object.keys(rec.drives).map((id) => [id, ReplicaStore.leaf(rec, id)]));
  }

  private chosen(rec: ReplicaRecord, named: string | undefined): PointRef {
    return choosePoint({ seq: 0, time: rec.baseTime }, rec.points, named, (p) => pointId(rec.vmId, p.seq));
  }

  private startTest(vmId: string, named: string | undefined): Promise<VmView> {
    return this.store.serial(async () => {
      const rec = await this.record(vmId);
      assertReplicaStep(rec.vmName, this.side(rec), 'StartTest');
      const p = this.chosen(rec, named);
      const testId = randomUUID();
      const files = await this.childrenOf(rec, p.seq, join(rec.dir, 'test'), 'test');
      const config = this.host.configOf(vmId);
      try {
        await this.host.registerReplica({ ...config, id: testId, name: `${config.name} - Test`, hardDrives: config.hardDrives.map((d) => ({ ...d, path: files[d.id] ?? d.path })) },
          `Test VM of recovery point ${p.time}`);
      } catch (e) {
        for (const f of Object.values(files)) await rm(f, { force: true });
        throw e;
      }
      rec.test = { vmId: testId, seq: p.seq, files };
      await this.saved(rec);
      return this.host.get(testId);
    });
  }

  private failover(vmId: string, named: string | undefined): Promise<VmView> {
    return this.store.serial(async () => {
      const rec = await this.record(vmId);
      assertReplicaStep(rec.vmName, this.side(rec), 'Start');
      const p = this.chosen(rec, named);
      const files = await this.childrenOf(rec, p.seq, rec.dir, 'failover');
      try {
        await this.host.setReplicaDrives(vmId, files);
        // The tracker of the new files starts clean: everything the VM writes from here is what reverse replication sends.
        await this.host.withConsistentPoint(vmId, { consumer: REPLICA_CONSUMER, fresh: true }, (point) => point.commit());
        await this.saved({ ...rec, failover: { state: 'FailedOverWaitingCompletion', seq: p.seq, files } });
      } catch (e) {
        await this.host.setReplicaDrives(vmId, this.leaves(rec));
        for (const f of Object.values(files)) await rm(f, { force: true });
        throw e;
      }
      this.host.events.emit({ Level: 'Information', Code: 'VM_FAILED_OVER', Message: `Failed over to recovery point ${p.time}: the VM may start; Complete-VMFailover commits, Stop-VMFailover undoes`, VMId: vmId, VMName: rec.vmName });
      return this.host.get(vmId);
    });
  }

  /** Stop-VMFailover: the test VM removed, or the failover undone, or (primary) -Prepare called off. */
  async stop(nameOrId: string): Promise<VmView | ReplicationView> {
    const vm = this.host.get(nameOrId);
    if (this.primary.has(vm.Id)) return this.primary.cancelPrepare(vm.Id);
    return this.store.serial(async () => {
      const rec = await this.record(vm.Id);
      const side = this.side(rec);
      if (rec.test) {
        assertReplicaStep(rec.vmName, side, 'StopTest');
        await this.host.remove(rec.test.vmId, true);
        for (const f of Object.values(rec.test.files)) await rm(f, { force: true });
        delete rec.test;
      } else {
        assertReplicaStep(rec.vmName, side, 'Stop');
        const files = rec.failover!.files;
        delete rec.failover;
        await this.host.setReplicaDrives(rec.vmId, this.leaves(rec));
        for (const f of Object.values(files)) await rm(f, { force: true });
      }
      await this.saved(rec);
      // The merges that waited. A point arriving meanwhile holds the chain open (its new file's parents): then they
      // run with that point's commit, which merges once its own files are closed.
      await this.store.prune(this.host, rec).catch((e: unknown) => this.host.events.emit({
        Level: 'Information', Code: 'VM_REPLICA_MERGE_DEFERRED', Message: `The recovery points' merges wait for the next point: ${(e as Error).message}`, VMId: rec.vmId, VMName: rec.vmName,
      }));
      return this.host.get(rec.vmId);
    });
  }

  /** Complete-VMFailover: the points after the chosen one dropped; an off VM's chain merged into the base. */
  async complete(nameOrId: string): Promise<VmView> {
    const vm = this.host.get(nameOrId);
    const rel = this.primary.has(vm.Id);
    if (rel) assertPrimaryStep(vm.Name, rel.replicationState, vm.State, 'Complete');
    return this.store.serial(async () => {
      const rec = await this.record(vm.Id);
      assertReplicaStep(rec.vmName, this.side(rec), 'Complete');
      await this.dropLater(rec);
      await this.mergeIntoBase(rec);
      rec.failover = { ...rec.failover!, state: 'FailedOver' };
      await this.saved(rec);
      return this.host.get(rec.vmId);
    });
  }

  /**
   * Complete-VMFailover's merge: each point, oldest first, folded into the base — live where an
   * export serves it (a running VM), else offline (an off VM, or one that stopped meanwhile: the
   * served merge then answers that it merged nothing) — then, live only, the VM's own file.
   */
  private async mergeIntoBase(rec: ReplicaRecord): Promise<void> {
    const fold = async (child: string, id: string, above: string | undefined, commit: () => Promise<void>) => {
      const base = rec.drives[id]!.base;
      const live = await this.host.storage.mergeServed(child, base, () => undefined, commit);
      if (!live) await foldOffline(base, { child, grandchildren: above ? [above] : [] }, commit);
    };
    while (rec.points.length > 0) {
      const [p, next] = [rec.points[0]!, rec.points[1]];
      for (const [id, file] of Object.entries(p.files)) await fold(file, id, next ? next.files[id] : rec.failover!.files[id], async () => undefined);
      rec.points.shift();
      rec.baseTime = p.time;
      await this.store.save(rec);
    }
    // The leaf: the VM's drive names the base from the commit on (run with the export paused, the base complete).
    for (const [id, file] of Object.entries(rec.failover!.files)) {
      const base = rec.drives[id]!.base;
      if (file !== base && await this.host.storage.mergeServed(file, base, () => undefined, () => this.host.setReplicaDrives(rec.vmId, { [id]: base }))) rec.failover!.files[id] = base;
    }
  }

  /** The points after the one failed over to: nothing stands on them. */
  private async dropLater(rec: ReplicaRecord): Promise<void> {
    const seq = rec.failover!.seq;
    for (const p of rec.points.filter((x) => x.seq > seq)) for (const f of Object.values(p.files)) await rm(f, { force: true });
    rec.points = rec.points.filter((x) => x.seq <= seq);
    await this.store.save(rec);
  }

  /** Set-VMReplication -Reverse on the failed-over Replica VM: this host becomes its primary, the old primary its replica. */
  async reverse(nameOrId: string, s: ReplicationSettings): Promise<ReplicationView> {
    const vm = this.host.get(nameOrId);
    return this.store.serial(async () => {
      const rec = await this.record(vm.Id);
      assertReplicaStep(rec.vmName, this.side(rec), 'Reverse');
      const conn = await ReplicaConnection.open(await this.primary.peer(s), 'reverse', { id: vm.Id, name: vm.Name }, rec.failover!.seq);
      conn.close();
      const start = conn.welcome?.start ?? 'full';
      await this.dropLater(rec);
      await this.store.forget(rec);
      this.server.replicas.delete(rec.vmId);
      const view = await this.primary.adopt({ id: vm.Id, name: vm.Name }, s, start);
      const next = { delta: 'only the changes since the failover go', resync: 'Resume-VMReplication -Resynchronize sends the blocks that differ', full: 'Start-VMInitialReplication sends a full copy' }[start];
      this.host.events.emit({ Level: 'Information', Code: 'VM_REPLICATION_REVERSED', Message: `Replication reversed: this host is the primary, ${s.ReplicaServerName} the Replica server (${next})`, VMId: vm.Id, VMName: vm.Name });
      return view;
    });
  }

  /** The old primary's half of -Reverse: its (off) VM becomes the replica of the host that failed over. */
  private async becomeReplica(vm: { id: string; name: string }, from: { name: string; storage: string }, basedOn: number): Promise<'delta' | 'resync'> {
    const here = this.host.get(vm.id);
    if (here.State !== 'Off') throw new VmhostError('REPLICATION_FAILOVER_STATE', `'${here.Name}' is ${here.State} on its old primary: turn it off before reversing replication`, { vm: here.Name });
    const rel = this.primary.has(vm.id);
    const start = reverseStart(rel && { state: rel.replicationState, preparedSeq: rel.preparedSeq ?? null }, basedOn);
    if (rel) await this.primary.remove(vm.id);
    const drives: ReplicaRecord['drives'] = {};
    for (const d of this.host.configOf(vm.id).hardDrives) {
      // Read-write: a VM that died with its host left a VHDX log, replayed here as its next start would (a read-only open refuses it).
      const disk = await openDiskFile(d.path);
      drives[d.id] = { base: d.path, virtualSize: disk.virtualSize };
      await disk.close();
    }
    const now = new Date().toISOString();
    await mkdir(join(from.storage, vm.id), { recursive: true, mode: 0o700 });
    await this.store.serial(() => this.saved({
      vmId: vm.id, vmName: here.Name, primaryServer: from.name, dir: join(from.storage, vm.id), drives, points: [],
      baseTime: now, lastSeq: 0, lastReplicationTime: now, recoveryHistory: 0,
    }));
    this.host.events.emit({ Level: 'Information', Code: 'VM_REPLICATION_REVERSED', Message: `Now the Replica VM of '${from.name}' (reverse replication: its disks ${start === 'delta' ? 'are the point failed over to' : 'are compared with the new primary\'s at its resynchronization'})`, VMId: vm.id, VMName: here.Name });
    return start;
  }
}
