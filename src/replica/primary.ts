// The primary side of Hyper-V Replica: one relationship per VM (Enable-VMReplication), kept in
// DIR/replication/<VM id>.json. Start-VMInitialReplication sends the VM's configuration and a
// full copy of its drives (only their data) over the network; then every ReplicationFrequencySec
// a cycle takes the VM's consistent point (host.withConsistentPoint: the point-in-time copy's
// pause with the `replica` tracker consumer's take in it) and sends only the changed 64 KiB
// blocks, zlib-deflated when CompressionEnabled (Node 20's zlib has no zstd). The take is
// committed only after the Replica server acknowledged the point as durable; any failure
// restores it (those blocks go with the next cycle), counts an error and turns Health to
// Warning, and Critical after three failures in a row. A tick that finds the previous cycle
// still running is a missed cycle. A VM that is not running has nothing to send (its disks are
// not served, so nothing changes them); its ticks pass. A cycle whose tracker lost track (a full
// take) sends nothing: the relationship waits in WaitingForStartResynchronize (Hyper-V's
// "resynchronization required") until Resume-VMReplication -Resynchronize compares the blocks
// of both sides and sends only the differing ones (block-compare.ts) — as
// Start-VMInitialReplication -UseBackup does against a replica seeded from a backup.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic, type ConsistentPoint, type Host } from '../host/index.ts';
import { loadCertificate, trustedCas } from './cert-store.ts';
import { ReplicaConnection, type Peer } from './connection.ts';
import { checkRecoveryHistory, FREQUENCIES, type FrequencySec } from './recovery-points.ts';
import { assertPrimaryStep } from './failover-rules.ts';
import { appConsistentDue, checkVssFrequency, pointConsistency, type PointConsistency } from './app-consistent.ts';
import { sendPoint, type OutgoingDrive } from './send-point.ts';
import { compareBlocks } from './block-compare.ts';
import { PIECE } from './wire.ts';
import { MediaSink } from './media.ts';
import { ShipmentTrace } from './shipment-trace.ts';
import { appendsToPoint, CONTINUOUS, CONTINUOUS_TICK_MS, lagging } from './continuous.ts';

export const REPLICA_CONSUMER = 'replica';
/** Continuous: shipments sent plain after a compressed one gained under 10 % (about 5 s at a shipment per 200 ms). */
const PLAIN_SHIPMENTS = 25;
/**
 * Continuous: the relationship's file (statistics, the newest point's time) is written at most
 * this often, not after every shipment; a crash loses only statistics (B's record is what counts),
 * and the next shipment sends what the tracker holds either way.
 */
const SAVE_EVERY_MS = 2_000;
const CRITICAL_AFTER = 3;

export type PrimaryState = 'ReadyForInitialReplication' | 'InitialReplicationInProgress' | 'WaitingForInitialReplication' | 'Replicating' | 'Suspended' | 'Error' | 'PreparedForFailover'
  | 'WaitingForStartResynchronize' | 'Resynchronizing';

/** What a point sends: the initial copy, a cycle's changed blocks, or a resynchronization's differing blocks. */
export type PointKind = 'initial' | 'cycle' | 'resync';

export interface ReplicationSettings {
  ReplicaServerName: string;
  ReplicaServerPort: number;
  AuthenticationType: 'Certificate';
  CertificateThumbprint: string | null;
  /** 30/300/900, or 1: continuous (vmhost extension, continuous.ts). */
  ReplicationFrequencySec: FrequencySec | typeof CONTINUOUS;
  RecoveryHistory: number;
  CompressionEnabled: boolean;
  ExcludedVhdPath: string[];
  /** Hours between app-consistent recovery points (the guest frozen for the point); 0: none. Absent in relationships made before it. */
  VSSSnapshotFrequencyHour?: number;
}

export interface Statistics {
  MonitoringStartTime: string;
  SuccessfulReplicationCount: number;
  MissedReplicationCount: number;
  ReplicationErrors: number;
  /** Bytes of changed blocks per cycle (before compression), and what crossed the wire. */
  TotalReplicationSize: number;
  MaximumReplicationSize: number;
  LastReplicationSize: number;
  LastTransferredSize: number;
  TotalLatencyMs: number;
}

