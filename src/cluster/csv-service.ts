// Cluster Shared Volumes on one node. A volume is a directory every node reaches at the same
// path (on real machines a cluster filesystem on shared storage, or an NFS export; here one
// machine's filesystem). Each volume has one coordinator node; **metadata operations** on it —
// creating and deleting disk files, a checkpoint's differencing child — are performed by the
// coordinator only, which runs them one at a time per volume; data I/O stays direct on every
// node (its block server opens the files). This class is the host's VolumeOps
// (storage/volume-ops.ts): an operation on a path inside a volume is run here when this node
// coordinates the volume, else sent to the coordinator's daemon (csv-wire.ts) — a single seam,
// whoever calls it (New-VHD through the API, New-VM's new disk, Checkpoint-VM).
//
// The coordinator is chosen by the cluster's leader (the node holding keys.ts's leader key):
// balanced over the Up nodes (csv-balance.ts), recorded in `coord/<volume>` bound to the
// coordinator's own lease, so when it dies the key goes with its lease and the leader's next pass
// names another; a clean leave revokes the lease at once. Both sides read the coordinator from
// etcd for every operation, and a node asked to run one it no longer coordinates refuses, so the
// caller asks again whoever holds the key then.
import { randomUUID } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { VmhostError, isVmhostError, type ErrorCode } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { describeVolumeOp, localVolumeOps, runVolumeOpLocally, type VolumeOp, type VolumeOps } from '../storage/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { planCoordinators } from './csv-balance.ts';
import { ALIVE_PREFIX, CSV_PREFIX, csvCoordKey, csvVolumeKey, parseCsvSnapshot, type CsvCoordRecord, type CsvSnapshot, type CsvVolumeRecord } from './csv-keys.ts';
import { checkVolume, diskFiles, removeMarker, writeMarker, type VolumeCheck } from './csv-volume.ts';
import { CsvAuthChecker, csvCall, type CsvAnswer, type CsvRequest } from './csv-wire.ts';
import { LEADER_KEY, nodeState, type Snapshot } from './keys.ts';

const TICK_MS = 1000;
/** How long an operation waits for a volume without a coordinator to get one (a failover: the dead node's lease TTL, 4 s, and a leader's pass). */
const NO_COORDINATOR_WAIT_MS = 30_000;
const RETRY_MS = 250;
const RETRIED = new Set<ErrorCode>(['CLUSTER_CSV_NO_COORDINATOR', 'CLUSTER_ETCD_UNREACHABLE', 'CLUSTER_ETCD_FAILED']);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

/** Get-ClusterSharedVolume's object. */
export interface ClusterSharedVolumeView {
  Name: string;
  Id: string;
  /** Online while a node that is Up coordinates it. */
  State: 'Online' | 'Offline';
  /** The coordinator. */
  OwnerNode: string;
  Path: string;
  SharedVolumeInfo: { FriendlyVolumeName: string }[];
  /** The disk files on it (down to its VMs' folders). */
  Files: string[];
  Cluster: string;
}

