// The Replica server: Set-/Get-VMReplicationServer and the authorization entries (kept in
// DIR/replication-server.json), and while replication is enabled a TLS listener on
// CertificateAuthenticationPort with mutual certificate authentication. The handshake asks for
// the primary's certificate but does not fail on it: a certificate that does not chain to a
// trusted CA, or whose names no entry allows, gets an `error` frame saying which, then the
// connection closes — a primary's admin sees why, not a TLS alert. An accepted `replicate`
// connection carries one point (initial or changed blocks) into the replica store; the `ack`
// goes back only once the point is durable. A resynchronization's connection asks first for the
// digests of the replica's newest blocks (`compare`, block-compare.ts); its point then re-bases
// the replica. Import-VMInitialReplication of a vmhost backup repository seeds a replica from the
// VM's newest backup point there (Start-VMInitialReplication -UseBackup on the primary then
// sends only the blocks that differ).
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { access, readFile } from 'node:fs/promises';
import { VmhostError, isVmhostError } from '../common/index.ts';
import { SerialLock, writeFileAtomic, type Host, type VmConfig } from '../host/index.ts';
import {
  applyServerSettings, authorize, checkEntry, DEFAULT_SERVER_SETTINGS, type AuthorizationEntry, type ReplicationServerSettings,
} from './authorization.ts';
import { loadCertificate, peerNames, trustedCas } from './cert-store.ts';
import { checkBegin, openMedia } from './media.ts';
import { IncomingPoint, ReplicaStore, replicaSide, type ReplicaRecord } from './replica-store.ts';
import { assertReplicaStep } from './failover-rules.ts';
import { blockDigests, digestFrames } from './block-compare.ts';
import { openDiskFile } from '../storage/index.ts';
import { readFrames, sendFrame, wireError, type Frame } from './wire.ts';
import { ShipmentTrace } from './shipment-trace.ts';

interface ServerFile { settings: ReplicationServerSettings; entries: AuthorizationEntry[] }

export class ReplicaServer {
  private file: ServerFile = { settings: DEFAULT_SERVER_SETTINGS, entries: [] };
  private server: Server | undefined;
  private readonly sockets = new Set<TLSSocket>();
  readonly store: ReplicaStore;
  /** The replicas this host holds, by VM id (Get-VMReplication on the Replica server). */
  readonly replicas = new Map<string, ReplicaRecord>();
  /** A failed-over replica of one of this host's VMs asks it to become its replica (failover.ts sets it): how replication starts. */
  onReverse: (vm: { id: string; name: string }, from: { name: string; storage: string }, basedOn: number) => Promise<'delta' | 'resync'> = () => {
    throw new VmhostError('REPLICATION_UNSUPPORTED', 'this server does not take reverse replication', {});
  };
  /** Per replica: a point being applied and an extended replication's read of it never overlap. */
  private readonly locks = new Map<string, SerialLock>();
  /** Called with a point's changed blocks before the point is committed (extended.ts records them durably). */
  onApplying: ((vmId: string, initial: boolean, changed: ReadonlyMap<string, ReadonlySet<number>>) => Promise<void>) | undefined;

  constructor(private readonly host: Host) {
    this.store = new ReplicaStore(host.dataDir);
  }

  private get path(): string {
    return join(this.host.dataDir, 'replication-server.json');
  }

  async open(): Promise<void> {
    this.file = await readFile(this.path, 'utf8').then((t) => JSON.parse(t) as ServerFile, () => ({ settings: DEFAULT_SERVER_SETTINGS, entries: [] }));
    for (const r of await this.store.load()) this.replicas.set(r.vmId, r);
    if (this.file.settings.ReplicationEnabled) await this.listen();
  }

  async close(): Promise<void> {
    await this.stopListening();
  }

  settings(): ReplicationServerSettings & { ListeningPort: number | null } {
    const a = this.server?.address();
    return { ...this.file.settings, ListeningPort: a && typeof a === 'object' ? a.port : null };
  }

