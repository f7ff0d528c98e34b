// Quorum, mapped onto etcd (issue 14, item 4). etcd needs a majority of its voting members for
// every write, lease keepalive and linearizable read, so **a vote is an etcd member**: the
// cluster's quorum is the set of nodes that reach a majority of the members; a node outside it
// cannot renew its lease and turns its clustered VMs off itself (node-lease.ts), before the
// majority may restart them. Hyper-V's pieces, in those terms:
//   - NodeWeight / DynamicWeight: a node votes through its own member (the one serving its first
//     --cluster-etcd-endpoints endpoint, on its machine), recorded at join in `votes/<node>`.
//     DynamicWeight is 1 while that member is a voting member of etcd — what etcd counts;
//     NodeWeight 0 ((Get-ClusterNode n).NodeWeight = 0, spelled Set-ClusterParameter -InputObject
//     <node> -Name NodeWeight -Value 0) takes the vote away: etcd 3.4 cannot demote a member, so it
//     is removed and added back as a learner at the same peer URLs (the node's etcd service starts
//     it again on an empty data dir with --initial-cluster-state existing: a replica without a vote);
//     NodeWeight 1 lets the node's loop promote it once it has caught up (as for a returning node).
//   - Dynamic quorum: a node leaving cleanly (its daemon stopped, Remove-ClusterNode) removes its
//     member, so etcd's majority shrinks with the cluster and a sequential clean shutdown leaves
//     the last node running (a crashed node's member stays: removing it needs the majority anyway).
//     A node coming back whose member was removed adds it again as a learner (no vote, so the
//     majority is unchanged while it catches up) at the peer URLs it had; its etcd service starts the
//     member on an empty data dir with --initial-cluster-state existing; the node's loop promotes it
//     once etcd accepts (the learner has caught up): its vote is back.
//   - File-share witness (Set-ClusterQuorum -NodeAndFileShareMajority <dir>): a file cannot vote in
//     etcd; the witness's vote is one more etcd member run *from the witness directory* by the host
//     of that directory (a third place: the file server), which names it in `<dir>/witness.json`
//     ({"Member": "<etcd member name>"}). Set-ClusterQuorum checks that member votes in this etcd
//     and writes the lock file `<dir>/vmhost-witness.lock` (the cluster's Id: one cluster per
//     witness). 2 nodes + witness = 3 members: either node's death leaves 2 of 3.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { EtcdClient, EtcdMember } from './etcd-client.ts';
import { voteKey, type ClusterConfig, type Snapshot } from './keys.ts';

export type QuorumType = 'NodeMajority' | 'NodeAndFileShareMajority';
/** `PeerUrls`: where the witness member is reached — its name is empty while it is a learner not started yet (dynamic-witness.ts). */
export interface WitnessConfig { Path: string; Member: string; PeerUrls?: string[] }
export interface QuorumConfig { Type: QuorumType; Witness?: WitnessConfig }
/** `votes/<node>`: the etcd member through which the node votes, and where its peers reach it (to add it back). */
export interface VoteRecord { MemberId: string; MemberName: string; PeerUrls: string[]; Learner?: boolean }

export interface ClusterQuorumView { Cluster: string; QuorumResource: string; QuorumType: QuorumType; Voters: number; Majority: number }

export const WITNESS_FILE = 'witness.json';
export const WITNESS_LOCK = 'vmhost-witness.lock';

