// The Failover Clustering cmdlets as operations on the cluster's etcd keys, run by whichever
// node the administrator talks to. Changes to a role are written as its desired state; the
// owner node carries them out in its loop (cluster-node.ts) and the call waits until the
// role's state shows it (Start-/Stop-/Remove-ClusterGroup), as Hyper-V's -Wait does. A live
// move is written as a `move` record the owner carries out (cluster-node.ts, 4.); the call
// waits until the destination holds the ownership key and the source has deleted the record
// (the VM has left it), or the owner wrote why not.
import { randomUUID } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { newMoveKey } from './cluster-move.ts';
import {
  CONFIG_KEY, PRIORITIES, groupKey, moveKey, nodeKey, nodeState, ownerKey, voteKey,
  type ClusterConfig, type ClusterGroupRecord, type GroupState, type MoveRecord, type NodeRecord, type Priority, type Snapshot,
} from './keys.ts';
import { planDrain, type Placement } from './placement.ts';
import type { EtcdMember } from './etcd-client.ts';
import {
  demoteVote, giveUpVote, quorumView, votes, witnessAt, witnessMember, witnessVotes, type ClusterQuorumView, type QuorumConfig, type QuorumType,
} from './quorum.ts';

const WAIT_MS = 120_000;

export interface ClusterView { Name: string; Id: string; DynamicQuorum: number; WitnessDynamicWeight: number; SharedVolumesRoot: string }
/** `VmhostVersion`: the node's running daemon's (empty while Down). */
export interface ClusterNodeView { Name: string; Id: string; State: 'Up' | 'Down' | 'Paused'; NodeWeight: number; DynamicWeight: number; DrainStatus: string; VmhostVersion: string; Cluster: string }
export interface ClusterGroupView {
  Name: string; Id: string; OwnerNode: string; State: GroupState; GroupType: 'VirtualMachine'; Priority: Priority;
  PersistentState: number; OwnerNodes: string[]; AntiAffinityClassNames: string[]; Cluster: string;
}

function need(s: Snapshot): ClusterConfig {
  if (!s.config) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'No cluster exists in this node\'s etcd: run New-Cluster first', {});
  return s.config;
}

/** DynamicWeight: whether the node's etcd member votes now (quorum.ts) — a crashed node's still does, one that left cleanly's not. */
function nodeView(s: Snapshot, members: readonly EtcdMember[], cluster: string, n: NodeRecord): ClusterNodeView {
  return {
    Name: n.Name, Id: n.Id, State: nodeState(s, n.Name), NodeWeight: n.NodeWeight, DynamicWeight: votes(s, members, n.Name) ? 1 : 0,
    DrainStatus: n.DrainStatus ?? 'NotInitiated', VmhostVersion: s.alive.get(n.Name)?.Version ?? '', Cluster: cluster,
  };
}

/** A role's state as Get-ClusterGroup shows it: its owner's report, Pending until the owner has made one. */
function groupState(s: Snapshot, g: ClusterGroupRecord): GroupState {
  const owner = s.owners.get(g.VMId);
  const st = s.states.get(g.VMId);
  if (!owner) return g.Persistent === 'Online' && g.Priority !== 0 ? 'Pending' : 'Offline';
  return st && st.Node === owner.Node ? st.State : 'Pending';
}

function groupView(s: Snapshot, cluster: string, g: ClusterGroupRecord): ClusterGroupView {
  const owner = s.owners.get(g.VMId);
  const st = s.states.get(g.VMId);
  return {
    Name: g.Name, Id: g.VMId, OwnerNode: owner?.Node ?? st?.Node ?? '', State: groupState(s, g), GroupType: 'VirtualMachine', Priority: g.Priority,
    PersistentState: g.Persistent === 'Online' ? 1 : 0, OwnerNodes: g.OwnerNodes, AntiAffinityClassNames: g.AntiAffinityClassNames ?? [], Cluster: cluster,
  };
}

export class ClusterAdmin {
  constructor(private readonly node: ClusterNode) {}