  /** Set-VMReplicationServer: checked, saved, and the listener started, moved or stopped to match. */
  async setSettings(patch: Partial<ReplicationServerSettings>): Promise<ReplicationServerSettings> {
    const next = applyServerSettings(this.file.settings, patch);
    if (next.ReplicationEnabled) await loadCertificate(this.host.dataDir, next.CertificateThumbprint); // refused before anything changes
    const was = this.file.settings;
    await this.save({ ...this.file, settings: next });
    if (!next.ReplicationEnabled || was.CertificateAuthenticationPort !== next.CertificateAuthenticationPort || was.CertificateThumbprint !== next.CertificateThumbprint) await this.stopListening();
    if (next.ReplicationEnabled && !this.server) await this.listen();
    return next;
  }

  entries(filter: { AllowedPrimaryServer?: string; TrustGroup?: string } = {}): AuthorizationEntry[] {
    return this.file.entries.filter((e) => (filter.AllowedPrimaryServer === undefined || e.AllowedPrimaryServer === filter.AllowedPrimaryServer.toLowerCase())
      && (filter.TrustGroup === undefined || e.TrustGroup === filter.TrustGroup));
  }

  async addEntry(e: AuthorizationEntry): Promise<AuthorizationEntry> {
    const entry = checkEntry(e, this.file.entries);
    await this.save({ ...this.file, entries: [...this.file.entries, entry] });
    return entry;
  }

