// One vmhostd as a node of a failover cluster: it keeps its lease (node-lease.ts), and one
// loop — run every TICK_MS and whenever etcd reports a change under the cluster's prefix —
// takes one snapshot of all cluster keys (kept by a watch, snapshot-cache.ts, never older than
// this node's own last write) and does this node's part:
//   1. ownership check: a clustered VM registered here whose ownership key is gone, another
//      node's, or at another revision than the token its disks are fenced with is released
//      (its writes refused at once, then turned off and unregistered);
//   2. claims: a role the leader assigned to this node whose ownership key is absent — its old
//      owner's lease has expired, so etcd deleted the key — is claimed by a txn (key still
//      absent, assignment unchanged) that writes the key under this node's lease; the txn's
//      revision is the fencing token; the VM is registered from the shared folder;
//   3. desired state: the owner starts or stops its VMs to match the role's PersistentState, and
//      a change made on the VM itself (Start-VM, the guest shutting down) becomes the new desire;
//   4. live moves (Move-ClusterVirtualMachineRole, a drain, a failback): the owner of a role with
//      a `move` record moves the running VM to the named node with Move-VM's machinery, its
//      ticket made with the cluster's MoveKey (cluster-move.ts). The hand-over, in this order:
//      the source's QEMU stops at the pre-copy's last round; the source stops serving the disks
//      and revokes its fence; the destination, at commit, takes the ownership key in one txn
//      conditioned on the key's mod revision being the source's token (and the move record
//      unchanged), writing it under its own lease — the txn's revision is its token — and only
//      then opens the disks, fenced by it, and resumes the VM. The key exists throughout (one
//      txn replaces it), so neither node ever lacks ownership in etcd, and the old token is
//      revoked before the new one exists, so the two never both may write. A move that fails
//      after the hand-over began turns the VM off on the source: whoever holds the key then
//      starts it (a cold start, never a second copy);
//   5. leadership: the one node holding the leader key (a txn on an absent key, bound to its
//      lease) places ownerless roles (placement.ts), each assignment a txn conditioned on its
//      leader key's revision, so a deposed leader's late writes fail; and it keeps the total of
//      votes odd by switching the file-share witness's vote (dynamic-witness.ts).
// At scale (a dead node's 500 roles) assignments, claims and state reports go BATCH at a time in
// one txn each — the same compares as one role's, all of them in one request — and a batch whose
// compares do not all hold is done again role by role, so one role that changed meanwhile costs
// only its own. Passes the watch asks for are coalesced (WATCH_PASS_GAP_MS): a stream of changes
// is a few passes a second, not one pass per change.
import { VmhostError, isVmhostError } from '../common/index.ts';
import type { ClusteredArrival, EventLevel, Host, VmState } from '../host/index.ts';
import { OwnershipFence } from '../storage/index.ts';
import type { EtcdClient, EtcdCompare, EtcdOp } from './etcd-client.ts';
import { checkClusterMoveTicket, clusterMoveTicket } from './cluster-move.ts';
import {
  CONFIG_KEY, LEADER_KEY, PREFIX, aliveKey, assignKey, groupKey, moveKey, nodeKey, nodeState, ownerKey, parseSnapshot, preemptKey, stateKey, voteKey,
  type AliveRecord, type ClusterGroupRecord, type GroupState, type MoveRecord, type OwnerRecord, type PreemptRecord, type Snapshot, type StateRecord,
} from './keys.ts';
import { NodeLease, type LeaseTiming } from './node-lease.ts';
import { SnapshotCache } from './snapshot-cache.ts';
import { planDrain, planPlacements } from './placement.ts';
import { claimVote, giveUpVote, promoteVote } from './quorum.ts';
import { balanceWitness } from './dynamic-witness.ts';

export const TICK_MS = 1000;
/** Passes the watch asks for start at least this long after the previous pass started (each copies the snapshot: 24,000 keys at 8,000 roles). */
const WATCH_PASS_GAP_MS = 500;
/** How long an admin write waits for a new lease when etcd expired this node's (underLease). */
const LEASE_REPLACED_WAIT_MS = 30_000;
/** Roles per txn (etcd 3.4 takes at most 128 compares and 128 operations per txn; a claim has 2 of each per role). */
const BATCH = 60;

const chunks = <T>(list: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(list.length / n) }, (_, i) => list.slice(i * n, (i + 1) * n));
/** How long a claimed role's start waits for its disks' files to be let go by their last owner. */
const START_LOCK_WAIT_MS = 30_000;

/** A host job's result; refused at once (the VM's state) becomes a rejection, reported like a failed job. */
function job(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return run();
  } catch (e) {
    return Promise.reject(e);
  }
}