  /** New-Cluster -Name -Node: every named node's daemon must be connected to this etcd already. */
  async newCluster(name: string, nodes: readonly string[]): Promise<ClusterView> {
    const s = await this.node.read();
    if (s.config) throw new VmhostError('CLUSTER_EXISTS', `Cluster '${s.config.Name}' already exists in this etcd`, { cluster: s.config.Name });
    const missing = nodes.filter((n) => !s.alive.has(n));
    if (missing.length > 0) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${missing.join(', ')} is not reachable: no vmhostd of that name is connected to this etcd`, { node: missing[0] });
    const config: ClusterConfig = { Name: name, Id: randomUUID(), CreatedAt: new Date().toISOString(), MoveKey: newMoveKey() };
    const r = await this.node.etcd.txn([{ key: CONFIG_KEY, absent: true }], [
      { put: CONFIG_KEY, value: JSON.stringify(config) },
      ...[...new Set(nodes)].map((n) => ({ put: nodeKey(n), value: JSON.stringify({ Name: n, Id: randomUUID(), NodeWeight: 1, Paused: false } satisfies NodeRecord) })),
    ]);
    if (!r.succeeded) throw new VmhostError('CLUSTER_EXISTS', 'A cluster was created in this etcd meanwhile', {});
    this.node.event('Information', 'CLUSTER_CREATED', `Cluster '${name}' created with nodes ${nodes.join(', ')}`);
    this.node.kick();
    return this.cluster();
  }

  /** DynamicQuorum 1: a clean leave always takes its node's vote (quorum.ts); WitnessDynamicWeight: the witness member votes now. */
  async cluster(): Promise<ClusterView> {
    const c = need(await this.node.readMembership());
    return { Name: c.Name, Id: c.Id, DynamicQuorum: 1, WitnessDynamicWeight: witnessVotes(c, await this.node.etcd.members()) ? 1 : 0, SharedVolumesRoot: this.node.storage };
  }

  async quorum(): Promise<ClusterQuorumView> {
    return quorumView(need(await this.node.readMembership()), await this.node.etcd.members());
  }

  /**
   * Set-ClusterQuorum: -NodeAndFileShareMajority <dir> takes the witness member the directory names
   * (it must vote already); -NodeMajority / -NoWitness removes a configured witness's vote from etcd.
   */
  async setQuorum(type: QuorumType, witnessPath?: string): Promise<ClusterQuorumView> {
    const c = need(await this.node.read());
    let q: QuorumConfig;
    if (type === 'NodeAndFileShareMajority') {
      if (witnessPath === undefined) throw new VmhostError('INVALID_ARGUMENT', 'Set-ClusterQuorum -NodeAndFileShareMajority needs the witness directory', { param: 'NodeAndFileShareMajority' });
      q = { Type: type, Witness: await witnessAt(this.node.etcd, c, witnessPath) };
    } else {
      q = { Type: type };
      const m = witnessMember(c, await this.node.etcd.members());
      if (m) await this.node.etcd.removeMember(m.id);
    }
    await this.node.etcd.put(CONFIG_KEY, JSON.stringify({ ...c, Quorum: q } satisfies ClusterConfig));
    this.node.event('Information', 'CLUSTER_QUORUM_SET', `Cluster '${c.Name}' quorum: ${q.Type}${q.Witness ? ` with the file share witness ${q.Witness.Path} (etcd member ${q.Witness.Member})` : ''}`);
    return this.quorum();
  }

  async nodes(name?: string): Promise<ClusterNodeView[]> {
    const s = await this.node.readMembership();
    const c = need(s);
    const list = [...s.nodes.values()].filter((n) => name === undefined || n.Name.toLowerCase() === name.toLowerCase()).sort((a, b) => a.Name.localeCompare(b.Name));
    if (name !== undefined && list.length === 0) throw new VmhostError('NOT_FOUND', `The cluster node '${name}' was not found`, { node: name });
    const members = await this.node.etcd.members();
    return list.map((n) => nodeView(s, members, c.Name, n));
  }

  /**
   * (Get-ClusterNode n).NodeWeight = 0 | 1: the node's configured vote (quorum.ts demoteVote). 0 takes
   * its etcd member's vote away now; 1 gives it back once that member has caught up (the loop promotes it).
   */
  async setNodeWeight(name: string, weight: 0 | 1): Promise<ClusterNodeView> {
    const s = await this.node.read();
    const c = need(s);
    const rec = s.nodes.get(name);
    if (!rec) throw new VmhostError('NOT_FOUND', `The cluster node '${name}' was not found`, { node: name });
    if (rec.NodeWeight === weight) return (await this.nodes(name))[0]!;
    const change = weight === 0 ? await demoteVote(this.node.etcd, s, name) : { said: `node ${name} votes again once its etcd member has caught up` };
    if (change.vote) await this.node.etcd.put(voteKey(name), JSON.stringify(change.vote));
    await this.putNode({ ...rec, NodeWeight: weight });
    this.node.event('Information', 'CLUSTER_NODE_VOTE', `Cluster '${c.Name}': NodeWeight of ${name} set to ${weight}; ${change.said}`);
    return (await this.nodes(name))[0]!;
  }

  async addNode(name: string): Promise<ClusterNodeView> {
    const s = await this.node.read();
    const c = need(s);
    if (s.nodes.has(name)) throw new VmhostError('CLUSTER_EXISTS', `Node ${name} is already a member of cluster '${c.Name}'`, { node: name });
    if (!s.alive.has(name)) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${name} is not reachable: no vmhostd of that name is connected to this etcd`, { node: name });
    const rec: NodeRecord = { Name: name, Id: randomUUID(), NodeWeight: 1, Paused: false };
    await this.node.etcd.put(nodeKey(name), JSON.stringify(rec));
    this.node.event('Information', 'CLUSTER_NODE_ADDED', `Node ${name} added to cluster '${c.Name}'`);
    return nodeView(await this.node.read(), await this.node.etcd.members(), c.Name, rec);
  }

  /** Remove-ClusterNode: refused while the node owns roles (Suspend-ClusterNode -Drain moves them off first); its vote goes with it. */
  async removeNode(name: string): Promise<void> {
    const s = await this.node.read();
    need(s);
    if (!s.nodes.has(name)) throw new VmhostError('NOT_FOUND', `The cluster node '${name}' was not found`, { node: name });
    const owned = [...s.owners.entries()].filter(([, o]) => o.Node === name).map(([id]) => s.groups.get(id)?.Name ?? id).sort();
    if (owned.length > 0) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${name} owns ${owned.join(', ')}: move or remove those roles first`, { node: name });
    await this.node.etcd.delete(nodeKey(name));
    const vote = await giveUpVote(this.node.etcd, s, name);
    await this.node.etcd.delete(voteKey(name));
    this.node.event('Information', 'CLUSTER_NODE_REMOVED', `Node ${name} removed from the cluster${vote ? `; ${vote}` : ''}`);
  }

  async addVmRole(vmName: string, roleName?: string): Promise<ClusterGroupView> {
    const id = await this.node.addRole(vmName, roleName);
    // The new role's keys only: a read of every role per role added would make registering N roles cost N².
    const s = await this.node.readRole(id);
    return groupView(s, need(s).Name, s.groups.get(id)!);
  }

  async groups(name?: string): Promise<ClusterGroupView[]> {
    const s = await this.node.read();
    const c = need(s);
    const list = [...s.groups.values()].filter((g) => name === undefined || g.Name.toLowerCase() === name.toLowerCase() || g.VMId === name)
      .sort((a, b) => a.Name.localeCompare(b.Name));
    if (name !== undefined && list.length === 0) throw new VmhostError('NOT_FOUND', `The cluster group '${name}' was not found`, { group: name });
    return list.map((g) => groupView(s, c.Name, g));
  }

  private async group(nameOrId: string): Promise<ClusterGroupView> {
    return (await this.groups(nameOrId))[0]!;
  }

  private async record(nameOrId: string): Promise<ClusterGroupRecord> {
    const s = await this.node.read();
    need(s);
    const g = [...s.groups.values()].find((x) => x.Name.toLowerCase() === nameOrId.toLowerCase() || x.VMId === nameOrId);
    if (!g) throw new VmhostError('NOT_FOUND', `The cluster group '${nameOrId}' was not found`, { group: nameOrId });
    return g;
  }

  /** Start-/Stop-ClusterGroup: the desired state, then wait until the owner reports it. */
  async setOnline(nameOrId: string, online: boolean): Promise<ClusterGroupView> {
    const g = await this.record(nameOrId);
    const want = online ? 'Online' : 'Offline';
    const s = await this.node.read();
    if (online && !s.owners.has(g.VMId) && ![...s.nodes.keys()].some((n) => nodeState(s, n) === 'Up' && (g.OwnerNodes.length === 0 || g.OwnerNodes.includes(n)))) {
      throw new VmhostError('CLUSTER_NO_OWNER', `Role '${g.Name}' has no owner and none of its possible owners (${g.OwnerNodes.join(', ') || 'any node'}) is Up`, { group: g.Name });
    }
    await this.node.putGroup({ ...g, Persistent: want });
    this.node.kick();
    return this.waitFor(g.VMId, `role '${g.Name}' ${want}`, (v) => v.State === want || (v.State === 'Failed' && online));
  }

  /** (Get-ClusterGroup x).Priority = n, .AntiAffinityClassNames = …, and Set-ClusterOwnerNode -Group x -Owners …. */
  async setGroup(nameOrId: string, change: { Priority?: number; OwnerNodes?: string[]; AntiAffinityClassNames?: string[] }): Promise<ClusterGroupView> {
    const g = await this.record(nameOrId);
    if (change.Priority !== undefined && !PRIORITIES.includes(change.Priority as Priority)) {
      throw new VmhostError('INVALID_ARGUMENT', `Priority ${change.Priority}: 3000 (High), 2000 (Medium), 1000 (Low) or 0 (No Auto Start)`, { param: 'Priority' });
    }
    const s = await this.node.read();
    const unknown = (change.OwnerNodes ?? []).filter((n) => !s.nodes.has(n));
    if (unknown.length > 0) throw new VmhostError('NOT_FOUND', `The cluster node '${unknown[0]}' was not found`, { node: unknown[0] });
    await this.node.putGroup({
      ...g, ...(change.Priority !== undefined ? { Priority: change.Priority as Priority } : {}), ...(change.OwnerNodes ? { OwnerNodes: change.OwnerNodes } : {}),
      ...(change.AntiAffinityClassNames ? { AntiAffinityClassNames: [...new Set(change.AntiAffinityClassNames)] } : {}),
    });
    return this.group(g.VMId);
  }

  /** Remove-ClusterGroup: an Offline role's VM goes back to its owner's data dir as an ordinary VM; its files stay. */
  async removeGroup(nameOrId: string): Promise<void> {
    const g = await this.record(nameOrId);
    const view = await this.group(g.VMId);
    if (view.State !== 'Offline') throw new VmhostError('INVALID_STATE', `Role '${g.Name}' is ${view.State}: stop it (Stop-ClusterGroup) before removing it`, { group: g.Name });
    const s = await this.node.read();
    if (!s.owners.has(g.VMId)) {
      // No owner to hand the VM to: the role goes, the VM's folder stays in the shared folder.
      await this.node.etcd.txn([{ key: ownerKey(g.VMId), absent: true }], [{ delete: groupKey(g.VMId) }]);
      return;
    }
    await this.node.putGroup({ ...g, Removing: true });
    this.node.kick();
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      if (!(await this.node.read()).groups.has(g.VMId)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new VmhostError('TIMEOUT', `Role '${g.Name}' was not removed by its owner within ${WAIT_MS / 1000} s`, { group: g.Name });
  }

  /** Move-ClusterVirtualMachineRole / Move-ClusterGroup: the running role moves live to `node` (waits until it owns it). */
  async moveGroup(nameOrId: string, node: string): Promise<ClusterGroupView> {
    const g = await this.record(nameOrId);
    const s = await this.node.read();
    const owner = s.owners.get(g.VMId)?.Node;
    if (!s.nodes.has(node)) throw new VmhostError('NOT_FOUND', `The cluster node '${node}' was not found`, { node });
    if (owner === node) return this.group(g.VMId);
    if (owner === undefined || s.states.get(g.VMId)?.State !== 'Online') {
      throw new VmhostError('CLUSTER_INVALID_OPERATION', `Role '${g.Name}' is not Online on an owner: only a running role moves live (a quick move of an Offline role is not built)`, { group: g.Name });
    }
    if (nodeState(s, node) !== 'Up') throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${node} is ${nodeState(s, node)}: a role moves only to an Up node`, { node });
    if (g.OwnerNodes.length > 0 && !g.OwnerNodes.includes(node)) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${node} is not a possible owner of role '${g.Name}' (${g.OwnerNodes.join(', ')})`, { node, group: g.Name });
    const failed = await this.moveAll([{ vmId: g.VMId, node }]);
    if (failed.length > 0) throw new VmhostError('CLUSTER_MOVE_FAILED', `Role '${g.Name}' was not moved to ${node}: ${failed[0]}`, { group: g.Name, node });
    return this.group(g.VMId);
  }

  /**
   * Suspend-ClusterNode [-Drain]: the node is Paused (it takes no roles); with -Drain every role
   * it runs moves live to the node placement would choose (planDrain), and the call waits.
   */
  /** `signal` (drain on shutdown's bound) stops waiting for the moves: the drain then records nothing more. */
  async suspendNode(name: string, drain: boolean, signal?: AbortSignal): Promise<ClusterNodeView> {
    const s = await this.node.read();
    need(s);
    const rec = s.nodes.get(name);
    if (!rec) throw new VmhostError('NOT_FOUND', `The cluster node '${name}' was not found`, { node: name });
    if (nodeState(s, name) === 'Down') throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${name} is Down: only an Up node is suspended`, { node: name });
    await this.putNode({ ...rec, Paused: true, ...(drain ? { DrainStatus: 'InProgress' as const } : {}) });
    if (!drain) return (await this.nodes(name))[0]!;
    const after = await this.settled(name, signal);
    const plan = planDrain(after, name).filter((p) => after.states.get(p.vmId)?.State === 'Online');
    const failed = await this.moveAll(plan, signal);
    signal?.throwIfAborted();
    // Roles left behind: running ones no other node may take, and failed moves.
    const left = [...(await this.node.read()).owners.entries()].filter(([id, o]) => o.Node === name && (after.states.get(id)?.State === 'Online'));
    const moved = plan.filter((p) => !failed.some((f) => f.startsWith(`${p.vmId}:`))).map((p) => p.vmId);
    await this.putNode({ ...rec, Paused: true, DrainStatus: left.length > 0 ? 'Failed' : 'Completed', Drained: moved });
    this.node.event(left.length > 0 ? 'Warning' : 'Information', 'CLUSTER_NODE_DRAINED',
      `Node ${name} paused and drained: ${moved.length} role(s) moved${left.length > 0 ? `, ${left.length} still on it${failed.length > 0 ? ` (${failed.join('; ')})` : ''}` : ''}`);
    return (await this.nodes(name))[0]!;
  }

  /** Resume-ClusterNode [-Failback Immediate|NoFailback]: Up again; Immediate moves the roles its drain moved away back to it. */
  async resumeNode(name: string, failback: 'Immediate' | 'NoFailback' | 'Policy'): Promise<ClusterNodeView> {
    const s = await this.node.read();
    need(s);
    const rec = s.nodes.get(name);
    if (!rec) throw new VmhostError('NOT_FOUND', `The cluster node '${name}' was not found`, { node: name });
    if (failback === 'Policy') throw new VmhostError('INVALID_ARGUMENT', 'Resume-ClusterNode -Failback Policy (the roles\' failback windows) is not supported yet: use Immediate or NoFailback', { param: 'Failback' });
    const { Drained: drained = [], ...rest } = rec;
    await this.putNode({ ...rest, Paused: false, DrainStatus: 'NotInitiated' });
    if (failback === 'Immediate') {
      const now = await this.node.read();
      const back = drained.filter((id) => now.groups.has(id) && now.owners.has(id) && now.owners.get(id)!.Node !== name && now.states.get(id)?.State === 'Online')
        .map((vmId): Placement => ({ vmId, node: name }));
      const failed = await this.moveAll(back);
      if (failed.length > 0) throw new VmhostError('CLUSTER_MOVE_FAILED', `Node ${name} resumed, but not every role came back: ${failed.join('; ')}`, { node: name });
    }
    return (await this.nodes(name))[0]!;
  }

  /**
   * The cluster once no role `node` owns is still on its way to its desired state (just moved in,
   * starting, restarting in place): a drain that planned from a role in that window would leave it
   * behind as "not running" and report the node drained. Bounded by WAIT_MS, then planned as it is.
   */
  private async settled(node: string, signal?: AbortSignal): Promise<Snapshot> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const s = await this.node.read();
      const busy = [...s.owners.entries()].some(([id, o]) => {
        const g = s.groups.get(id);
        return o.Node === node && g?.Persistent === 'Online' && !s.moves.has(id) && groupState(s, g) === 'Pending';
      });
      if (!busy || Date.now() > deadline) return s;
      signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async putNode(rec: NodeRecord): Promise<void> {
    await this.node.etcd.put(nodeKey(rec.Name), JSON.stringify(rec));
    this.node.kick();
  }

  /** Ask each move, then wait for all: `vmId: why` for those that failed. */
  private async moveAll(plan: readonly Placement[], signal?: AbortSignal): Promise<string[]> {
    const asked = new Map<string, MoveRecord>();
    const owners = (await this.node.read()).owners;
    for (const p of plan) {
      const rec: MoveRecord = { From: owners.get(p.vmId)?.Node ?? '', To: p.node, Id: randomUUID(), By: this.node.name };
      await this.node.etcd.put(moveKey(p.vmId), JSON.stringify(rec));
      asked.set(p.vmId, rec);
    }
    this.node.kick();
    const failed: string[] = [];
    const deadline = Date.now() + WAIT_MS;
    while (asked.size > 0) {
      signal?.throwIfAborted();
      const s = await this.node.read();
      for (const [id, rec] of asked) {
        const now = s.moves.get(id);
        if (now?.Id === rec.Id && now.Failed !== undefined) {
          failed.push(`${id}: ${now.Failed}`);
          await this.node.etcd.txn([{ key: moveKey(id), value: now.value }], [{ delete: moveKey(id) }]);
          asked.delete(id);
        } else if (now?.Id !== rec.Id && s.owners.get(id)?.Node === rec.To) {
          asked.delete(id); // the destination took the key, and the source let the VM go
        } else if (now?.Id !== rec.Id) {
          failed.push(`${id}: the move was replaced or called off`);
          asked.delete(id);
        }
      }
      if (asked.size === 0) break;
      if (Date.now() > deadline) throw new VmhostError('TIMEOUT', `Moves of ${[...asked.keys()].join(', ')} not done within ${WAIT_MS / 1000} s`, {});
      await new Promise((r) => setTimeout(r, 200));
    }
    return failed;
  }

  private async waitFor(id: string, what: string, done: (v: ClusterGroupView) => boolean): Promise<ClusterGroupView> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const v = await this.group(id);
      if (done(v)) {
        if (v.State === 'Failed') throw new VmhostError('CLUSTER_GROUP_FAILED', `${what}: the owner ${v.OwnerNode} failed to bring it online`, { group: v.Name });
        return v;
      }
      if (Date.now() > deadline) throw new VmhostError('TIMEOUT', `${what}: not reached within ${WAIT_MS / 1000} s (state ${v.State})`, { group: v.Name });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
