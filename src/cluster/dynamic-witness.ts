// The dynamic witness (Get-Cluster's WitnessDynamicWeight): the file-share witness's vote is
// switched on or off so the total number of votes stays odd — an even total has no tie-breaker
// (a 50 % split stops everyone) and needs one more vote for its majority than the odd total
// below it. Node votes change as nodes leave and return cleanly (dynamic quorum, quorum.ts) and
// with NodeWeight; a crashed node's member still votes, so a death does not move the witness
// (and a 2-node + witness cluster keeps its 3 votes: either node's death leaves 2 of 3).
// In etcd terms (the witness is an etcd member run from the witness directory, quorum.ts): off is
// the member removed and added back as a learner at its peer URLs — the witness's host starts it
// again on an empty data dir with --initial-cluster-state existing, as for a returning node —
// and on is the learner promoted once it has caught up. The cluster's leader does it (cluster-node.ts).
import type { EtcdClient, EtcdMember } from './etcd-client.ts';
import type { ClusterConfig } from './keys.ts';
import { witnessMember } from './quorum.ts';

export type WitnessChange = 'on' | 'off' | undefined;

/** Pure: the change that keeps the total odd — the witness votes exactly when the node votes are even. */
export function witnessChange(nodeVotes: number, witnessVotes: boolean, learnerElsewhere: boolean): WitnessChange {
  const want = nodeVotes % 2 === 0 && nodeVotes > 0;
  if (want && !witnessVotes) return 'on';
  // etcd 3.4 takes one learner at a time: while a node's member catches up the witness keeps its vote.
  if (!want && witnessVotes && nodeVotes > 0 && !learnerElsewhere) return 'off';
  return undefined;
}

/** One look and at most one change; answers what was done (for the leader's event), or nothing. */
export async function balanceWitness(etcd: EtcdClient, c: ClusterConfig): Promise<string | undefined> {
  if (!c.Quorum?.Witness) return undefined;
  const members = await etcd.members();
  const w = witnessMember(c, members);
  const peers = c.Quorum.Witness.PeerUrls;
  if (!w) {
    // Switched off, but etcd refused adding it back as a learner (or someone removed it): add it back now, when it can.
    if (!peers || members.some((m) => m.isLearner)) return undefined;
    await etcd.addLearner(peers);
    return `the file share witness's etcd member ${c.Quorum.Witness.Member} added back as a learner (${peers.join(', ')}): its host starts it on an empty data dir with --initial-cluster-state existing`;
  }
  const nodeVotes = members.filter((m: EtcdMember) => m.id !== w.id && !m.isLearner).length;
  const change = witnessChange(nodeVotes, !w.isLearner, members.some((m) => m.isLearner && m.id !== w.id));
  if (change === 'on') {
    if (!(await etcd.promote(w.id).then(() => true, () => false))) return undefined; // not caught up yet (or not started): next pass
    return `the file share witness votes again (etcd member ${c.Quorum.Witness.Member}): ${nodeVotes} node vote(s) + the witness`;
  }
  if (change === 'off') {
    await etcd.removeMember(w.id);
    await etcd.addLearner(w.peerUrls);
    return `the file share witness no longer votes (${nodeVotes} node votes are odd): its etcd member ${c.Quorum.Witness.Member} is a learner now — its host starts it again on an empty data dir with --initial-cluster-state existing`;
  }
  return undefined;
}
