// The cluster's state in etcd: one prefix, one key per fact, JSON values. What is bound to a
// node's lease disappears when the node stops renewing it — that is how etcd tells the
// cluster a node is dead, and how ownership ends with its owner.
//
//   /vmhost/cluster/config              {Name, Id, CreatedAt, MoveKey, Quorum} New-Cluster, Set-ClusterQuorum
//   /vmhost/cluster/nodes/<node>        {Name, Id, NodeWeight, Paused}         membership (New-Cluster -Node, Add-/Remove-ClusterNode)
//   /vmhost/cluster/alive/<node>        {Url, Pid, Since, Version, MemoryCapacity} leased      the node's daemon is alive (State Up)
//   /vmhost/cluster/votes/<node>        {MemberId, MemberName}                 the etcd member the node votes through (quorum.ts)
//   /vmhost/cluster/leader              {Node}                     leased      the one node that places roles (election by txn)
//   /vmhost/cluster/groups/<vmId>       ClusterGroupRecord                     the role: priority, possible owners, desired state
//   /vmhost/cluster/owner/<vmId>        {Node}                     leased      ownership; written once per owner, so its mod revision is the fencing token
//   /vmhost/cluster/assign/<vmId>       {Node, By}                             the leader's placement of an ownerless role
//   /vmhost/cluster/state/<vmId>        {Node, State}                          what the owner last saw of the VM
//   /vmhost/cluster/move/<vmId>         {From, To, Id, By, Failed?}            a live move asked (Move-ClusterVirtualMachineRole, drain, failback)
//   /vmhost/cluster/preempt/<vmId>      {Node, Token, For, By}                 the leader asks the owner to turn a lower-priority role off for a higher one
import type { EtcdKv } from './etcd-client.ts';
import type { QuorumConfig, VoteRecord } from './quorum.ts';

export const PREFIX = '/vmhost/cluster/';
export const CONFIG_KEY = `${PREFIX}config`;
export const LEADER_KEY = `${PREFIX}leader`;
export const nodeKey = (n: string): string => `${PREFIX}nodes/${n}`;
export const aliveKey = (n: string): string => `${PREFIX}alive/${n}`;
export const voteKey = (n: string): string => `${PREFIX}votes/${n}`;
export const groupKey = (id: string): string => `${PREFIX}groups/${id}`;
export const ownerKey = (id: string): string => `${PREFIX}owner/${id}`;
export const assignKey = (id: string): string => `${PREFIX}assign/${id}`;
export const stateKey = (id: string): string => `${PREFIX}state/${id}`;
export const moveKey = (id: string): string => `${PREFIX}move/${id}`;
export const preemptKey = (id: string): string => `${PREFIX}preempt/${id}`;

/** `MoveKey`: the nodes' shared secret for live moves between them (base64, 32 bytes; cluster-move.ts). */
export interface ClusterConfig { Name: string; Id: string; CreatedAt: string; MoveKey?: string; Quorum?: QuorumConfig }
/** `DrainStatus`: the last drain's (Suspend-ClusterNode -Drain); `Drained`: the roles it moved away, which Resume-ClusterNode -Failback Immediate brings back. */
export interface NodeRecord { Name: string; Id: string; NodeWeight: number; Paused: boolean; DrainStatus?: DrainStatus; Drained?: string[] }
export type DrainStatus = 'NotInitiated' | 'InProgress' | 'Completed' | 'Failed';
/** `Version`: the daemon's vmhost version (with its --version-tag), as Get-ClusterNode shows it; `MemoryCapacity`: what the node's host may give its VMs (Get-VMHost's MemoryCapacity), for placement. */
export interface AliveRecord { Url: string; Pid: number; Since: string; Version?: string; MemoryCapacity?: number }

/** Hyper-V's group priorities: 3000 High, 2000 Medium (the default), 1000 Low, 0 No Auto Start. */
export type Priority = 0 | 1000 | 2000 | 3000;
export const PRIORITIES: readonly Priority[] = [3000, 2000, 1000, 0];

/** A role (cluster group of GroupType VirtualMachine). */
export interface ClusterGroupRecord {
  Name: string;
  VMId: string;
  Priority: Priority;
  /** Possible owners (Set-ClusterOwnerNode); empty = every node. */
  OwnerNodes: string[];
  /** Hyper-V's PersistentState: whether the role should be online (restarted after a failover). */
  Persistent: 'Online' | 'Offline';
  /** Remove-ClusterGroup asked: the owner hands the VM back to its own data dir, then the keys go. */
  Removing?: boolean;
  /** Roles sharing a class name avoid one node while another may take them (Hyper-V's soft anti-affinity). */
  AntiAffinityClassNames?: string[];
  /** The VM's startup memory: what placement must find free on a node (Update-ClusterVirtualMachineConfiguration refreshes it). */
  MemoryBytes?: number;
}

