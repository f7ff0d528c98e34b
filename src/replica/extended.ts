// Extended replication (Hyper-V's third site): on a Replica server, Enable-VMReplication of a
// Replica VM sends it on to another Replica server, every 300 or 900 s (Hyper-V allows no 30 s
// here). It is a primary relationship (primary.ts: its states, timer, statistics, health) whose
// points come not from a running VM but from the replica this host keeps: each recovery point
// applied here records the 64 KiB blocks it wrote (replica-server.ts calls `applying` before the
// point is committed, and the blocks are saved before that, so a crash can only send a block
// twice, never lose one), and a cycle copies those blocks from the replica's newest files —
// under the replica's lock, so no point is applied or merged meanwhile — into a sparse temporary
// file per drive, then sends them like any cycle. The third host's replica then equals this
// one's at the newest point applied before the cycle, with that point's time and type. The
// blocks of a cycle in flight are kept apart (`inFlight`) and go back to `pending` if it fails;
// a replica initialized again from its primary makes the next cycle a full copy.
import { mkdir, open, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { openDiskFile, RawDisk, TRACKING_BLOCK } from '../storage/index.ts';
import type { PointConsistency } from './app-consistent.ts';
import { blocksToExtents, mergeBlocks, type BlockSets } from './changed-blocks.ts';
import { checkSettings, PrimaryReplication, type PointKind, type Relationship, type ReplicationSettings, type ReplicationView } from './primary.ts';
import type { ReplicaServer } from './replica-server.ts';
import { ReplicaStore, type ReplicaRecord } from './replica-store.ts';
import { sendPoint, type OutgoingDrive } from './send-point.ts';

/** Hyper-V: an extended replication runs every 5 or 15 minutes. */
export const EXTENDED_FREQUENCIES = [300, 900] as const;

interface ExtendedRelationship extends Relationship {
  /** Drive id → the blocks this host's points changed since the last cycle the third host acknowledged. */
  pending: BlockSets;
  /** The blocks of the cycle being sent (saved, so a crash mid-cycle loses none). */
  inFlight: BlockSets;
  /** The next cycle is a full copy (the first, or the replica here was initialized again). */
  full: boolean;
}

export class ExtendedReplication extends PrimaryReplication {
  constructor(host: Host, timerScale: number, private readonly server: ReplicaServer) {
    super(host, timerScale);
    server.onApplying = (id, initial, changed) => this.applying(id, initial, changed);
  }

  protected override get dir(): string {
    return join(this.host.dataDir, 'replication-extended');
  }

  override async open(): Promise<void> {
    await super.open();
    // A cycle cut short by a crash: its blocks go with the next one.
    for (const r of this.rels.values() as Iterable<ExtendedRelationship>) {
      r.pending = mergeBlocks(r.pending, r.inFlight);
      r.inFlight = {};
    }
  }

  protected override checkEnable(vm: { Id: string; Name: string; ReplicationMode: string }, s: ReplicationSettings): void {
    if (vm.ReplicationMode !== 'Replica' || !this.server.replicas.has(vm.Id)) throw new VmhostError('INVALID_STATE', `'${vm.Name}' is not a Replica VM of this host: only a replica is extended`, { vm: vm.Name });
    if (!(EXTENDED_FREQUENCIES as readonly number[]).includes(s.ReplicationFrequencySec)) {
      throw new VmhostError('INVALID_ARGUMENT', `ReplicationFrequencySec: an extended replication runs every ${EXTENDED_FREQUENCIES.join(' or ')} seconds, not ${s.ReplicationFrequencySec}`, { param: 'ReplicationFrequencySec' });
    }
    if ((s.VSSSnapshotFrequencyHour ?? 0) !== 0) throw new VmhostError('INVALID_ARGUMENT', 'VSSSnapshotFrequencyHour: an extended replication sends the primary\'s points as they are (their type with them)', { param: 'VSSSnapshotFrequencyHour' });
    checkSettings(s);
  }

  protected override extra(): Pick<ExtendedRelationship, 'pending' | 'inFlight' | 'full'> {
    return { pending: {}, inFlight: {}, full: true };
  }

  protected override cycleable(r: Relationship): boolean {
    return this.server.replicas.has(r.VMId);
  }

  /** The replica's copy is on this host's disks already: an extended relationship's initial copy goes over the network. */
  override startInitial(nameOrId: string, progress: (pct: number, what: string) => void, media?: string, useBackup = false): Promise<ReplicationView> {
    if (media !== undefined) return Promise.reject(new VmhostError('REPLICATION_UNSUPPORTED', 'DestinationPath: an extended replication\'s initial copy goes over the network', { vm: nameOrId, param: 'DestinationPath' }));
    if (useBackup) return Promise.reject(new VmhostError('REPLICATION_UNSUPPORTED', 'UseBackup: an extended replication\'s initial copy goes over the network', { vm: nameOrId, param: 'UseBackup' }));
    return super.startInitial(nameOrId, progress);
  }

  /** A replica's blocks are sent on as its points wrote them: no resynchronization by comparison (Start-VMInitialReplication again instead). */
  override resume(nameOrId: string, resynchronize = false): Promise<ReplicationView> {
    if (resynchronize) return Promise.reject(new VmhostError('REPLICATION_UNSUPPORTED', 'Resynchronize: an extended replication does not compare blocks; remove it and start its initial replication again', { vm: nameOrId, param: 'Resynchronize' }));
    return super.resume(nameOrId);
  }

  /** Not a running VM's drives: nothing to forget in a tracker. */
  protected override async forget(): Promise<void> {}

  /** A recovery point is about to be committed here: its blocks are owed to the third host. */
  private async applying(vmId: string, initial: boolean, changed: ReadonlyMap<string, ReadonlySet<number>>): Promise<void> {
    const r = this.rels.get(vmId) as ExtendedRelationship | undefined;
    if (!r) return;
    if (initial) r.full = true;
    else r.pending = mergeBlocks(r.pending, Object.fromEntries(changed));
    await this.save(r);
  }

  protected override async send(rel: Relationship, kind: PointKind, progress: (pct: number, what: string) => void): Promise<void> {
    const r = rel as ExtendedRelationship;
    const initial = kind === 'initial';
    const t0 = Date.now();
    const full = initial || r.full;
    const tmp = join(this.dir, `${r.VMId}.tmp`);
    let point: Awaited<ReturnType<ExtendedReplication['stage']>> | undefined;
    try {
      point = await this.server.withReplica(r.VMId, async () => {
        const rec = this.server.replicas.get(r.VMId);
        if (!rec) throw new VmhostError('REPLICATION_NOT_ENABLED', `this host no longer holds the replica of '${r.VMName}'`, { vm: r.VMName });
        r.inFlight = full ? {} : r.pending;
        r.pending = {};
        r.full = false;
        await this.save(r);
        return this.stage(rec, full ? undefined : r.inFlight, tmp, progress);
      });
      const config = full ? this.host.configOf(r.VMId) : undefined;
      const conn = await this.connect(r);
      try {
        const sent = await sendPoint(conn, { at: point.at, drives: point.drives, consistency: point.consistency, ...(config ? { config } : {}) },
          { recoveryHistory: r.settings.RecoveryHistory, compress: r.settings.CompressionEnabled }, progress);
        r.inFlight = {};
        this.succeeded(r, point.at, sent, t0);
      } finally {
        conn.close();
      }
    } catch (e) {
      r.pending = mergeBlocks(r.pending, r.inFlight);
      r.inFlight = {};
      if (full) r.full = true;
      throw e;
    } finally {
      for (const d of point?.drives ?? []) await d.copy.close().catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * The blocks to send, copied out of the replica's newest files into sparse temporary files
   * (the caller holds the replica's lock): every data block when `blocks` is undefined (full).
   */
  private async stage(rec: ReplicaRecord, blocks: BlockSets | undefined, tmp: string, progress: (pct: number, what: string) => void): Promise<{ at: Date; drives: OutgoingDrive[]; consistency: PointConsistency }> {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    const drives: OutgoingDrive[] = [];
    for (const [id, d] of Object.entries(rec.drives)) {
      const src = await openDiskFile(ReplicaStore.leaf(rec, id), { readOnly: true });
      try {
        const path = join(tmp, `${id}.img`);
        const fh = await open(path, 'wx', 0o600);
        await fh.truncate(d.virtualSize);
        await fh.close();
        const copy = await RawDisk.open(await NodeFile.open(path));
        drives.push({
          id, fileName: basename(d.base).replace(`-${id.slice(0, 8)}.vhdx`, '.vhdx'), copy, logicalSectorSize: src.logicalSectorSize, physicalSectorSize: src.physicalSectorSize,
          taken: blocks === undefined ? { full: true, extents: [{ offset: 0, length: d.virtualSize }], bytes: d.virtualSize } : takenOf(blocks[id] ?? [], d.virtualSize),
        });
        const want = blocks === undefined ? (await src.blockStatus(0, d.virtualSize)).filter((x) => !x.zero) : drives.at(-1)!.taken.extents;
        await copyExtents(src, copy, want);
      } finally {
        await src.close();
      }
      progress(5 + (30 * drives.length) / Object.keys(rec.drives).length, 'Copying the replica\'s changed blocks');
    }
    const last = rec.points.at(-1);
    const consistency: PointConsistency = last?.consistency ? { consistency: last.consistency, ...(last.reason !== undefined ? { reason: last.reason } : {}) } : { consistency: 'CrashConsistent', reason: 'the replica\'s base (its initial replication or merged points)' };
    return { at: new Date(rec.lastReplicationTime), drives, consistency };
  }

  override view(r: Relationship): ReplicationView {
    const rec = this.server.replicas.get(r.VMId);
    return { ...super.view(r), ReplicationMode: 'Replica', ReplicationRelationshipType: 'Extended', PrimaryServerName: rec?.primaryServer ?? '' };
  }
}

function takenOf(blocks: readonly number[], virtualSize: number) {
  const extents = blocksToExtents(blocks, TRACKING_BLOCK, virtualSize);
  return { full: false, extents, bytes: extents.reduce((a, e) => a + e.length, 0) };
}

/** Copy extents from `src` to `dst` in 1 MiB pieces; all-zero pieces stay holes (they read as zeros). */
async function copyExtents(src: Awaited<ReturnType<typeof openDiskFile>>, dst: RawDisk, extents: ReadonlyArray<{ offset: number; length: number }>): Promise<void> {
  const buf = Buffer.alloc(1 << 20);
  const zero = Buffer.alloc(buf.length);
  for (const e of extents) {
    for (let o = 0; o < e.length; o += buf.length) {
      const piece = buf.subarray(0, Math.min(buf.length, e.length - o));
      await src.read(piece, e.offset + o);
      if (!piece.equals(zero.subarray(0, piece.length))) await dst.write(piece, e.offset + o);
    }
  }
}