export interface ClusterNodeOptions {
  etcd: EtcdClient;
  host: Host;
  /** This node's name in the cluster (--cluster-node-name). */
  name: string;
  /** This daemon's API URL, published with its liveness. */
  url: string;
  /** The cluster's shared folder as this node mounts it (--cluster-storage): clustered VMs' folders and disks. */
  storage: string;
  /** The node lease's TTL and keepalive (--cluster-lease-ttl, --cluster-keepalive; checked by checkLeaseTiming); default 4 s / 1 s. */
  lease?: LeaseTiming;
}

const online = (s: VmState): 'Online' | 'Offline' => (s === 'Off' || s === 'Saved' ? 'Offline' : 'Online');

export class ClusterNode {
  readonly etcd: EtcdClient;
  readonly name: string;
  readonly storage: string;
  private readonly host: Host;
  private readonly lease: NodeLease;
  /** Per clustered VM registered here: the token its disks are written under. */
  private readonly fences = new Map<string, OwnershipFence>();
  /** What this node last saw of each of its VMs: a different state now is a change made on the VM itself. */
  private readonly observed = new Map<string, 'Online' | 'Offline'>();
  /** VMs this node is starting or stopping for the role's desired state (their state is Pending meanwhile). */
  private readonly acting = new Set<string>();
  private readonly failed = new Map<string, string>();
  /** Roles this node is moving out live, and those arriving here (staged, not yet registered): the loop leaves them alone. */
  private readonly moving = new Set<string>();
  private readonly arriving = new Set<string>();
  /**
   * Releases under way (the VM being killed and unregistered): an adopt of the same VM waits for the end of its release.
   * Without the wait, a lease renewed while an isolation's release still ran let the loop adopt the VM again (its key is
   * still this node's): the host found it registered and put the new fence on the dying QEMU's drives, then the release
   * took that fence off and unregistered the VM — the role stayed owned here, fenced in this node's map, never started.
   */
  private readonly releasing = new Map<string, Promise<void>>();
  /** Moves this node has let in: a ticket opens one prepare only. */
  private readonly admitted = new Set<string>();
  /** Roles VM monitoring asked to fail over (vm-monitor.ts), and why: done by the loop, between its passes' other work. */
  private readonly failovers = new Map<string, string>();
  private lastAlive = new Set<string>();
  /** The leader's dynamic-witness change under way (dynamic-witness.ts). */
  private balancing: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private interval: NodeJS.Timeout | undefined;
  /** A pass the watch asked for, waiting for WATCH_PASS_GAP_MS after the last pass's start. */
  private watchPass: NodeJS.Timeout | undefined;
  private lastPassAt = 0;
  /** The loop's view of the keys, kept by a watch (snapshot-cache.ts); admin reads go to etcd itself (read()). */
  private readonly cache: SnapshotCache;

  private constructor(private readonly opts: ClusterNodeOptions) {
    this.etcd = opts.etcd;
    this.name = opts.name;
    this.storage = opts.storage;
    this.host = opts.host;
    this.cache = new SnapshotCache(opts.etcd, () => this.watchKick());
    this.lease = new NodeLease(opts.etcd, {
      onRenewed: (until) => { for (const f of this.fences.values()) f.renew(until); },
      onLost: (why) => void this.isolated(why),
      onNewLease: async (id) => {
        const alive: AliveRecord = { Url: opts.url, Pid: process.pid, Since: new Date().toISOString(), Version: opts.host.facts.vmhostVersion, MemoryCapacity: opts.host.memoryCapacity() };
        await this.etcd.put(aliveKey(this.name), JSON.stringify(alive), id);
      },
    }, opts.lease);
  }

  /** Join: grant the lease and publish this node alive, then run the loop. Throws when etcd cannot be reached. */
  static async start(opts: ClusterNodeOptions): Promise<ClusterNode> {
    const n = new ClusterNode(opts);
    opts.host.clusterArrivals = (ticket, vmId) => n.arrival(ticket, vmId);
    // Before this node can own anything: what an earlier daemon of it ran is no longer its to run.
    await opts.host.turnOffStrayClustered();
    await n.lease.start();
    const vote = await claimVote(n.etcd, await n.read(), n.name);
    if (vote) await n.etcd.put(voteKey(n.name), JSON.stringify(vote.vote));
    n.event('Information', 'CLUSTER_NODE_JOINED', `Node ${n.name} is connected to etcd (${opts.etcd.endpoints.join(', ')}), lease ${n.lease.id}, `
      + (vote?.said ?? 'without a vote (its first endpoint is no etcd member)'));
    n.cache.start();
    n.interval = setInterval(() => n.kick(), TICK_MS);
    n.kick();
    return n;
  }

  get leaseId(): string {
    return this.lease.id;
  }

  /** Read every cluster key now, from etcd (the admin cmdlets' reads: they must see another node's write of a moment ago). */
  async read(): Promise<Snapshot> {
    const { kvs, revision } = await this.etcd.range(PREFIX);
    return parseSnapshot(kvs, revision);
  }