export type GroupState = 'Online' | 'Offline' | 'Failed' | 'Pending';
export interface StateRecord { Node: string; State: GroupState; Message?: string }
export interface OwnerRecord { Node: string }
export interface AssignRecord { Node: string; By: string }
/**
 * A live move of a running role from its owner `From` to node `To`; `Id` names this one move (its
 * ticket is bound to it). The source deletes it once the VM has left it; `Failed`: why it did not happen.
 */
export interface MoveRecord { From: string; To: string; Id: string; By: string; Failed?: string }
/** Preemption: the owner `Node` turns the role off (if it still owns it under `Token`) so that role `For` fits there. */
export interface PreemptRecord { Node: string; Token: number; For: string; By: string }

/** Everything under PREFIX, read in one range: what one pass of a node's loop works from. */
export interface Snapshot {
  revision: number;
  config?: ClusterConfig;
  nodes: Map<string, NodeRecord>;
  alive: Map<string, AliveRecord>;
  votes: Map<string, VoteRecord>;
  leader?: { node: string; modRevision: number };
  groups: Map<string, ClusterGroupRecord>;
  owners: Map<string, OwnerRecord & { modRevision: number; lease: string }>;
  assigns: Map<string, AssignRecord & { value: string }>;
  states: Map<string, StateRecord>;
  moves: Map<string, MoveRecord & { value: string }>;
  preempts: Map<string, PreemptRecord & { value: string }>;
}

export function emptySnapshot(revision: number): Snapshot {
  return { revision, nodes: new Map(), alive: new Map(), votes: new Map(), groups: new Map(), owners: new Map(), assigns: new Map(), states: new Map(), moves: new Map(), preempts: new Map() };
}

export function parseSnapshot(kvs: EtcdKv[], revision: number): Snapshot {
  const s = emptySnapshot(revision);
  for (const kv of kvs) applyKv(s, kv);
  return s;
}

function split(key: string): [kind: string, name: string] {
  const rest = key.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? [rest, ''] : [rest.slice(0, slash), rest.slice(slash + 1)];
}

/** One key's current value into the snapshot (a range's key, or a watch's PUT). */
export function applyKv(s: Snapshot, kv: EtcdKv): void {
  const [kind, name] = split(kv.key);
  let v: unknown;
  try { v = JSON.parse(kv.value); } catch { return; } // not ours
  if (kind === 'config') s.config = v as ClusterConfig;
  else if (kind === 'leader') s.leader = { node: (v as OwnerRecord).Node, modRevision: kv.modRevision };
  else if (kind === 'nodes') s.nodes.set(name, v as NodeRecord);
  else if (kind === 'alive') s.alive.set(name, v as AliveRecord);
  else if (kind === 'votes') s.votes.set(name, v as VoteRecord);
  else if (kind === 'groups') s.groups.set(name, v as ClusterGroupRecord);
  else if (kind === 'owner') s.owners.set(name, { ...(v as OwnerRecord), modRevision: kv.modRevision, lease: kv.lease });
  else if (kind === 'assign') s.assigns.set(name, { ...(v as AssignRecord), value: kv.value });
  else if (kind === 'state') s.states.set(name, v as StateRecord);
  else if (kind === 'move') s.moves.set(name, { ...(v as MoveRecord), value: kv.value });
  else if (kind === 'preempt') s.preempts.set(name, { ...(v as PreemptRecord), value: kv.value });
}

/** A key deleted (a watch's DELETE: removed, or its lease expired). */
export function dropKey(s: Snapshot, key: string): void {
  const [kind, name] = split(key);
  if (kind === 'config') delete s.config;
  else if (kind === 'leader') delete s.leader;
  else {
    const maps: Record<string, Map<string, unknown>> = {
      nodes: s.nodes, alive: s.alive, votes: s.votes, groups: s.groups, owner: s.owners, assign: s.assigns, state: s.states, move: s.moves, preempt: s.preempts,
    };
    maps[kind]?.delete(name);
  }
}

/** A copy whose maps later changes to `s` do not reach (the records themselves are replaced, never edited). */
export function cloneSnapshot(s: Snapshot): Snapshot {
  return {
    revision: s.revision, ...(s.config ? { config: s.config } : {}), ...(s.leader ? { leader: s.leader } : {}),
    nodes: new Map(s.nodes), alive: new Map(s.alive), votes: new Map(s.votes), groups: new Map(s.groups), owners: new Map(s.owners),
    assigns: new Map(s.assigns), states: new Map(s.states), moves: new Map(s.moves), preempts: new Map(s.preempts),
  };
}

/** Get-ClusterNode's State: a member whose daemon holds a live lease is Up, unless paused. */
export function nodeState(s: Snapshot, node: string): 'Up' | 'Down' | 'Paused' {
  if (!s.alive.has(node)) return 'Down';
  return s.nodes.get(node)?.Paused ? 'Paused' : 'Up';
}