const sameUrl = (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/** The member serving `endpoint` (a node's first endpoint: its own member). */
export function memberAt(members: readonly EtcdMember[], endpoint: string): EtcdMember | undefined {
  return members.find((m) => m.clientUrls.some((u) => sameUrl(u, endpoint)));
}

/** Whether the node's recorded member is a voting member now. */
export function votes(s: Snapshot, members: readonly EtcdMember[], node: string): boolean {
  const v = s.votes.get(node);
  return v !== undefined && members.some((m) => m.id === v.MemberId && !m.isLearner);
}

export function quorumConfig(c: ClusterConfig): QuorumConfig {
  return c.Quorum ?? { Type: 'NodeMajority' };
}

/** The witness's etcd member, voting or not (by its name, or by its peer URLs while it is an unstarted learner). */
export function witnessMember(c: ClusterConfig, members: readonly EtcdMember[]): EtcdMember | undefined {
  const w = quorumConfig(c).Witness;
  if (!w) return undefined;
  return members.find((m) => m.name === w.Member) ?? members.find((m) => m.peerUrls.some((u) => w.PeerUrls?.includes(u)));
}

/** WitnessDynamicWeight: the witness's member votes now. */
export function witnessVotes(c: ClusterConfig, members: readonly EtcdMember[]): boolean {
  const m = witnessMember(c, members);
  return m !== undefined && !m.isLearner;
}

export function quorumView(c: ClusterConfig, members: readonly EtcdMember[]): ClusterQuorumView {
  const q = quorumConfig(c);
  const voters = members.filter((m) => !m.isLearner).length;
  return {
    Cluster: c.Name, QuorumType: q.Type, QuorumResource: q.Witness ? `File Share Witness (${q.Witness.Path})` : '',
    Voters: voters, Majority: Math.floor(voters / 2) + 1,
  };
}

/** Set-ClusterQuorum -NodeAndFileShareMajority <dir>: the witness member named in the directory must vote in this etcd. */
export async function witnessAt(etcd: EtcdClient, c: ClusterConfig, path: string): Promise<WitnessConfig> {
  let named: { Member?: unknown };
  try {
    named = JSON.parse(await readFile(join(path, WITNESS_FILE), 'utf8')) as { Member?: unknown };
  } catch (e) {
    throw new VmhostError('CLUSTER_WITNESS_INVALID', `File share witness ${path}: no readable ${WITNESS_FILE} naming its etcd member (${(e as Error).message})`, { path });
  }
  if (typeof named.Member !== 'string') throw new VmhostError('CLUSTER_WITNESS_INVALID', `File share witness ${path}: ${WITNESS_FILE} has no Member`, { path });
  const m = (await etcd.members()).find((x) => x.name === named.Member);
  if (!m || m.isLearner) {
    throw new VmhostError('CLUSTER_WITNESS_INVALID', `File share witness ${path}: its etcd member '${named.Member}' is not a voting member of this cluster's etcd (start it from that directory first)`, { path });
  }
  const lock = await readFile(join(path, WITNESS_LOCK), 'utf8').catch(() => undefined);
  if (lock !== undefined && lock.trim() !== c.Id) throw new VmhostError('CLUSTER_WITNESS_INVALID', `File share witness ${path} is held by another cluster (${lock.trim()})`, { path });
  await writeFile(join(path, WITNESS_LOCK), `${c.Id}\n`);
  return { Path: path, Member: named.Member, PeerUrls: m.peerUrls };
}

/**
 * Dynamic quorum: this node's vote leaves with it. Its member is removed unless it is the last
 * voter; the removed member stops itself (etcd's rule), and the others' majority is counted
 * without it from then on. Answers what happened, for the node's event.
 */
export async function giveUpVote(etcd: EtcdClient, s: Snapshot, node: string): Promise<string | undefined> {
  const v = s.votes.get(node);
  if (!v) return undefined;
  const members = await etcd.members();
  if (!members.some((m) => m.id === v.MemberId)) return undefined;
  const voters = members.filter((m) => !m.isLearner).length;
  if (voters <= 1) return `node ${node} keeps its vote: its etcd member ${v.MemberName} is the last one`;
  await etcd.removeMember(v.MemberId);
  return `node ${node}'s vote removed (etcd member ${v.MemberName}): ${voters - 1} vote(s) left, majority ${Math.floor((voters - 1) / 2) + 1}`;
}

/**
 * At join: the member serving this node's first endpoint is its vote. A node whose vote was
 * given up (its recorded member is gone from etcd) adds it back as a learner at the same peer URLs.
 */
export async function claimVote(etcd: EtcdClient, s: Snapshot, node: string): Promise<{ vote: VoteRecord; said: string } | undefined> {
  const members = await etcd.members();
  const own = memberAt(members, etcd.endpoints[0]!);
  if (own) return { vote: { MemberId: own.id, MemberName: own.name, PeerUrls: own.peerUrls }, said: `voting through etcd member ${own.name}` };
  const had = s.votes.get(node);
  if (!had || members.some((m) => m.id === had.MemberId)) return undefined;
  const back = members.find((m) => m.peerUrls.some((u) => had.PeerUrls.includes(u)));
  const id = back?.id ?? await etcd.addLearner(had.PeerUrls);
  return {
    vote: { ...had, MemberId: id, Learner: true },
    said: `its etcd member ${had.MemberName} added back as a learner (${had.PeerUrls.join(', ')}): start it on an empty data dir with --initial-cluster-state existing; the vote returns once it has caught up`,
  };
}

/** The node's loop: a learner it added back gets its vote once etcd lets it (caught up). True when promoted now. */
export async function promoteVote(etcd: EtcdClient, s: Snapshot, node: string): Promise<boolean> {
  const v = s.votes.get(node);
  if (!v?.Learner || s.nodes.get(node)?.NodeWeight === 0) return false; // NodeWeight 0: a replica that does not vote

  const m = (await etcd.members()).find((x) => x.id === v.MemberId);
  if (m?.isLearner && !(await etcd.promote(m.id).then(() => true, () => false))) return false;
  const { Learner: _, ...voting } = v;
  await etcd.put(voteKey(node), JSON.stringify({ ...voting, MemberName: m?.name || v.MemberName } satisfies VoteRecord));
  return m !== undefined;
}

/**
 * (Get-ClusterNode n).NodeWeight = 0: the node's member stops voting — removed and added back as
 * a learner at its peer URLs (etcd 3.4 has no demotion). Refused for the last vote, and while
 * another learner catches up (etcd 3.4 takes one learner at a time). The vote record it answers
 * names the learner; NodeWeight 1 needs nothing here: the loop promotes it (promoteVote).
 */
export async function demoteVote(etcd: EtcdClient, s: Snapshot, node: string): Promise<{ vote?: VoteRecord; said: string }> {
  const v = s.votes.get(node);
  const members = await etcd.members();
  const m = v && members.find((x) => x.id === v.MemberId);
  if (!v || !m || m.isLearner) return { said: `node ${node} has no vote to take away` };
  const voters = members.filter((x) => !x.isLearner).length;
  if (voters <= 1) throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${node}'s etcd member ${m.name} is the cluster's last vote`, { node });
  if (members.some((x) => x.isLearner)) {
    throw new VmhostError('CLUSTER_INVALID_OPERATION', `Node ${node}'s vote cannot be taken away now: etcd member ${members.find((x) => x.isLearner)!.name || '(unstarted)'} is a learner catching up, and etcd 3.4 takes one at a time`, { node });
  }
  await etcd.removeMember(m.id);
  const id = await etcd.addLearner(m.peerUrls);
  return {
    vote: { ...v, MemberId: id, PeerUrls: m.peerUrls, Learner: true },
    said: `node ${node}'s etcd member ${m.name} no longer votes (${voters - 1} vote(s) left, majority ${Math.floor((voters - 1) / 2) + 1}): it is a learner now — start it again on an empty data dir with --initial-cluster-state existing`,
  };
}