  /** Some keys read now, in one txn (one revision): a snapshot holding only them, for a call whose cost must not grow with the roles. */
  async readSome(keys: readonly string[], prefixes: readonly string[] = []): Promise<Snapshot> {
    const r = await this.etcd.txn([], [...keys.map((k) => ({ get: k })), ...prefixes.map((p) => ({ range: p }))]);
    return parseSnapshot(r.gets.flat(), r.revision);
  }

  /** The cluster without its roles, read now: config, leader, nodes, their liveness and votes. */
  readMembership(): Promise<Snapshot> {
    return this.readSome([CONFIG_KEY, LEADER_KEY], [nodeKey(''), aliveKey(''), voteKey('')]);
  }

  /** One role's keys and the config, read now. */
  readRole(id: string): Promise<Snapshot> {
    return this.readSome([CONFIG_KEY, groupKey(id), ownerKey(id), stateKey(id)]);
  }

  /** The loop's watch-kept view (snapshot-cache.ts), for work beside the loop that needs no newer view than the loop's. */
  snapshot(): Promise<Snapshot> {
    return this.cache.read();
  }

  /** Run the loop again soon (a change in etcd, an admin action). */
  kick(): void {
    if (this.closed) return;
    if (this.running) { this.again = true; return; }
    this.running = this.tick()
      .catch((e: unknown) => { if (!this.closed) this.event('Warning', 'CLUSTER_LOOP_FAILED', `Cluster loop: ${(e as Error).message}`); })
      .finally(() => {
        this.running = undefined;
        if (this.again) { this.again = false; this.kick(); }
      });
  }

  /** The watch saw a change: a pass soon, but no sooner than WATCH_PASS_GAP_MS after the last one began. */
  private watchKick(): void {
    if (this.watchPass || this.closed) return;
    const wait = Math.max(0, this.lastPassAt + WATCH_PASS_GAP_MS - performance.now());
    this.watchPass = setTimeout(() => { this.watchPass = undefined; this.kick(); }, wait);
  }

  private async tick(): Promise<void> {
    this.lastPassAt = performance.now();
    const s = await this.cache.read();
    this.noticeNodes(s);
    // Evicted while leading: give the leadership up, or nobody would place roles.
    if (s.leader?.node === this.name && !s.nodes.has(this.name)) await this.etcd.txn([{ key: LEADER_KEY, modRevision: s.leader.modRevision }], [{ delete: LEADER_KEY }]);
    if (!s.config || !s.nodes.has(this.name) || !this.lease.valid) return;
    // Ownership changed by a failover: the rest of this pass would work from a stale snapshot (and re-adopt the role).
    if (await this.failOver(s) || await this.preempted(s)) { this.again = true; return; }
    if (await promoteVote(this.etcd, s, this.name)) this.event('Information', 'CLUSTER_NODE_VOTE', `Node ${this.name}'s etcd member caught up and votes again`);
    await this.checkOwnership(s);
    await this.claim(s);
    await this.reconcile(s);
    await this.moves(s);
    await this.lead(s);
  }

  /** Every node logs members going Down and coming Up (detection time is read from these events). */
  private noticeNodes(s: Snapshot): void {
    const alive = new Set([...s.alive.keys()].filter((n) => s.nodes.has(n)));
    if (this.lastAlive.size > 0 || alive.size > 0) {
      for (const n of this.lastAlive) if (!alive.has(n)) this.event('Warning', 'CLUSTER_NODE_DOWN', `Cluster node ${n} is Down: its etcd lease expired`);
      for (const n of alive) if (!this.lastAlive.has(n) && this.lastAlive.size > 0) this.event('Information', 'CLUSTER_NODE_UP', `Cluster node ${n} is Up`);
    }
    this.lastAlive = alive;
  }

  private async checkOwnership(s: Snapshot): Promise<void> {
    for (const vm of this.host.clusteredVms()) {
      if (this.moving.has(vm.id)) continue; // the move settles it
      const owner = s.owners.get(vm.id);
      const fence = this.fences.get(vm.id);
      // Claimed after this pass read its snapshot (a live move's hand-over lands while the pass waits on etcd): the
      // snapshot cannot show this node's key yet, and releasing on its word would turn off the VM that just arrived.
      if (fence && s.revision < fence.token) continue;
      let why: string | undefined;
      if (!owner) why = 'its ownership key is gone (the role was removed or this node\'s lease expired)';
      else if (owner.Node !== this.name) why = `node ${owner.Node} owns it now`;
      else if (owner.modRevision !== fence?.token) why = `its ownership token is ${owner.modRevision}, this node holds ${fence?.token ?? 'none'}`;
      if (why !== undefined) await this.release(vm.id, why);
    }
    // Owned under this node's current lease but not registered here (after an isolation its lease survived, or a role just added).
    for (const [id, owner] of s.owners) {
      if (owner.Node === this.name && owner.lease === this.lease.id && !this.fences.has(id) && !this.arriving.has(id) && s.groups.has(id)) await this.adopt(id, owner.modRevision);
    }
  }