export interface Relationship {
  VMId: string;
  VMName: string;
  settings: ReplicationSettings;
  replicationState: PrimaryState;
  failuresInRow: number;
  lastError: string | null;
  lastReplicationTime: string | null;
  recoveryPoints: number;
  /** The last point that froze the guest (app-consistent), for -VSSSnapshotFrequencyHour. */
  lastAppConsistentTime?: string | null;
  /** Continuous mode: when the newest recovery point was started (shipments append to it until the next is due), and whether the replica lags. */
  lastPointStartTime?: string | null;
  lagging?: boolean;
  /** The id of the initial copy (network or media) the cycles build on. */
  baseId?: string;
  stats: Statistics;
  /** The Replica server's number for the last point it acknowledged; the one -Prepare sent (failover.ts). */
  lastSeq?: number;
  preparedSeq?: number | null;
}

export function freshStats(): Statistics {
  return {
    MonitoringStartTime: new Date().toISOString(), SuccessfulReplicationCount: 0, MissedReplicationCount: 0, ReplicationErrors: 0,
    TotalReplicationSize: 0, MaximumReplicationSize: 0, LastReplicationSize: 0, LastTransferredSize: 0, TotalLatencyMs: 0,
  };
}

/** Enable-/Set-VMReplication's checks: the 2012 R2 frequencies, RecoveryHistory 0..24, a port, certificate authentication. */
export function checkSettings(s: ReplicationSettings): void {
  const bad = (param: string, m: string) => new VmhostError('INVALID_ARGUMENT', `${param}: ${m}`, { param });
  if (!([...FREQUENCIES, CONTINUOUS] as readonly number[]).includes(s.ReplicationFrequencySec)) throw bad('ReplicationFrequencySec', `${s.ReplicationFrequencySec} is not one of ${FREQUENCIES.join(', ')} (or ${CONTINUOUS}: continuous)`);
  if (!checkRecoveryHistory(s.RecoveryHistory)) throw bad('RecoveryHistory', `${s.RecoveryHistory} is not an integer from 0 to 24`);
  if (!Number.isInteger(s.ReplicaServerPort) || s.ReplicaServerPort < 1 || s.ReplicaServerPort > 65535) throw bad('ReplicaServerPort', `${s.ReplicaServerPort} is not a TCP port`);
  checkVssFrequency(s.VSSSnapshotFrequencyHour ?? 0, s.RecoveryHistory);
  if (s.AuthenticationType !== 'Certificate') throw new VmhostError('REPLICATION_UNSUPPORTED', 'AuthenticationType: only Certificate is supported (Kerberos needs an Active Directory domain)', { param: 'AuthenticationType' });
}

/** Get-VMReplication's object on the primary. */
export interface ReplicationView extends ReplicationSettings {
  VMName: string; VMId: string; ComputerName: string;
  ReplicationMode: 'Primary' | 'Replica';
  /** Extended: this host's Replica VM replicated on to a third host (extended.ts). */
  ReplicationRelationshipType?: 'Simple' | 'Extended';
  ReplicationState: string;
  ReplicationHealth: 'Normal' | 'Warning' | 'Critical';
  PrimaryServerName: string;
  CurrentReplicaServerName: string;
  LastReplicationTime: string | null;
  RecoveryPoints: number;
  LastError: string | null;
}

export class PrimaryReplication {
  protected readonly rels = new Map<string, Relationship>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  protected readonly running = new Map<string, { conn?: ReplicaConnection; done: Promise<void> }>();
  /** Continuous relationships: the connection kept from one shipment to the next (no TLS handshake each time). */
  private readonly links = new Map<string, ReplicaConnection>();
  /** Continuous relationships: shipments left to send uncompressed, the last compressed one having gained nothing. */
  private readonly plain = new Map<string, number>();
  /** Continuous relationships whose tick met a shipment in flight: the next starts as soon as that one ends. */
  private readonly again = new Set<string>();
  /** When each relationship was last saved: a continuous one's shipments save it at most every SAVE_EVERY_MS. */
  private readonly savedAt = new Map<string, number>();

  /** `timerScale`: the cycle timer runs every ReplicationFrequencySec × scale (tests only: vmhostd --replication-timer-scale). */
  constructor(protected readonly host: Host, protected readonly timerScale: number) {}

  protected get dir(): string {
    return join(this.host.dataDir, 'replication');
  }