const inside = (dir: string, path: string): boolean => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ClusterSharedVolumes implements VolumeOps {
  private readonly auth = new CsvAuthChecker();
  /** Per volume: the tail of the operations this node runs as its coordinator (one at a time). */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** The volumes this node coordinated at the last pass (a new one is logged). */
  private coordinated = new Set<string>();
  /**
   * The volumes as of the last pass (kept current by the watch): whether a path is on one is
   * decided from these, so the host's operations elsewhere never wait for etcd or fail with it.
   */
  private volumes = new Map<string, CsvVolumeRecord>();
  private readonly abort = new AbortController();
  private interval: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failing = false;
  private watching: Promise<void> | undefined;

  private constructor(private readonly node: ClusterNode, private readonly host: Host) {}

  /** Beside the node's loop: the host's disk-file operations go through this from now on. */
  static start(node: ClusterNode, host: Host): ClusterSharedVolumes {
    const v = new ClusterSharedVolumes(node, host);
    host.storage.volumeOps = v;
    v.interval = setInterval(() => v.kick(), TICK_MS);
    v.watching = v.watch();
    v.kick();
    return v;
  }

  async close(): Promise<void> {
    this.host.storage.volumeOps = localVolumeOps;
    this.abort.abort();
    clearInterval(this.interval);
    await this.watching;
    await this.running;
  }

  private async read(): Promise<CsvSnapshot> {
    return parseCsvSnapshot((await this.node.etcd.range(CSV_PREFIX)).kvs);
  }

  // ---- the pass: the leader places coordinators; every node notices what it coordinates -------

  private kick(): void {
    if (this.abort.signal.aborted) return;
    if (this.running) { this.again = true; return; }
    this.running = this.tick()
      .then(() => { this.failing = false; }, (e: unknown) => {
        // Once per outage: etcd out of reach fails every pass, and the node's own loop says so already.
        if (!this.abort.signal.aborted && !this.failing) this.node.event('Warning', 'CLUSTER_LOOP_FAILED', `Cluster Shared Volumes: ${(e as Error).message}`);
        this.failing = true;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) { this.again = false; this.kick(); }
      });
  }

  /** A coordinator key deleted (its node's lease expired) is acted on at once, not at the next tick. */
  private async watch(): Promise<void> {
    while (!this.abort.signal.aborted) {
      await this.node.etcd.watch(CSV_PREFIX, 0, () => this.kick(), this.abort.signal).catch(() => undefined);
      if (!this.abort.signal.aborted) await sleep(TICK_MS);
    }
  }

  private async tick(): Promise<void> {
    // The node loop's watch-kept snapshot: a read of every role's keys each second on every node is what etcd cannot carry at scale.
    const [s, v] = await Promise.all([this.node.snapshot(), this.read()]);
    this.volumes = v.volumes;
    const mine = new Set([...v.coords].filter(([vol, c]) => c.Node === this.node.name && v.volumes.has(vol)).map(([vol]) => vol));
    for (const vol of mine) if (!this.coordinated.has(vol)) this.node.event('Information', 'CLUSTER_CSV_COORDINATOR', `Node ${this.node.name} coordinates Cluster Shared Volume '${vol}' now`);
    this.coordinated = mine;
    if (s.leader?.node === this.node.name && s.config) await this.placeCoordinators(s, v);
  }

  private async placeCoordinators(s: Snapshot, v: CsvSnapshot): Promise<void> {
    const up = [...s.nodes.keys()].filter((n) => nodeState(s, n) === 'Up');
    const current = new Map([...v.coords].map(([vol, c]) => [vol, c.Node]));
    const plan = planCoordinators([...v.volumes.keys()], up, current);
    if (plan.length === 0) return;
    // The coordinator's key is bound to that node's own lease: the one its alive key holds.
    const leases = new Map((await this.node.etcd.range(ALIVE_PREFIX)).kvs.map((kv) => [kv.key.slice(ALIVE_PREFIX.length), kv.lease]));
    for (const p of plan) {
      const lease = leases.get(p.node);
      const had = v.coords.get(p.volume);
      if (lease === undefined || lease === '0') continue;
      const r = await this.node.etcd.txn(
        [{ key: LEADER_KEY, modRevision: s.leader!.modRevision }, had ? { key: csvCoordKey(p.volume), modRevision: had.modRevision } : { key: csvCoordKey(p.volume), absent: true }],
        [{ put: csvCoordKey(p.volume), value: JSON.stringify({ Node: p.node, By: this.node.name } satisfies CsvCoordRecord), lease }],
      ).catch((e: unknown) => { if (isVmhostError(e)) return undefined; throw e; }); // the node's lease ended meanwhile: next pass
      if (r?.succeeded) {
        this.node.event('Information', 'CLUSTER_CSV_PLACED', `Cluster Shared Volume '${p.volume}': coordinator ${p.node}${p.from !== undefined ? ` (was ${p.from}${up.includes(p.from) ? ', rebalanced' : ', which is not Up'})` : ''}`);
      }
    }
  }

  // ---- VolumeOps: run here, or at the coordinator -----------------------------------------------

  async run(op: VolumeOp): Promise<void> {
    const path = resolve(op.Path);
    const vol = [...this.volumes.values()].find((o) => inside(o.Path, path));
    if (!vol) return runVolumeOpLocally(op);
    let v = await this.read();
    const deadline = Date.now() + NO_COORDINATOR_WAIT_MS;
    for (;;) {
      const coord = v.coords.get(vol.Name);
      if (coord?.Node === this.node.name) { await this.perform(vol, op, this.node.name); return; }
      if (coord) {
        try {
          await this.forward(coord.Node, { Kind: 'op', Volume: vol.Name, From: this.node.name, Op: op });
          return;
        } catch (e) {
          // Unreachable, no longer its coordinator, or cut off from etcd (its lease, and so its key, about to end): ask whoever holds the key next.
          if (!isVmhostError(e) || !RETRIED.has(e.code) || Date.now() > deadline) throw e;
        }
      } else if (Date.now() > deadline) {
        throw new VmhostError('CLUSTER_CSV_NO_COORDINATOR', `Cluster Shared Volume '${vol.Name}' has had no coordinator for ${NO_COORDINATOR_WAIT_MS / 1000} s: ${describeVolumeOp(op)} not done`, { volume: vol.Name, path });
      }
      await sleep(RETRY_MS);
      v = await this.read();
      if (!v.volumes.has(vol.Name)) return runVolumeOpLocally(op); // removed meanwhile: an ordinary directory now
    }
  }

  /** New-VHD of a file on a volume (the CLI saw the volume's marker): refused for a path on none. */
  async runOnVolume(op: VolumeOp): Promise<void> {
    if (![...this.volumes.values()].some((o) => inside(o.Path, resolve(op.Path)))) {
      throw new VmhostError('CLUSTER_CSV_INVALID', `${op.Path} is on no Cluster Shared Volume of this cluster`, { path: op.Path });
    }
    await this.run(op);
  }

  private async forward(to: string, req: CsvRequest): Promise<CsvAnswer> {
    const s = await this.node.readMembership();
    const alive = s.alive.get(to);
    if (!alive || !s.config?.MoveKey) throw new VmhostError('CLUSTER_CSV_NO_COORDINATOR', `node ${to} is ${nodeState(s, to)}`, { node: to });
    return csvCall(alive.Url, s.config.MoveKey, to, req);
  }

  /** As the volume's coordinator: one operation at a time per volume, each logged. */
  private async perform(vol: CsvVolumeRecord, op: VolumeOp, from: string): Promise<void> {
    const prev = this.queues.get(vol.Name) ?? Promise.resolve();
    const mine = prev.catch(() => undefined).then(() => runVolumeOpLocally(op));
    this.queues.set(vol.Name, mine);
    try {
      await mine;
    } finally {
      if (this.queues.get(vol.Name) === mine) this.queues.delete(vol.Name);
    }
    this.node.event('Information', 'CLUSTER_CSV_OPERATION', `Cluster Shared Volume '${vol.Name}': ${describeVolumeOp(op)}, for node ${from}, by its coordinator ${this.node.name}`);
  }

  /** Another node's request (csv-wire.ts): checked against the cluster's key before anything is read from it. */
  async answer(authHeader: string | undefined, body: unknown): Promise<CsvAnswer> {
    const s = await this.node.readMembership();
    if (!s.config?.MoveKey) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'No cluster with a MoveKey exists in this node\'s etcd', {});
    this.auth.check(s.config.MoveKey, this.node.name, authHeader, JSON.stringify(body));
    const req = body as CsvRequest;
    if (req.Kind === 'check') return checkVolume(this.node.name, req.Path, req.Id);
    const v = await this.read();
    const vol = v.volumes.get(req.Volume);
    if (!vol) throw new VmhostError('CLUSTER_CSV_INVALID', `No Cluster Shared Volume '${req.Volume}'`, { volume: req.Volume });
    if (v.coords.get(vol.Name)?.Node !== this.node.name) {
      throw new VmhostError('CLUSTER_CSV_NO_COORDINATOR', `node ${this.node.name} does not coordinate Cluster Shared Volume '${vol.Name}' now`, { volume: vol.Name });
    }
    if (!inside(vol.Path, resolve(req.Op.Path))) throw new VmhostError('CLUSTER_CSV_INVALID', `${req.Op.Path} is not on Cluster Shared Volume '${vol.Name}'`, { volume: vol.Name });
    await this.perform(vol, req.Op, req.From);
    return { Done: true, By: this.node.name };
  }

  // ---- the cmdlets ---------------------------------------------------------------------------------

  async list(name?: string): Promise<ClusterSharedVolumeView[]> {
    const [s, v] = await Promise.all([this.node.readMembership(), this.read()]);
    this.node.assertMember(s);
    if (name !== undefined && !v.volumes.has(name)) throw new VmhostError('CLUSTER_CSV_INVALID', `No Cluster Shared Volume '${name}'`, { volume: name });
    const vols = [...v.volumes.values()].filter((vol) => name === undefined || vol.Name === name).sort((a, b) => a.Name.localeCompare(b.Name));
    return Promise.all(vols.map(async (vol) => {
      const owner = v.coords.get(vol.Name)?.Node;
      return {
        Name: vol.Name, Id: vol.Id, State: owner !== undefined && nodeState(s, owner) !== 'Down' ? 'Online' : 'Offline', OwnerNode: owner ?? '',
        Path: vol.Path, SharedVolumeInfo: [{ FriendlyVolumeName: vol.Path }], Files: await diskFiles(vol.Path), Cluster: s.config!.Name,
      } satisfies ClusterSharedVolumeView;
    }));
  }

  /**
   * Add-ClusterSharedVolume: the directory gets the volume's marker, every Up node checks it
   * (checkVolume), and only then is the volume recorded; the leader names its coordinator, which
   * this call waits for.
   */
  async add(name: string, dir: string): Promise<ClusterSharedVolumeView> {
    if (!NAME_RE.test(name)) throw new VmhostError('INVALID_ARGUMENT', `-Name '${name}': letters, digits, space, '.', '_' and '-', at most 64`, { param: 'Name' });
    const s = await this.node.readMembership();
    this.node.assertMember(s);
    const path = await realpath(resolve(dir)).catch(() => { throw new VmhostError('CLUSTER_CSV_INVALID', `-Path ${dir} does not exist on node ${this.node.name}`, { param: 'Path' }); });
    const v = await this.read();
    if (v.volumes.has(name)) throw new VmhostError('CLUSTER_EXISTS', `Cluster Shared Volume '${name}' already exists`, { volume: name });
    const overlap = [...v.volumes.values()].find((o) => inside(o.Path, path) || inside(path, o.Path));
    if (overlap) throw new VmhostError('CLUSTER_CSV_INVALID', `${path} overlaps Cluster Shared Volume '${overlap.Name}' (${overlap.Path})`, { param: 'Path' });
    const id = randomUUID();
    await writeMarker(path, { Name: name, Id: id, Cluster: s.config!.Id });
    const up = [...s.nodes.keys()].filter((n) => nodeState(s, n) === 'Up').sort();
    const checks = await Promise.all(up.map((n): Promise<VolumeCheck> => n === this.node.name ? checkVolume(n, path, id)
      : this.forward(n, { Kind: 'check', Volume: name, Path: path, Id: id }).then((a) => a as VolumeCheck, (e: unknown) => ({ Node: n, Ok: false, Message: (e as Error).message }))));
    const failed = checks.filter((c) => !c.Ok);
    if (failed.length > 0) {
      await removeMarker(path);
      throw new VmhostError('CLUSTER_CSV_INVALID', `${path} cannot be Cluster Shared Volume '${name}': ${failed.map((c) => `${c.Node}: ${c.Message}`).join('; ')}`, { volume: name });
    }
    const rec: CsvVolumeRecord = { Name: name, Id: id, Path: path, CreatedAt: new Date().toISOString() };
    const r = await this.node.etcd.txn([{ key: csvVolumeKey(name), absent: true }], [{ put: csvVolumeKey(name), value: JSON.stringify(rec) }]);
    if (!r.succeeded) throw new VmhostError('CLUSTER_EXISTS', `Cluster Shared Volume '${name}' already exists`, { volume: name });
    this.volumes.set(name, rec);
    this.node.event('Information', 'CLUSTER_CSV_ADDED', `Cluster Shared Volume '${name}' added: ${path}, checked by ${up.join(', ')}`);
    const deadline = Date.now() + NO_COORDINATOR_WAIT_MS;
    while (!(await this.read()).coords.has(name) && Date.now() < deadline) await sleep(RETRY_MS);
    return (await this.list(name))[0]!;
  }

  /** Remove-ClusterSharedVolume: the directory and its files stay; it is an ordinary directory of each node again. */
  async remove(name: string): Promise<void> {
    const s = await this.node.readMembership();
    this.node.assertMember(s);
    const vol = (await this.read()).volumes.get(name);
    if (!vol) throw new VmhostError('CLUSTER_CSV_INVALID', `No Cluster Shared Volume '${name}'`, { volume: name });
    await this.node.etcd.txn([], [{ delete: csvVolumeKey(name) }, { delete: csvCoordKey(name) }]);
    await removeMarker(vol.Path);
    this.node.event('Information', 'CLUSTER_CSV_REMOVED', `Cluster Shared Volume '${name}' removed (${vol.Path} and its files stay)`);
  }
}