  private async claim(s: Snapshot): Promise<void> {
    const mine = [...s.assigns].filter(([id, a]) => a.Node === this.name && !s.owners.has(id) && s.groups.has(id) && !s.groups.get(id)!.Removing);
    // Each role: its key still absent and the assignment unchanged, then the key under this node's lease and the assignment gone.
    const compares = ([id, a]: (typeof mine)[number]): EtcdCompare[] => [{ key: ownerKey(id), absent: true }, { key: assignKey(id), value: a.value }];
    const ops = ([id]: (typeof mine)[number]): EtcdOp[] => [
      { put: ownerKey(id), value: JSON.stringify({ Node: this.name } satisfies OwnerRecord), lease: this.lease.id }, { delete: assignKey(id) },
    ];
    for (const batch of chunks(mine, BATCH)) {
      for (const { items, revision } of await this.batchTxn(batch, compares, ops)) {
        for (const [id] of items) {
          const g = s.groups.get(id)!;
          this.event('Information', 'CLUSTER_GROUP_CLAIMED', `Role '${g.Name}' now owned by ${this.name} (ownership token ${revision})`);
          // No Auto Start: the role moves, the VM stays off.
          if (g.Priority === 0 && g.Persistent === 'Online') await this.putGroup({ ...g, Persistent: 'Offline' });
          await this.adopt(id, revision);
        }
      }
    }
  }

  /**
   * Several roles' txns as one: every role's compares and operations in one txn; if one compare
   * fails, each role's own txn instead. What succeeded, by txn (its revision is their fencing token).
   */
  private async batchTxn<T>(items: readonly T[], compares: (t: T) => EtcdCompare[], ops: (t: T) => EtcdOp[], common: EtcdCompare[] = []): Promise<{ items: T[]; revision: number }[]> {
    if (items.length === 0) return [];
    if (items.length > 1) {
      const r = await this.etcd.txn([...common, ...items.flatMap(compares)], items.flatMap(ops));
      if (r.succeeded) return [{ items: [...items], revision: r.revision }];
    }
    const done: { items: T[]; revision: number }[] = [];
    for (const t of items) {
      const r = await this.etcd.txn([...common, ...compares(t)], ops(t));
      if (r.succeeded) done.push({ items: [t], revision: r.revision });
    }
    return done;
  }

  private async adopt(id: string, token: number): Promise<void> {
    await this.releasing.get(id)?.catch(() => undefined);
    const fence = new OwnershipFence(token);
    fence.renew(this.lease.until);
    this.fences.set(id, fence);
    this.observed.delete(id);
    this.failed.delete(id);
    try {
      await this.host.adoptClustered(this.storage, id, fence);
    } catch (e) {
      this.failed.set(id, `cannot register the VM from ${this.storage}: ${(e as Error).message}`);
      await this.putState(id, { Node: this.name, State: 'Failed', Message: this.failed.get(id) });
    }
  }

  private async release(id: string, why: string): Promise<void> {
    this.fences.get(id)?.revoke(why);
    this.fences.delete(id);
    this.observed.delete(id);
    const done: Promise<void> = this.host.releaseClustered(id, why).finally(() => { if (this.releasing.get(id) === done) this.releasing.delete(id); });
    this.releasing.set(id, done);
    await done;
  }

  private async reconcile(s: Snapshot): Promise<void> {
    const reports: [string, StateRecord][] = [];
    for (const vm of this.host.clusteredVms()) {
      const g = s.groups.get(vm.id);
      if (!g || !this.fences.has(vm.id) || this.moving.has(vm.id)) continue;
      if (g.Removing) { await this.finishRemoval(vm.id, vm.state); continue; }
      const cur = online(vm.state);
      const prev = this.observed.get(vm.id);
      if (!this.acting.has(vm.id)) {
        if (prev !== undefined && prev !== cur) {
          if (g.Persistent !== cur) await this.putGroup({ ...g, Persistent: cur });
          this.failed.delete(vm.id);
        } else if (g.Persistent !== cur && !this.failed.has(vm.id)) {
          this.act(vm.id, g);
        }
        this.observed.set(vm.id, cur);
      }
      const state: GroupState = this.acting.has(vm.id) ? 'Pending' : this.failed.has(vm.id) ? 'Failed' : cur;
      const had = s.states.get(vm.id);
      if (had?.Node !== this.name || had.State !== state) reports.push([vm.id, { Node: this.name, State: state, ...(this.failed.has(vm.id) ? { Message: this.failed.get(vm.id) } : {}) }]);
    }
    for (const batch of chunks(reports, BATCH)) await this.etcd.txn([], batch.map(([id, st]) => ({ put: stateKey(id), value: JSON.stringify(st) })));
  }