  async open(): Promise<void> {
    const files = await readdir(this.dir).catch(() => [] as string[]);
    for (const f of files.filter((x) => x.endsWith('.json'))) {
      const r = JSON.parse(await readFile(join(this.dir, f), 'utf8')) as Relationship;
      this.rels.set(r.VMId, r);
      this.arm(r);
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
    for (const r of this.running.values()) r.conn?.close();
    await Promise.all([...this.running.values()].map((r) => r.done.catch(() => undefined)));
    for (const id of [...this.links.keys()]) this.unlink(id);
    // A continuous relationship's last shipments may not be saved yet (SAVE_EVERY_MS).
    for (const r of this.rels.values()) if (r.settings.ReplicationFrequencySec === CONTINUOUS) await this.save(r).catch(() => undefined);
  }

  /** A continuous relationship's kept connection closed (settings changed, removed, the daemon stopping). */
  private unlink(vmId: string): void {
    this.links.get(vmId)?.close();
    this.links.delete(vmId);
  }

  has(vmId: string): Relationship | undefined {
    return this.rels.get(vmId);
  }

  protected rel(nameOrId: string): Relationship {
    const id = this.host.get(nameOrId).Id;
    const r = this.rels.get(id);
    if (!r) throw new VmhostError('REPLICATION_NOT_ENABLED', `replication is not enabled for virtual machine '${this.host.get(nameOrId).Name}'`, { vm: nameOrId });
    return r;
  }

  protected async save(r: Relationship): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.savedAt.set(r.VMId, Date.now());
    await writeFileAtomic(join(this.dir, `${r.VMId}.json`), JSON.stringify(r, null, 2));
  }

  async peer(s: Pick<ReplicationSettings, 'ReplicaServerName' | 'ReplicaServerPort' | 'CertificateThumbprint'>): Promise<Peer> {
    return {
      server: s.ReplicaServerName, port: s.ReplicaServerPort,
      certificate: await loadCertificate(this.host.dataDir, s.CertificateThumbprint), trusted: await trustedCas(this.host.dataDir),
    };
  }

  /** Test-VMReplicationConnection: connect, authenticate both ways, say hello. */
  async test(s: Pick<ReplicationSettings, 'ReplicaServerName' | 'ReplicaServerPort' | 'CertificateThumbprint'>): Promise<string> {
    const c = await ReplicaConnection.open(await this.peer(s), 'test');
    c.close();
    return `Connection to the Replica server ${s.ReplicaServerName} on port ${s.ReplicaServerPort} succeeded (certificate authentication)`;
  }

  /** Enable-VMReplication: the relationship, after the Replica server accepted a test connection. */
  async enable(nameOrId: string, s: ReplicationSettings): Promise<ReplicationView> {
    const vm = this.host.get(nameOrId);
    if (this.rels.has(vm.Id)) throw new VmhostError('ALREADY_EXISTS', `replication is already enabled for virtual machine '${vm.Name}'`, { vm: vm.Name });
    this.checkEnable(vm, s);
    await this.test(s);
    const r: Relationship = {
      VMId: vm.Id, VMName: vm.Name, settings: s, replicationState: 'ReadyForInitialReplication', failuresInRow: 0, lastError: null,
      lastReplicationTime: null, recoveryPoints: 0, stats: freshStats(), ...this.extra(),
    };
    await this.save(r);
    this.rels.set(r.VMId, r);
    return this.view(r);
  }

  /** What Enable-VMReplication refuses for this kind of relationship. */
  protected checkEnable(vm: { Id: string; Name: string; ReplicationMode: string }, s: ReplicationSettings): void {
    if (vm.ReplicationMode === 'Replica') throw new VmhostError('REPLICATION_VM_IS_REPLICA', `'${vm.Name}' is a Replica VM: Enable-VMReplication on its Replica server makes an extended replication`, { vm: vm.Name });
    checkSettings(s);
  }

  /** Fields a kind of relationship adds to a new one. */
  protected extra(): object {
    return {};
  }

