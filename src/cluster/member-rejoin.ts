// A node's etcd member coming back after its node left cleanly (dynamic quorum, quorum.ts): the
// leave removed the member from etcd, and the member stopped itself (etcd's rule). Started again
// on its old data dir it would be refused by the others ("the member has been permanently
// removed"); it must join as a new member: added as a learner at its peer URL (vmhostd does that
// at its start, claimVote — or this, if etcd starts first), on an empty data dir, with
// --initial-cluster-state existing and the members as they are now. That is what this does,
// run by the node's etcd service before etcd (packaging/systemd/etcd.service.d, through
// bin/vmhost-etcd-rejoin), so a node is a machine that boots back into the cluster by itself:
//   - the member is in etcd under its own name: nothing to do (its data dir is its own);
//   - it was added back and never started (no name yet), or it is gone: join as new.
// The old data dir is moved aside, never deleted: an admin can still look at it.
import { rename } from 'node:fs/promises';
import { EtcdClient, type EtcdMember } from './etcd-client.ts';

export interface MemberIdentity { name: string; peerUrl: string }
export type RejoinPlan =
  | { action: 'start' }
  | { action: 'rejoin'; addLearner: boolean; initialCluster: string };

/** Pure: what the member must do, from etcd's member list as another member sees it. */
export function planRejoin(members: readonly EtcdMember[], self: MemberIdentity): RejoinPlan {
  const me = members.find((m) => m.peerUrls.includes(self.peerUrl));
  if (me && me.name === self.name) return { action: 'start' };
  // Members that have started have names; one added and never started is only this one (or a peer's, which it cannot list).
  const others = members.filter((m) => m !== me && m.name !== '');
  return { action: 'rejoin', addLearner: me === undefined, initialCluster: [...others.map((m) => `${m.name}=${m.peerUrls[0]}`), `${self.name}=${self.peerUrl}`].join(',') };
}

export interface RejoinResult {
  plan: RejoinPlan;
  /** etcd's settings for this start (its ETCD_* environment variables); empty when it starts as it is. */
  env: Record<string, string>;
  said: string;
}

/**
 * Ask the other members (`endpoints`: their client URLs) and prepare this member's start: when it
 * must join as new, add it as a learner if nobody has, and move its data dir aside. Unreachable
 * peers: start as it is (etcd itself then says what is wrong).
 */
export async function rejoinMember(self: MemberIdentity & { dataDir: string; endpoints: readonly string[] }): Promise<RejoinResult> {
  let members: EtcdMember[];
  const etcd = new EtcdClient(self.endpoints);
  try {
    members = await etcd.members();
  } catch (e) {
    return { plan: { action: 'start' }, env: {}, said: `no other member answered (${(e as Error).message}): ${self.name} starts on its data dir as it is` };
  }
  const plan = planRejoin(members, self);
  if (plan.action === 'start') return { plan, env: {}, said: `${self.name} is a member of etcd: it starts on its data dir` };
  if (plan.addLearner) await etcd.addLearner([self.peerUrl]);
  const aside = `${self.dataDir}.removed-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const moved = await rename(self.dataDir, aside).then(() => true, (e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return false; throw e; });
  return {
    plan,
    env: { ETCD_INITIAL_CLUSTER_STATE: 'existing', ETCD_INITIAL_CLUSTER: plan.initialCluster },
    said: `${self.name} was removed from etcd (its node left cleanly): it joins again as a new member${plan.addLearner ? ' (added as a learner here)' : ''}`
      + ` of ${plan.initialCluster}${moved ? `; its old data dir is ${aside}` : ''}`,
  };
}