  /** Start or stop the VM for the role's desired state, beside the loop (a start takes seconds). */
  private act(id: string, g: ClusterGroupRecord): void {
    this.acting.add(id);
    // Offline is the VM resource's default OfflineAction in Hyper-V: Save.
    const result = g.Persistent === 'Online' ? this.startClaimed(id) : job(() => this.host.save(id).result);
    void result
      .then(() => { this.observed.delete(id); })
      .catch((e: unknown) => {
        this.failed.set(id, (e as Error).message);
        this.event('Error', 'CLUSTER_GROUP_FAILED', `Role '${g.Name}' could not be brought ${g.Persistent}: ${(e as Error).message}`);
      })
      .finally(() => { this.acting.delete(id); this.kick(); });
  }

  /**
   * Start a role's VM; a disk still locked by the node that had it (VHD_IN_USE) is tried again
   * for up to START_LOCK_WAIT_MS. The old owner turns the VM off before its lease may expire, but
   * its block server lets the disk files go only once the QEMU's exports are drained and closed,
   * which on a loaded machine can end after a new owner claimed the role (fencing is unaffected:
   * the old token refuses every write from the deadline on; the file lock only refuses the open).
   */
  private async startClaimed(id: string): Promise<unknown> {
    const until = Date.now() + START_LOCK_WAIT_MS;
    for (;;) {
      try {
        return await job(() => this.host.start(id).result);
      } catch (e) {
        if (!isVmhostError(e) || e.code !== 'VHD_IN_USE' || Date.now() > until || this.closed || !this.fences.has(id)) throw e;
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
  }

  /** Remove-ClusterGroup reached the owner: the Off VM goes back to this node's data dir, then the role's keys go. */
  private async finishRemoval(id: string, state: VmState): Promise<void> {
    if (online(state) !== 'Offline') return;
    this.fences.get(id)?.revoke('the role was removed');
    this.fences.delete(id);
    this.observed.delete(id);
    await this.host.leaveShared(id);
    await this.etcd.txn([], [{ delete: groupKey(id) }, { delete: ownerKey(id) }, { delete: stateKey(id) }, { delete: assignKey(id) }]);
  }

  /** The live moves asked of roles this node owns (see the header, 4.). */
  private async moves(s: Snapshot): Promise<void> {
    for (const [id, m] of s.moves) {
      const fence = this.fences.get(id);
      const vm = this.host.clusteredVms().find((v) => v.id === id);
      // Done, but its source died before it could say so (it deletes the record once the VM left it).
      if (m.To === this.name && s.owners.get(id)?.Node === this.name && nodeState(s, m.From) === 'Down') await this.dropMove(id, m);
      if (m.Failed || m.From !== this.name || s.owners.get(id)?.Node !== this.name || this.moving.has(id) || !fence || !vm) continue;
      const to = s.alive.get(m.To);
      const key = s.config?.MoveKey;
      let why: string | undefined;
      if (vm.state !== 'Running') why = `VM '${vm.name}' is ${vm.state}: only a running role moves live`;
      else if (!to || nodeState(s, m.To) !== 'Up') why = `node ${m.To} is ${nodeState(s, m.To)}`;
      else if (!key) why = 'the cluster has no MoveKey (it was created before live moves were built)';
      if (why !== undefined) { await this.failMove(id, m, why); continue; }
      this.moving.add(id);
      let handedOver = false;
      let result: Promise<unknown>;
      try {
        result = this.host.move(id, {
          destination: new URL(to!.Url).host, ticket: clusterMoveTicket(key!, id, m.To, m.Id),
          handOver: () => { handedOver = true; fence.revoke(`ownership handed over to ${m.To} (move ${m.Id})`); },
        }).result;
      } catch (e) {
        result = Promise.reject(e); // refused at once
      }
      void result
        .then(async () => {
          this.fences.delete(id);
          this.observed.delete(id);
          await this.dropMove(id, m); // the VM has left this node: the move is complete
        }, async (e: unknown) => {
          await this.failMove(id, m, (e as Error).message);
        })
        .catch((e: unknown) => this.event('Warning', 'CLUSTER_LOOP_FAILED', `Move record of VM ${id}: ${(e as Error).message}`))
        .finally(async () => {
          // Handed over but not taken (or not known to be): the VM waits paused here under a revoked fence. Turned off, the
          // role is started by whichever node holds its key (this one again when the destination did not claim it).
          if (handedOver && this.host.clusteredVms().some((v) => v.id === id)) await this.release(id, `its move to ${m.To} failed after the hand-over began`).catch(() => undefined);
          this.moving.delete(id);
          this.kick();
        });
    }
  }

  private async dropMove(id: string, m: MoveRecord & { value: string }): Promise<void> {
    await this.etcd.txn([{ key: moveKey(id), value: m.value }], [{ delete: moveKey(id) }]);
  }

  private async failMove(id: string, m: MoveRecord & { value: string }, why: string): Promise<void> {
    const { value, ...rec } = m;
    this.event('Error', 'CLUSTER_GROUP_MOVE_FAILED', `Role of VM ${id} not moved to ${m.To}: ${why}`);
    await this.etcd.txn([{ key: moveKey(id), value }], [{ put: moveKey(id), value: JSON.stringify({ ...rec, Failed: why } satisfies MoveRecord) }]);
  }

  /** Destination: a move ticket from the role's owner (cluster-move.ts) lets the VM in as a clustered arrival. */
  private async arrival(ticket: string, vmId: string): Promise<ClusteredArrival> {
    const s = await this.read();
    this.assertMember(s);
    if (!s.config?.MoveKey) throw new VmhostError('MIGRATION_TICKET_INVALID', 'this cluster has no MoveKey: its nodes cannot move roles between them', { vm: vmId });
    const moveId = checkClusterMoveTicket(s.config.MoveKey, ticket, vmId, this.name);
    const m = s.moves.get(vmId);
    const from = s.owners.get(vmId);
    if (!m || m.Id !== moveId || m.To !== this.name || m.Failed !== undefined || this.admitted.has(moveId)) {
      throw new VmhostError('MIGRATION_TICKET_INVALID', `no move ${moveId} of VM ${vmId} to ${this.name} is asked in the cluster now (or it was let in already)`, { vm: vmId });
    }
    if (!from || from.Node === this.name || from.Node !== m.From) throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM ${vmId} has no other owner to move from`, { vm: vmId });
    if (!this.lease.valid) throw new VmhostError('CLUSTER_INVALID_OPERATION', `node ${this.name} does not hold a valid etcd lease`, { vm: vmId });
    this.admitted.add(moveId);
    this.arriving.add(vmId);
    return {
      paths: this.host.clusteredPaths(this.storage, vmId),
      claim: async () => {
        // The key is written once per owner, so its mod revision is still the one read above while the source holds it.
        const r = await this.etcd.txn(
          [{ key: ownerKey(vmId), modRevision: from.modRevision }, { key: moveKey(vmId), value: m.value }],
          [{ put: ownerKey(vmId), value: JSON.stringify({ Node: this.name } satisfies OwnerRecord), lease: this.lease.id }],
        );
        if (!r.succeeded) {
          throw new VmhostError('CLUSTER_INVALID_OPERATION', `ownership of VM ${vmId} not taken over: node ${from.Node} no longer holds it at token ${from.modRevision}, or the move was called off`, { vm: vmId });
        }
        const fence = new OwnershipFence(r.revision);
        fence.renew(this.lease.until);
        this.fences.set(vmId, fence);
        this.observed.delete(vmId);
        this.failed.delete(vmId);
        this.event('Information', 'CLUSTER_GROUP_MOVED', `Role of VM ${vmId} moved live from ${from.Node} to ${this.name} (ownership token ${from.modRevision} -> ${r.revision})`);
        return fence;
      },
      done: () => {
        this.arriving.delete(vmId);
        // Abandoned after the claim: the key is this node's, the VM is not running here; the loop adopts and starts it.
        if (!this.host.clusteredVms().some((v) => v.id === vmId)) this.fences.delete(vmId);
        this.kick();
      },
    };
  }

  private async lead(s: Snapshot): Promise<void> {
    if (!s.leader) {
      const r = await this.etcd.txn([{ key: LEADER_KEY, absent: true }], [{ put: LEADER_KEY, value: JSON.stringify({ Node: this.name } satisfies OwnerRecord), lease: this.lease.id }]);
      if (r.succeeded) { this.event('Information', 'CLUSTER_LEADER', `Node ${this.name} places the cluster's roles now`); this.kick(); }
      return;
    }
    if (s.leader.node !== this.name) return;
    const plan = planPlacements(s);
    const leading: EtcdCompare[] = [{ key: LEADER_KEY, modRevision: s.leader.modRevision }];
    for (const batch of chunks(plan.place, BATCH)) {
      const placed = await this.batchTxn(batch, (p) => [{ key: ownerKey(p.vmId), absent: true }],
        (p) => [{ put: assignKey(p.vmId), value: JSON.stringify({ Node: p.node, By: this.name }) }], leading);
      for (const p of placed.flatMap((d) => d.items)) {
        this.event('Information', 'CLUSTER_GROUP_PLACED', `Role '${s.groups.get(p.vmId)!.Name}' (priority ${s.groups.get(p.vmId)!.Priority}) placed on ${p.node}`);
      }
    }
    for (const p of plan.preempt) {
      const rec: PreemptRecord = { Node: p.node, Token: p.token, For: p.for, By: this.name };
      const r = await this.etcd.txn(
        [{ key: LEADER_KEY, modRevision: s.leader.modRevision }, { key: ownerKey(p.vmId), modRevision: p.token }, { key: preemptKey(p.vmId), absent: true }],
        [{ put: preemptKey(p.vmId), value: JSON.stringify(rec) }],
      );
      if (r.succeeded) {
        this.event('Warning', 'CLUSTER_GROUP_PREEMPTING', `Role '${s.groups.get(p.vmId)!.Name}' (priority ${s.groups.get(p.vmId)!.Priority}) is to be turned off on ${p.node} `
          + `to make room for '${s.groups.get(p.for)!.Name}' (priority ${s.groups.get(p.for)!.Priority})`);
      }
    }
    // A preemption its owner can no longer carry out (the role moved, was removed, or its owner died): dropped.
    for (const [id, p] of s.preempts) {
      if (s.owners.get(id)?.modRevision !== p.Token) await this.etcd.txn([{ key: preemptKey(id), value: p.value }], [{ delete: preemptKey(id) }]);
    }
    // Beside the pass: a membership change etcd refuses for a few seconds (reconfigure) must not hold the placements up.
    this.balancing ??= balanceWitness(this.etcd, s.config!)
      .then((said) => { if (said) this.event('Information', 'CLUSTER_WITNESS_VOTE', said); })
      .catch((e: unknown) => this.event('Warning', 'CLUSTER_WITNESS_VOTE', `The file share witness's vote could not be switched: ${(e as Error).message}`))
      .finally(() => { this.balancing = undefined; });
  }

  /**
   * Preemption asked of roles this node owns (placement.ts): the VM is turned off here, then in
   * one txn on this node's token its ownership key and the request go; the role, still wanted
   * Online, is placed again wherever room appears. True when ownership changed.
   */
  private async preempted(s: Snapshot): Promise<boolean> {
    let changed = false;
    for (const [id, p] of s.preempts) {
      const owner = s.owners.get(id);
      const g = s.groups.get(id);
      if (p.Node !== this.name || owner?.Node !== this.name || owner.modRevision !== p.Token || !g || !this.fences.has(id) || this.moving.has(id) || this.acting.has(id)) continue;
      const forName = s.groups.get(p.For)?.Name ?? p.For;
      await this.release(id, `preempted by role '${forName}'`);
      const r = await this.etcd.txn([{ key: ownerKey(id), modRevision: owner.modRevision }, { key: preemptKey(id), value: p.value }],
        [{ delete: ownerKey(id) }, { delete: preemptKey(id) }]);
      this.event('Warning', 'CLUSTER_GROUP_PREEMPTED', r.succeeded
        ? `Role '${g.Name}' (priority ${g.Priority}) was turned off on ${this.name} to make room for '${forName}'; it starts again where room appears`
        : `Role '${g.Name}' was turned off for a preemption, but its ownership changed meanwhile`);
      changed = true;
    }
    return changed;
  }

  /** VM monitoring's last resort (vm-monitor.ts): the role restarts cold on another node. */
  requestFailover(vmId: string, why: string): void {
    this.failovers.set(vmId, why);
    this.kick();
  }

  /**
   * The VM is turned off here, then in one txn conditioned on this node's token its ownership key
   * goes and the role is assigned to the node a drain would pick; that node claims it as after a
   * node's death and starts it (PersistentState stays Online). True when ownership changed.
   */
  private async failOver(s: Snapshot): Promise<boolean> {
    let changed = false;
    for (const [id, why] of this.failovers) {
      this.failovers.delete(id);
      const owner = s.owners.get(id);
      const g = s.groups.get(id);
      if (!g || owner?.Node !== this.name || !this.fences.has(id) || this.moving.has(id)) continue;
      const to = planDrain(s, this.name).find((p) => p.vmId === id)?.node;
      if (to === undefined) {
        this.event('Error', 'CLUSTER_GROUP_FAILOVER_FAILED', `Role '${g.Name}' cannot fail over (${why}): no other Up node may own it`);
        continue;
      }
      await this.release(id, `failing over to ${to}: ${why}`);
      const r = await this.etcd.txn([{ key: ownerKey(id), modRevision: owner.modRevision }],
        [{ delete: ownerKey(id) }, { put: assignKey(id), value: JSON.stringify({ Node: to, By: this.name }) }]);
      this.event(r.succeeded ? 'Warning' : 'Error', 'CLUSTER_GROUP_FAILOVER',
        r.succeeded ? `Role '${g.Name}' fails over to ${to}: ${why}` : `Role '${g.Name}' was turned off here to fail over (${why}), but its ownership changed meanwhile`);
      changed = true;
    }
    return changed;
  }

  /** The lease's guarantee ran out: stop every clustered VM here before another node may claim it. */
  private async isolated(why: string): Promise<void> {
    this.event('Error', 'CLUSTER_NODE_ISOLATED', `Node ${this.name} lost its etcd lease (${why}): its clustered VMs are turned off`);
    for (const vm of this.host.clusteredVms()) await this.release(vm.id, `this node lost its etcd lease: ${why}`).catch(() => undefined);
  }

  // ---- what the admin cmdlets need (cluster-admin.ts) --------------------------------

  /** Add-ClusterVirtualMachineRole on the node that has the VM: its folder goes to the shared folder, the role is created and owned here. */
  async addRole(vmName: string, roleName: string | undefined): Promise<string> {
    this.assertMember(await this.readMembership());
    const memory = this.host.get(vmName).MemoryStartup; // before the move unregisters it here
    const { id, name } = await this.host.moveToShared(vmName, this.storage);
    const group: ClusterGroupRecord = { Name: roleName ?? name, VMId: id, Priority: 2000, OwnerNodes: [], Persistent: 'Offline', MemoryBytes: memory };
    // The VM is Off: so is the role, from the start (not Pending until the loop's next pass).
    const owner = JSON.stringify({ Node: this.name } satisfies OwnerRecord);
    const r = await this.underLease(() => this.etcd.txn(
      [{ key: groupKey(id), absent: true }, { key: ownerKey(id), absent: true }],
      [
        { put: groupKey(id), value: JSON.stringify(group) }, { put: ownerKey(id), value: owner, lease: this.lease.id },
        { put: stateKey(id), value: JSON.stringify({ Node: this.name, State: 'Offline' } satisfies StateRecord) },
      ],
      [{ get: ownerKey(id) }],
    ));
    // Refused, unless by this very txn applied once already (etcd timed out and the client asked again): the key is then this node's, under its lease.
    const mine = r.gets[0]?.[0];
    const token = r.succeeded ? r.revision : mine?.value === owner && mine.lease === this.lease.id ? mine.modRevision : undefined;
    if (token === undefined) throw new VmhostError('CLUSTER_EXISTS', `A role for VM ${id} already exists in the cluster`, { vm: id });
    await this.adopt(id, token);
    this.kick();
    return id;
  }

  /**
   * A write bound to this node's lease, asked again under the next lease when etcd expired this one
   * meanwhile (a daemon starved of CPU for the TTL on a loaded machine): the node fenced itself and
   * is granting a new lease, and an admin call in flight should not fail for that.
   */
  private async underLease<T>(write: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LEASE_REPLACED_WAIT_MS;
    for (;;) {
      const had = this.lease.id;
      try {
        return await write();
      } catch (e) {
        if (!(isVmhostError(e) && e.context.leaseNotFound === 'true') || Date.now() > deadline || this.closed) throw e;
        while ((this.lease.id === had || !this.lease.valid) && Date.now() < deadline && !this.closed) await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  assertMember(s: Snapshot): void {
    if (!s.config) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'No cluster exists in this node\'s etcd: run New-Cluster first', {});
    if (!s.nodes.has(this.name)) throw new VmhostError('CLUSTER_INVALID_OPERATION', `This node (${this.name}) is not a member of cluster '${s.config.Name}'`, { node: this.name });
  }

  async putGroup(g: ClusterGroupRecord): Promise<void> {
    await this.etcd.put(groupKey(g.VMId), JSON.stringify(g));
  }

  private async putState(id: string, st: StateRecord): Promise<void> {
    await this.etcd.put(stateKey(id), JSON.stringify(st));
  }

  event(level: EventLevel, code: string, message: string): void {
    this.host.events.emit({ Level: level, Code: code, Message: message });
  }

  /**
   * Leave: stop the loop and the lease. `revoke`: end the lease now, so the others take this
   * node's roles without waiting for the TTL — its clustered VMs are released (turned off) first.
   */
  async close(revoke: boolean): Promise<void> {
    if (revoke) for (const vm of this.host.clusteredVms()) await this.release(vm.id, 'the node is leaving the cluster (daemon stopping)').catch((e: unknown) => {
      if (!isVmhostError(e)) throw e;
    });
    this.closed = true;
    clearInterval(this.interval);
    clearTimeout(this.watchPass);
    this.cache.close();
    await this.running;
    await this.lease.close(revoke);
  }

  /**
   * Dynamic quorum: a node leaving cleanly takes its vote with it (quorum.ts), so the others'
   * majority shrinks. The very last step of a leave: its own etcd member stops once removed.
   */
  async leaveVote(): Promise<void> {
    const said = await this.read().then((s) => giveUpVote(this.etcd, s, this.name)).catch((e: unknown) => `its vote could not be removed: ${(e as Error).message}`);
    if (said) this.event('Information', 'CLUSTER_NODE_VOTE', said);
  }
}