  /**
   * Start-VMInitialReplication: the configuration and a full copy of the drives, over the
   * network — or with `media`, into that folder (media.ts); the cycles then wait until the
   * Replica server imported it.
   */
  async startInitial(nameOrId: string, progress: (pct: number, what: string) => void, media?: string, useBackup = false): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    if (r.replicationState !== 'ReadyForInitialReplication' && r.replicationState !== 'Error') throw new VmhostError('INVALID_STATE', `the initial replication of '${r.VMName}' is ${r.replicationState === 'InitialReplicationInProgress' ? 'running' : 'done'}`, { vm: r.VMName });
    if (useBackup && media !== undefined) throw new VmhostError('INVALID_ARGUMENT', 'UseBackup: the initial copy is a backup restored on the Replica server; DestinationPath writes one to media: give one of them', { param: 'UseBackup' });
    // -UseBackup: the Replica server holds the VM restored from a backup (Import-VMInitialReplication of a backup
    // repository); what changed since that backup is found by comparing blocks.
    await this.sendOnce(r, useBackup ? 'resync' : 'initial', progress, media, {
      during: 'InitialReplicationInProgress', done: media === undefined ? 'Replicating' : 'WaitingForInitialReplication', failed: 'ReadyForInitialReplication',
    });
    this.arm(r);
    return this.view(r);
  }

  /** A cycle now (the timer's tick); a tick meeting a running cycle is a missed one. */
  protected tick(r: Relationship): void {
    if (r.replicationState !== 'Replicating' && r.replicationState !== 'WaitingForInitialReplication') return;
    const continuous = r.settings.ReplicationFrequencySec === CONTINUOUS;
    if (continuous) r.lagging = lagging(r.lastReplicationTime, new Date());
    // Continuous: a shipment in flight just lets the next one carry more (coalesced in the tracker's bitmap); it starts when that one ends.
    if (continuous && this.running.has(r.VMId)) {
      this.again.add(r.VMId);
      return;
    }
    if (this.running.has(r.VMId)) {
      r.stats.MissedReplicationCount++;
      void this.save(r).catch(() => undefined); // the count is saved again after the running cycle
      return;
    }
    if (!this.cycleable(r)) return;
    void this.exclusive(r, async () => {
      // The copy on media not imported yet: no point is taken (no pause, no freeze); the changes wait in the tracker.
      if (r.replicationState === 'WaitingForInitialReplication' && !(await this.imported(r))) return;
      await this.send(r, 'cycle', () => undefined);
      if (r.replicationState === 'WaitingForInitialReplication') r.replicationState = 'Replicating';
    }).then(
      () => {
        r.failuresInRow = 0;
        if (r.replicationState !== 'WaitingForStartResynchronize') r.lastError = null; // it says why
      },
      (e: unknown) => {
        r.failuresInRow++;
        r.stats.ReplicationErrors++;
        r.lastError = (e as Error).message;
        this.host.events.emit({ Level: 'Warning', Code: 'VM_REPLICATION_FAILED', Message: `Replication of '${r.VMName}' to ${r.settings.ReplicaServerName} failed (${r.failuresInRow} in a row; retried next interval): ${r.lastError}`, VMId: r.VMId, VMName: r.VMName });
      },
    ).finally(() => (continuous && r.failuresInRow === 0 && Date.now() - (this.savedAt.get(r.VMId) ?? 0) < SAVE_EVERY_MS ? Promise.resolve() : this.save(r)).catch((e: unknown) => {
      this.host.events.emit({ Level: 'Error', Code: 'VM_REPLICATION_FAILED', Message: `Replication state of '${r.VMName}' could not be saved: ${(e as Error).message}`, VMId: r.VMId, VMName: r.VMName });
    }).then(() => {
      if (this.again.delete(r.VMId) && this.rels.get(r.VMId) === r) this.tick(r);
    }));
  }

  /** Whether the Replica server holds the initial copy the cycles build on (media: once imported). */
  private async imported(r: Relationship): Promise<boolean> {
    const c = await ReplicaConnection.open(await this.peer(r.settings), 'test', { id: r.VMId, name: r.VMName });
    c.close();
    return c.welcome?.base !== undefined && c.welcome.base === r.baseId;
  }

  /** Whether a tick has anything to send: the VM runs (its disks are served, so they change). */
  protected cycleable(r: Relationship): boolean {
    const state = this.vmState(r.VMId);
    return state === 'Running' || state === 'Paused';
  }

  private vmState(id: string): string | undefined {
    try {
      return this.host.get(id).State;
    } catch {
      return undefined; // removed: its relationship waits for Remove-VMReplication
    }
  }

  protected arm(r: Relationship): void {
    clearInterval(this.timers.get(r.VMId));
    if (r.replicationState !== 'Replicating' && r.replicationState !== 'Suspended' && r.replicationState !== 'WaitingForInitialReplication') return;
    const every = r.settings.ReplicationFrequencySec === CONTINUOUS ? CONTINUOUS_TICK_MS : r.settings.ReplicationFrequencySec * 1000 * this.timerScale;
    const t = setInterval(() => this.tick(r), every);
    t.unref();
    this.timers.set(r.VMId, t);
  }

  protected async exclusive(r: Relationship, fn: () => Promise<void>): Promise<void> {
    if (this.running.has(r.VMId)) throw new VmhostError('INVALID_STATE', `a replication of '${r.VMName}' is running`, { vm: r.VMName });
    const slot: { conn?: ReplicaConnection; done: Promise<void> } = { done: Promise.resolve() };
    this.running.set(r.VMId, slot);
    slot.done = fn();
    try {
      await slot.done;
    } finally {
      this.running.delete(r.VMId);
    }
  }

  /** One point to the Replica server: initial (full), a cycle (changed blocks) or a resynchronization (the blocks that differ). */
  protected async send(r: Relationship, kind: PointKind, progress: (pct: number, what: string) => void, media?: string): Promise<void> {
    const initial = kind === 'initial';
    const excluded = new Set(r.settings.ExcludedVhdPath);
    const t0 = Date.now();
    const hours = r.settings.VSSSnapshotFrequencyHour ?? 0;
    // The initial copy is the replica's base, not a recovery point: only cycles freeze.
    const freeze = !initial && appConsistentDue(hours, r.lastAppConsistentTime ?? null, new Date(), this.timerScale);
    const append = kind === 'cycle' && r.settings.ReplicationFrequencySec === CONTINUOUS && appendsToPoint(r.lastPointStartTime, new Date(), this.timerScale);
    const trace = new ShipmentTrace();
    let bytes = 0;
    // Continuous: deflate only while it gains something (random data costs its CPU for nothing); re-tried every PLAIN_SHIPMENTS.
    const continuous = kind === 'cycle' && r.settings.ReplicationFrequencySec === CONTINUOUS;
    const compress = r.settings.CompressionEnabled && !(continuous && (this.plain.get(r.VMId) ?? 0) > 0);
    await this.host.withConsistentPoint(r.VMId, {
      consumer: REPLICA_CONSUMER, fresh: kind !== 'cycle', exclude: (d) => excluded.has(d.path), freeze,
      onProgress: (f) => progress(5 + f * 30, 'Reading the drives at the point in time'),
    }, async (p, config) => {
      trace.mark('point');
      try {
        // A cycle whose tracker lost track would have to send whole drives: the relationship waits for a resynchronization instead.
        const lost = kind === 'cycle' ? p.drives.filter((d) => d.taken.full) : [];
        if (lost.length > 0) {
          await p.restore();
          await this.resyncRequired(r, lost.map((d) => `${basename(d.drive.path)} (${d.taken.reason ?? 'full'})`).join(', '));
          return;
        }
        const consistency = pointConsistency(freeze, p.level, p.reason, hours);
        const sent = await this.transfer(r, p, kind, initial ? config : undefined, consistency, { append, compress }, progress, trace, media);
        bytes = sent.bytes;
        if (continuous && r.settings.CompressionEnabled) this.plain.set(r.VMId, compress ? (sent.bytes >= PIECE && sent.wire > sent.bytes * 0.9 ? PLAIN_SHIPMENTS : 0) : (this.plain.get(r.VMId) ?? 1) - 1);
        await p.commit();
        trace.mark('commit');
        if (kind === 'resync') {
          const size = p.drives.reduce((a, d) => a + d.copy.virtualSize, 0);
          this.host.events.emit({ Level: 'Information', Code: 'VM_REPLICATION_RESYNCHRONIZED', Message: `Replication of '${r.VMName}' resynchronized by block comparison: ${sent.differing ?? 0} bytes of blocks differed of ${size} compared; ${sent.bytes} bytes of them sent as data, the rest as zero extents`, VMId: r.VMId, VMName: r.VMName });
        }
        // The Replica server's number for the point (-Prepare's zero loss is judged by it); media has none.
        if (media === undefined) r.lastSeq = sent.seq;
        this.succeeded(r, p.at, sent, t0);
        if (!initial && !append) r.lastPointStartTime = r.lastReplicationTime;
        r.lagging = false;
        if (consistency.consistency === 'ApplicationConsistent') r.lastAppConsistentTime = r.lastReplicationTime;
      } catch (e) {
        await p.restore();
        throw e;
      }
    });
    trace.mark('close');
    trace.write('primary', { vm: r.VMId, initial, append, bytes });
  }

  /** A point the Replica server acknowledged: the statistics. */
  protected succeeded(r: Relationship, at: Date, sent: { bytes: number; wire: number; points: number }, t0: number): void {
    r.lastReplicationTime = at.toISOString();
    r.recoveryPoints = sent.points;
    const s = r.stats;
    s.SuccessfulReplicationCount++;
    s.LastReplicationSize = sent.bytes;
    s.LastTransferredSize = sent.wire;
    s.TotalReplicationSize += sent.bytes;
    s.MaximumReplicationSize = Math.max(s.MaximumReplicationSize, sent.bytes);
    s.TotalLatencyMs += Date.now() - t0;
  }

  private async transfer(r: Relationship, p: ConsistentPoint, kind: PointKind, config: unknown, consistency: PointConsistency, o: { append: boolean; compress: boolean }, progress: (pct: number, what: string) => void, trace: ShipmentTrace, media?: string): Promise<{ bytes: number; wire: number; points: number; seq: number; differing?: number }> {
    // On media the primary is named as its certificate names it: the name the Replica server authorizes.
    const sink = media !== undefined
      ? await MediaSink.create(media, { vmId: r.VMId, vmName: r.VMName, primaryServer: (await loadCertificate(this.host.dataDir, r.settings.CertificateThumbprint)).names[0] ?? this.host.facts.computerName })
      : await this.connect(r);
    trace.mark('connect');
    let ok = false;
    try {
      let drives: OutgoingDrive[] = p.drives.map((d) => ({ ...d, id: d.drive.id, fileName: basename(d.drive.path) }));
      // A resynchronization's point re-bases the replica: a copy of its own from then on.
      if (config || kind === 'resync') r.baseId = randomUUID(); // saved with the relationship once the copy is acknowledged
      if (kind === 'resync') {
        if (sink instanceof MediaSink) throw new VmhostError('INTERNAL', 'a resynchronization goes over the network', { vm: r.VMName });
        const differing = await compareBlocks(sink, drives, (f) => progress(35 + f * 10, 'Comparing the blocks with the Replica server'));
        drives = drives.map((d) => ({ ...d, taken: differing.get(d.id)! }));
      }
      // A resynchronization's differing bytes, zero extents included (sendPoint's `bytes` counts only the data it reads).
      const compared = kind === 'resync' ? { differing: drives.reduce((a, d) => a + d.taken.bytes, 0) } : {};
      const sent = await sendPoint(sink, { at: p.at, drives, consistency, ...(config ? { config } : {}) },
        { recoveryHistory: r.settings.RecoveryHistory, compress: o.compress, append: o.append, ...(r.baseId ? { base: r.baseId } : {}) }, progress, trace);
      ok = true;
      return { ...sent, ...compared };
    } finally {
      if (sink instanceof MediaSink) { if (!ok) await sink.abort(); } else if (!ok || this.links.get(r.VMId) !== sink) sink.close();
      if (!ok) this.links.delete(r.VMId);
    }
  }

  /** The connection a point goes over, closed by Stop-/Remove-VMReplication. */
  protected async connect(r: Relationship): Promise<ReplicaConnection> {
    let conn = this.links.get(r.VMId);
    if (!conn?.usable) {
      this.unlink(r.VMId);
      conn = await ReplicaConnection.open(await this.peer(r.settings), 'replicate', { id: r.VMId, name: r.VMName });
      if (r.settings.ReplicationFrequencySec === CONTINUOUS) this.links.set(r.VMId, conn);
    }
    const slot = this.running.get(r.VMId);
    if (slot) slot.conn = conn;
    return conn;
  }

  /**
   * Start-VMFailover -Prepare (failover-rules.ts: an off, replicating VM): one last cycle from
   * the disks at rest, then PreparedForFailover — no more cycles; the Replica server's newest
   * point is the VM's last state, so a failover to it loses nothing.
   */
  async prepare(nameOrId: string): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    assertPrimaryStep(r.VMName, r.replicationState, this.vmState(r.VMId) ?? 'gone', 'Prepare');
    await this.exclusive(r, () => this.send(r, 'cycle', () => undefined));
    if (r.replicationState === 'WaitingForStartResynchronize') throw new VmhostError('REPLICATION_FAILOVER_STATE', `'${r.VMName}' needs a resynchronization before a planned failover: ${r.lastError ?? 'its change tracking lost track'} (Resume-VMReplication -Resynchronize, then -Prepare again)`, { vm: r.VMName });
    r.replicationState = 'PreparedForFailover';
    r.preparedSeq = r.lastSeq ?? null;
    r.failuresInRow = 0;
    r.lastError = null;
    await this.save(r);
    this.arm(r);
    return this.view(r);
  }

  /** Stop-VMFailover on the primary: the prepared failover is called off, cycles go on. */
  async cancelPrepare(nameOrId: string): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    assertPrimaryStep(r.VMName, r.replicationState, this.vmState(r.VMId) ?? 'gone', 'Stop');
    r.replicationState = 'Replicating';
    r.preparedSeq = null;
    await this.save(r);
    this.arm(r);
    return this.view(r);
  }

  /**
   * Set-VMReplication -Reverse on a failed-over Replica VM: this host becomes its primary. `delta`:
   * the old primary's disks are the point failed over to, so cycles go on from the tracker
   * (started clean at the failover); `resync`: the old primary's disks are its replica as they
   * are, Resume-VMReplication -Resynchronize sends the blocks that differ; `full`: the initial
   * replication is due again (an old primary that cannot compare).
   */
  async adopt(vm: { id: string; name: string }, s: ReplicationSettings, start: 'delta' | 'full' | 'resync'): Promise<ReplicationView> {
    if (this.rels.has(vm.id)) throw new VmhostError('ALREADY_EXISTS', `replication is already enabled for virtual machine '${vm.name}'`, { vm: vm.name });
    checkSettings(s);
    const r: Relationship = {
      VMId: vm.id, VMName: vm.name, settings: s, replicationState: start === 'delta' ? 'Replicating' : start === 'resync' ? 'WaitingForStartResynchronize' : 'ReadyForInitialReplication', failuresInRow: 0,
      lastError: null, lastReplicationTime: null, recoveryPoints: 0, stats: freshStats(),
    };
    await this.save(r);
    this.rels.set(r.VMId, r);
    this.arm(r);
    return this.view(r);
  }

  /** Set-VMReplication of a primary: the settings checked as Enable-VMReplication's, the timer re-armed. */
  async update(nameOrId: string, patch: Partial<ReplicationSettings>): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    const s = { ...r.settings, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as ReplicationSettings;
    checkSettings(s);
    r.settings = s;
    this.unlink(r.VMId);
    await this.save(r);
    this.arm(r);
    return this.view(r);
  }

  /** Suspend-VMReplication: no cycle starts; one in flight is let finish before this returns. */
  async suspend(nameOrId: string): Promise<ReplicationView> {
    const v = await this.setState(nameOrId, ['Replicating'], 'Suspended');
    await this.running.get(v.VMId)?.done.catch(() => undefined);
    return this.view(this.rel(v.VMId));
  }

  /** Resume-VMReplication; -Resynchronize: compare the blocks with the Replica server and send those that differ, then cycles go on. */
  async resume(nameOrId: string, resynchronize = false): Promise<ReplicationView> {
    if (!resynchronize) return this.setState(nameOrId, ['Suspended'], 'Replicating');
    const r = this.rel(nameOrId);
    const from = ['WaitingForStartResynchronize', 'Replicating', 'Suspended'];
    if (!from.includes(r.replicationState)) throw new VmhostError('INVALID_STATE', `replication of '${r.VMName}' is ${r.replicationState}: a resynchronization starts from ${from.join(', ')}`, { vm: r.VMName, state: r.replicationState });
    try {
      // A failure leaves WaitingForStartResynchronize whatever it was before: the primary's copy id moved on with the attempt, so only a resynchronization goes on from here.
      await this.sendOnce(r, 'resync', () => undefined, undefined, { during: 'Resynchronizing', done: 'Replicating', failed: 'WaitingForStartResynchronize' });
    } finally {
      this.arm(r);
    }
    return this.view(r);
  }

  /** One point outside the timer (the initial copy, a resynchronization): `during` meanwhile, then `done` with the errors cleared, or `failed` with the error kept; saved either way. */
  private async sendOnce(r: Relationship, kind: PointKind, progress: (pct: number, what: string) => void, media: string | undefined,
    states: { during: PrimaryState; done: PrimaryState; failed: PrimaryState }): Promise<void> {
    r.replicationState = states.during;
    await this.save(r);
    try {
      await this.exclusive(r, () => this.send(r, kind, progress, media));
      r.replicationState = states.done;
      r.failuresInRow = 0;
      r.lastError = null;
    } catch (e) {
      r.replicationState = states.failed;
      r.lastError = (e as Error).message;
      throw e;
    } finally {
      await this.save(r);
    }
  }

  /** A cycle's tracker lost track: no cycle runs until a resynchronization (Health Critical, as Hyper-V's "resynchronization required"). */
  private async resyncRequired(r: Relationship, why: string): Promise<void> {
    r.replicationState = 'WaitingForStartResynchronize';
    r.lastError = `resynchronization required: the change tracking lost track of ${why}`;
    await this.save(r);
    this.arm(r);
    this.host.events.emit({ Level: 'Warning', Code: 'VM_REPLICATION_RESYNC_REQUIRED', Message: `Replication of '${r.VMName}' needs a resynchronization (Resume-VMReplication -Resynchronize): the change tracking lost track of ${why}`, VMId: r.VMId, VMName: r.VMName });
  }

  private async setState(nameOrId: string, from: PrimaryState[], to: PrimaryState): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    if (!from.includes(r.replicationState)) throw new VmhostError('INVALID_STATE', `replication of '${r.VMName}' is ${r.replicationState}, not ${from.join(' or ')}`, { vm: r.VMName, state: r.replicationState });
    r.replicationState = to;
    await this.save(r);
    return this.view(r);
  }

  /** Stop-VMReplication: the point being sent is abandoned (its take restored); the relationship stays. */
  async stopRunning(nameOrId: string): Promise<ReplicationView> {
    const r = this.rel(nameOrId);
    const run = this.running.get(r.VMId);
    if (!run) throw new VmhostError('INVALID_STATE', `no replication of '${r.VMName}' is running`, { vm: r.VMName });
    run.conn?.close();
    await run.done.catch(() => undefined);
    return this.view(r);
  }

  /** Remove-VMReplication: the relationship goes (the Replica VM stays on its server, as in Hyper-V). */
  async remove(nameOrId: string): Promise<void> {
    const r = this.rel(nameOrId);
    clearInterval(this.timers.get(r.VMId));
    this.timers.delete(r.VMId);
    this.running.get(r.VMId)?.conn?.close();
    await this.running.get(r.VMId)?.done.catch(() => undefined);
    this.rels.delete(r.VMId);
    this.unlink(r.VMId);
    this.plain.delete(r.VMId);
    await rm(join(this.dir, `${r.VMId}.json`), { force: true });
    await this.forget(r);
  }

  /** After Remove-VMReplication: the VM's drives stop tracking for the replica consumer. */
  protected async forget(r: Relationship): Promise<void> {
    // The VM may be gone already (its relationship outlives it until removed).
    await this.host.forgetChanges(r.VMId, REPLICA_CONSUMER).catch(() => undefined);
  }

  async resetStatistics(nameOrId: string): Promise<void> {
    const r = this.rel(nameOrId);
    r.stats = freshStats();
    await this.save(r);
  }

  list(nameOrId?: string): ReplicationView[] {
    const rs = nameOrId === undefined ? [...this.rels.values()] : [this.rel(nameOrId)];
    return rs.map((r) => this.view(r));
  }

  /** Measure-VMReplication. */
  measure(nameOrId?: string): Array<Statistics & { VMName: string; State: string; Health: string; LastReplicationTime: string | null; AverageReplicationSize: number; AverageReplicationLatencyMs: number; LastError: string | null }> {
    const rs = nameOrId === undefined ? [...this.rels.values()] : [this.rel(nameOrId)];
    return rs.map((r) => {
      const n = r.stats.SuccessfulReplicationCount;
      return {
        VMName: r.VMName, State: r.replicationState, Health: health(r), LastReplicationTime: r.lastReplicationTime, ...r.stats,
        AverageReplicationSize: n > 0 ? Math.round(r.stats.TotalReplicationSize / n) : 0,
        AverageReplicationLatencyMs: n > 0 ? Math.round(r.stats.TotalLatencyMs / n) : 0, LastError: r.lastError,
      };
    });
  }

  view(r: Relationship): ReplicationView {
    return {
      VMName: r.VMName, VMId: r.VMId, ComputerName: this.host.facts.computerName, ReplicationMode: 'Primary', ReplicationState: r.replicationState,
      ReplicationHealth: health(r), PrimaryServerName: this.host.facts.computerName, CurrentReplicaServerName: r.settings.ReplicaServerName,
      LastReplicationTime: r.lastReplicationTime, RecoveryPoints: r.recoveryPoints, LastError: r.lastError, ...r.settings,
    };
  }
}

/** Normal; Warning after a failed cycle or while a continuous replica lags; Critical after three in a row (or an initial replication that failed). */
export function health(r: { failuresInRow: number; replicationState: PrimaryState; lastError: string | null; lagging?: boolean }): 'Normal' | 'Warning' | 'Critical' {
  if (r.failuresInRow >= CRITICAL_AFTER || (r.replicationState === 'ReadyForInitialReplication' && r.lastError !== null) || r.replicationState === 'WaitingForStartResynchronize') return 'Critical';
  return r.failuresInRow > 0 || r.lagging === true ? 'Warning' : 'Normal';
}