  async setEntry(server: string, change: { ReplicaStorageLocation?: string; TrustGroup?: string }): Promise<AuthorizationEntry> {
    const cur = this.find(server);
    const rest = this.file.entries.filter((x) => x !== cur);
    const entry = checkEntry({ ...cur, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) }, rest);
    await this.save({ ...this.file, entries: [...rest, entry] });
    return entry;
  }

  async removeEntry(server: string): Promise<void> {
    const cur = this.find(server);
    await this.save({ ...this.file, entries: this.file.entries.filter((x) => x !== cur) });
  }

  private find(server: string): AuthorizationEntry {
    const e = this.file.entries.find((x) => x.AllowedPrimaryServer === server.toLowerCase());
    if (!e) throw new VmhostError('NOT_FOUND', `no authorization entry for '${server}'`, { entry: server });
    return e;
  }

  private async save(f: ServerFile): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify(f, null, 2));
    this.file = f;
  }

  /** Run `fn` while no point of the replica of `vmId` is being applied or merged. */
  withReplica<T>(vmId: string, fn: () => Promise<T>): Promise<T> {
    let l = this.locks.get(vmId);
    if (!l) this.locks.set(vmId, (l = new SerialLock()));
    return l.run(fn);
  }

  private async listen(): Promise<void> {
    const s = this.file.settings;
    const own = await loadCertificate(this.host.dataDir, s.CertificateThumbprint);
    const server = createServer({ cert: own.cert, key: own.key, ca: await trustedCas(this.host.dataDir), requestCert: true, rejectUnauthorized: false });
    server.on('secureConnection', (sock) => {
      this.sockets.add(sock);
      sock.once('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      void this.serve(sock, own.names[0] ?? '');
    });
    server.on('tlsClientError', () => undefined); // a client that gives up mid-handshake is its own business
    await new Promise<void>((res, rej) => {
      server.once('error', (e) => rej(new VmhostError('REPLICATION_FAILED', `cannot listen for replication on port ${s.CertificateAuthenticationPort}: ${e.message}`, { port: s.CertificateAuthenticationPort }, { cause: e })));
      server.listen(s.CertificateAuthenticationPort, () => res());
    });
    server.on('error', () => undefined); // after listening, errors belong to single connections
    this.server = server;
  }

  private async stopListening(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const x of this.sockets) x.destroy();
    if (s) await new Promise<void>((res) => s.close(() => res()));
  }

  /** One point into the replica of `vm` (under its lock): its files written, recorded, the Replica VM re-pointed; a point that does not arrive whole is dropped. */
  private receive(vm: { id: string; name: string }, from: { name: string; storage: string }, begin: Extract<Frame, { t: 'begin' }>, frames: Frames,
    compared?: { seq: number }): Promise<{ seq: number; points: number }> {
    const trace = new ShipmentTrace();
    return this.withReplica(vm.id, async () => {
      const rec = await this.store.begin(vm, from.name, from.storage, begin.kind === 'initial', begin.recoveryHistory);
      if (compared && (begin.kind !== 'delta' || rec.lastSeq !== compared.seq)) {
        throw wireError(`a resynchronization's point must be a delta on the point compared (${compared.seq}; the replica is at ${rec.lastSeq})`);
      }
      // A resynchronization makes the replica the primary's copy again, whatever copy it was (a backup, the old primary's disks).
      if (begin.kind === 'initial' || compared) rec.baseId = begin.base;
      else if (begin.base !== undefined && rec.baseId !== undefined && begin.base !== rec.baseId) {
        throw new VmhostError('REPLICATION_NOT_ENABLED', `the replica of '${vm.name}' here is not the initial copy the primary builds on (${begin.base}): import that copy (Import-VMInitialReplication) or start the initial replication again`, { vm: vm.id });
      }
      const point = new IncomingPoint(this.store, rec, begin.kind === 'initial', begin.kind === 'initial' ? 0 : rec.lastSeq + 1, begin.time, begin.compression,
        begin.drives, begin.config as VmConfig | undefined, { consistency: begin.consistency ?? 'CrashConsistent', ...(begin.reason !== undefined ? { reason: begin.reason } : {}) }, begin.append === true);
      trace.mark('lock');
      try {
        await point.open(this.host, trace);
        trace.mark('open');
        for (;;) {
          const r = await frames.next();
          if (r.done) throw wireError('the primary closed the connection inside a point');
          const f = r.value.frame;
          if (f.t === 'end') break;
          if (f.t !== 'data') throw wireError(`'${f.t}' inside a point`);
          await point.write(f.drive, f.offset, f.length, f.zero, r.value.payload);
        }
        trace.mark('receive');
        await this.onApplying?.(vm.id, point.initial, point.changed);
        const points = await point.finish(this.host, trace);
        trace.write('replica', { vm: vm.id, initial: point.initial, append: begin.append === true, bytes: point.bytes });
        this.replicas.set(rec.vmId, rec);
        this.host.events.emit({ Level: 'Information', Code: 'VM_REPLICA_POINT', Message: `Replica of '${vm.name}' from '${from.name}': ${begin.kind === 'initial' ? 'initial replication' : `recovery point ${rec.lastSeq}`} applied (${rec.points.length} recovery points kept)`, VMId: vm.id, VMName: vm.name });
        return { seq: rec.lastSeq, points };
      } catch (e) {
        await point.abort();
        throw e;
      }
    });
  }

  /**
   * Import-VMInitialReplication: the initial copy a primary wrote to media (media.ts), verified
   * against its manifest before anything is written, authorized by the primary's name as a
   * connection would be.
   */
  async importInitial(vmName: string, path: string): Promise<ReplicaRecord> {
    // A restic repository has a `config` file at its top (a vmhost backup repository is one).
    if (await access(join(path, 'config')).then(() => true, () => false) && await access(join(path, 'data')).then(() => true, () => false)) return this.seedFromBackup(vmName, path);
    const { dir, manifest, frames } = await openMedia(path, vmName);
    const it = frames[Symbol.asyncIterator]();
    try {
      const decision = authorize(this.file.settings, this.file.entries, [manifest.primaryServer]);
      if (!decision.ok) throw new VmhostError(decision.code, `the initial replication of '${vmName}' on ${dir}: ${decision.reason}`, { vm: vmName, path: dir });
      if (this.replicas.get(manifest.vmId)?.baseId === manifest.base) throw new VmhostError('INVALID_STATE', `the initial replication of '${vmName}' on ${dir} is imported already`, { vm: vmName, path: dir });
      const begin = checkBegin(await next(it), manifest, dir);
      await this.receive({ id: manifest.vmId, name: manifest.vmName }, decision, begin, it);
      return this.replicas.get(manifest.vmId)!;
    } finally {
      await it.return?.(undefined);
    }
  }

  /** One connection: who it is, what it wants, then (replicate) one point in. */
  private async serve(sock: TLSSocket, me: string): Promise<void> {
    const frames = readFrames(sock as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const refuse = async (code: string, message: string) => {
      await sendFrame(sock, { t: 'error', code, message }).catch(() => undefined);
      sock.end();
    };
    try {
      const peer = sock.getPeerCertificate();
      const names = peer && Object.keys(peer).length > 0 ? peerNames(peer) : [];
      if (!sock.authorized) {
        const who = names.length > 0 ? `'${names.join("', '")}'` : 'without a name';
        const why = peer && Object.keys(peer).length > 0 ? String(sock.authorizationError) : 'no client certificate was presented';
        await refuse('REPLICATION_UNAUTHORIZED', `the primary's certificate (${who}${peer?.fingerprint ? `, thumbprint ${peer.fingerprint.replace(/:/g, '')}` : ''}) is not trusted by this Replica server: ${why}`);
        return;
      }
      const decision = authorize(this.file.settings, this.file.entries, names);
      if (!decision.ok) {
        await refuse(decision.code, decision.reason);
        return;
      }
      const hello = await next(frames);
      if (hello.t !== 'hello') throw wireError(`'${hello.t}' before hello`);
      if (hello.op === 'reverse') {
        const start = await this.onReverse({ id: hello.vmId!, name: hello.vmName! }, decision, hello.basedOn!);
        await sendFrame(sock, { t: 'ok', server: me, start });
        sock.end();
        return;
      }
      const base = hello.vmId === undefined ? undefined : this.replicas.get(hello.vmId)?.baseId;
      await sendFrame(sock, { t: 'ok', server: me, ...(base !== undefined ? { base } : {}) });
      if (hello.op === 'test') {
        sock.end();
        return;
      }
      // Points one after the other, each acknowledged once durable, until the primary hangs up: a continuous
      // relationship keeps its connection (no handshake per shipment); a cycle sends one point and closes.
      const vm = { id: hello.vmId!, name: hello.vmName! };
      for (;;) {
        const r = await frames.next();
        if (r.done) break;
        let begin = r.value.frame;
        // A resynchronization's point starts with the block comparison (block-compare.ts).
        let compared: { seq: number } | undefined;
        if (begin.t === 'compare') {
          compared = await this.digests(vm, decision.name, begin.drives, sock);
          begin = await next(frames);
        }
        if (begin.t !== 'begin') throw wireError(`'${begin.t}' where begin was due`);
        // Each point is authorized as the connection was: an entry removed meanwhile stops a kept connection.
        const still = authorize(this.file.settings, this.file.entries, names);
        if (!still.ok) throw new VmhostError(still.code, still.reason, { vm: vm.id });
        await sendFrame(sock, { t: 'ack', ...(await this.receive(vm, decision, begin, frames, compared)) });
      }
      sock.end();
    } catch (e) {
      await refuse(isVmhostError(e) ? e.code : 'REPLICATION_FAILED', (e as Error).message);
    }
  }

  /**
   * A resynchronization asks: the digests of every block of the replica's newest files, sent as
   * `hashes` frames; the point number they are of (the point that follows must build on it).
   * A replica seeded from a backup and not yet claimed (no primary recorded) is this primary's.
   */
  private digests(vm: { id: string; name: string }, primary: string, drives: ReadonlyArray<{ id: string; virtualSize: number }>, sock: TLSSocket): Promise<{ seq: number }> {
    return this.withReplica(vm.id, async () => {
      const rec = await this.store.get(vm.id);
      if (!rec) throw new VmhostError('REPLICATION_NOT_ENABLED', `this server holds no replica of VM '${vm.name}' (${vm.id}) to compare with: restore its backup here (Import-VMInitialReplication -Path <backup repository>) or start the initial replication`, { vm: vm.id });
      if (rec.primaryServer !== '' && rec.primaryServer !== primary) throw new VmhostError('REPLICATION_UNAUTHORIZED', `the replica of VM ${vm.id} belongs to primary '${rec.primaryServer}', not '${primary}'`, { vm: vm.id });
      assertReplicaStep(rec.vmName, replicaSide(rec, ''), 'Receive');
      for (const d of drives) {
        const have = rec.drives[d.id];
        if (!have || have.virtualSize !== d.virtualSize) throw wireError(`drive ${d.id} (${d.virtualSize} bytes) is not the replica's (initial replication again after a drive was added or resized)`);
        const disk = await openDiskFile(ReplicaStore.leaf(rec, d.id), { readOnly: true });
        try {
          for (const f of digestFrames(d.id, await blockDigests(disk))) await sendFrame(sock, f);
        } finally {
          await disk.close();
        }
      }
      return { seq: rec.lastSeq };
    });
  }

  /**
   * Import-VMInitialReplication of a vmhost backup repository (Start-VMInitialReplication
   * -UseBackup on the primary): the newest backup point of `vmName` there, restored into
   * DefaultStorageLocation/<VM id> as the replica's base and registered as its Replica VM (the
   * VM's own id, from the point's configuration). The first primary authorized to connect for
   * that VM claims it; its resynchronization sends what changed since the backup.
   */
  private async seedFromBackup(vmName: string, repository: string): Promise<ReplicaRecord> {
    const point = (await this.host.listBackups(repository, vmName)).at(-1);
    if (!point) throw new VmhostError('NOT_FOUND', `no backup of '${vmName}' in ${repository}`, { vm: vmName, path: repository });
    const storage = this.file.settings.DefaultStorageLocation;
    if (storage === null) throw new VmhostError('INVALID_STATE', 'a replica seeded from a backup goes into the DefaultStorageLocation: set it first (Set-VMReplicationServer -DefaultStorageLocation)', { path: repository });
    if (this.replicas.has(point.VMId) || this.host.list().some((v) => v.Id === point.VMId)) {
      throw new VmhostError('ALREADY_EXISTS', `VM ${point.VMId} ('${point.VMName}') is on this host already`, { vm: point.VMId });
    }
    return this.withReplica(point.VMId, async () => {
      const dir = join(storage, point.VMId);
      const r = await this.host.restoreBackupPoint(repository, point.BackupId, dir);
      if (!r.config) throw new VmhostError('BACKUP_NO_CONFIG', `backup ${point.BackupId} holds no VM configuration (taken by an older vmhost): it cannot seed a replica`, { backup: point.BackupId });
      const rec: ReplicaRecord = {
        vmId: point.VMId, vmName: point.VMName, primaryServer: '', dir, points: [], baseTime: point.CreationTime, lastSeq: 0, lastReplicationTime: point.CreationTime, recoveryHistory: 0,
        drives: Object.fromEntries(r.disks.map((d) => [d.DriveId, { base: d.Path, virtualSize: d.VirtualSize }])),
      };
      await this.store.serial(async () => {
        await this.store.save(rec);
        await this.store.pointVm(this.host, rec, r.config);
      });
      this.replicas.set(rec.vmId, rec);
      this.host.events.emit({ Level: 'Information', Code: 'VM_REPLICA_SEEDED', Message: `Replica of '${point.VMName}' seeded from backup ${point.BackupId} (${point.CreationTime}) in ${repository}: its primary's Start-VMInitialReplication -UseBackup sends what changed since`, VMId: rec.vmId, VMName: rec.vmName });
      return rec;
    });
  }
}

type Frames = AsyncIterator<{ frame: Frame; payload: Buffer | undefined }>;

async function next(frames: AsyncIterator<{ frame: Frame }>): Promise<Frame> {
  const r = await frames.next();
  if (r.done) throw wireError('the primary closed the connection');
  return r.value.frame;
}
