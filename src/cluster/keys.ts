// The cluster's state in etcd: one prefix, one key per fact, JSON values. What is bound to a
// node's lease disappears when the node stops renewing it — that is how etcd tells the
// cluster a node is dead, and how ownership ends with its owner.
//
//   /vmhost/cluster/config              {Name, Id, CreatedAt, MoveKey, Quorum} New-Cluster, Set-ClusterQuorum
//   /vmhost/cluster/nodes/<node>        {Name, Id, NodeWeight, Paused}         membership (New-Cluster -Node, Add-/Remove-ClusterNode)
//   /vmhost/cluster/alive/<node>        {Url, Pid, Since, Version} leased      the node's daemon is alive (State Up)
//   /vmhost/cluster/votes/<node>        {MemberId, MemberName}                 the etcd member the node votes through (quorum.ts)
//   /vmhost/cluster/leader              {Node}                     leased      the one node that places roles (election by txn)
//   /vmhost/cluster/groups/<vmId>       ClusterGroupRecord                     the role: priority, possible owners, desired state
//   /vmhost/cluster/owner/<vmId>        {Node}                     leased      ownership; written once per owner, so its mod revision is the fencing token
//   /vmhost/cluster/assign/<vmId>       {Node, By}                             the leader's placement of an ownerless role
//   /vmhost/cluster/state/<vmId>        {Node, State}                          what the owner last saw of the VM
//   /vmhost/cluster/move/<vmId>         {From, To, Id, By, Failed?}            a live move asked (Move-ClusterVirtualMachineRole, drain, failback)
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

/** `MoveKey`: the nodes' shared secret for live moves between them (base64, 32 bytes; cluster-move.ts). */
export interface ClusterConfig { Name: string; Id: string; CreatedAt: string; MoveKey?: string; Quorum?: QuorumConfig }
/** `DrainStatus`: the last drain's (Suspend-ClusterNode -Drain); `Drained`: the roles it moved away, which Resume-ClusterNode -Failback Immediate brings back. */
export interface NodeRecord { Name: string; Id: string; NodeWeight: number; Paused: boolean; DrainStatus?: DrainStatus; Drained?: string[] }
export type DrainStatus = 'NotInitiated' | 'InProgress' | 'Completed' | 'Failed';
/** `Version`: the daemon's vmhost version (with its --version-tag), as Get-ClusterNode shows it. */
export interface AliveRecord { Url: string; Pid: number; Since: string; Version?: string }

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
}

export function parseSnapshot(kvs: EtcdKv[], revision: number): Snapshot {
  const s: Snapshot = { revision, nodes: new Map(), alive: new Map(), votes: new Map(), groups: new Map(), owners: new Map(), assigns: new Map(), states: new Map(), moves: new Map() };
  for (const kv of kvs) {
    const rest = kv.key.slice(PREFIX.length);
    const slash = rest.indexOf('/');
    const [kind, name] = slash < 0 ? [rest, ''] : [rest.slice(0, slash), rest.slice(slash + 1)];
    let v: unknown;
    try { v = JSON.parse(kv.value); } catch { continue; } // not ours
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
  }
  return s;
}

/** Get-ClusterNode's State: a member whose daemon holds a live lease is Up, unless paused. */
export function nodeState(s: Snapshot, node: string): 'Up' | 'Down' | 'Paused' {
  if (!s.alive.has(node)) return 'Down';
  return s.nodes.get(node)?.Paused ? 'Paused' : 'Up';
}
