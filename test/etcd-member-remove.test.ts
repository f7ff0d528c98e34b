// Removing an etcd member (src/cluster/etcd-client.ts removeMember: dynamic quorum's clean leave,
// NodeWeight 0, Remove-ClusterNode, the dynamic witness) against real etcd 3.4 members. A leader
// removed outright stops at once and leaves the others leaderless for an election timeout or
// more; removeMember hands the leadership over first, so the member that takes it starts its
// election on the leader's word (raft's MsgTimeoutNow) and no member waits out a timeout. A
// follower is removed without touching the leadership.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient } from '../src/cluster/etcd-client.ts';
import { EtcdCluster, type EtcdMember } from './support/etcd.ts';
import { waitFor } from './support/daemon.ts';

interface Status { header: { member_id: string }; leader: string }

async function status(m: EtcdMember): Promise<Status> {
  const r = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(5000) });
  return (await r.json()) as Status;
}

/** What each member logged since `marks` (its log's length then). */
const since = (members: readonly EtcdMember[], marks: readonly number[]): string[] => members.map((m, i) => m.log.slice(marks[i]));

describe('etcd member removal', () => {
  let etcd: EtcdCluster;
  before(async () => { etcd = await EtcdCluster.start(3); });
  after(async () => { await etcd?.stop(); });

  test('the leader hands its leadership over before it is removed; a follower is removed with the leader unchanged', async () => {
    const client = new EtcdClient(etcd.endpoints);
    const ids = await Promise.all(etcd.members.map(async (m) => (await status(m)).header.member_id));
    const idOf = (m: EtcdMember): string => ids[etcd.members.indexOf(m)]!;
    const leaderId = (await status(etcd.members[0]!)).leader;
    const leader = ids.indexOf(leaderId);
    assert.ok(leader >= 0, `the leader ${leaderId} is one of ${ids.join(', ')}`);
    const rest = etcd.members.filter((_, i) => i !== leader);

    let marks = etcd.members.map((m) => m.log.length);
    await client.removeMember(leaderId);
    await waitFor('the removed leader stops (etcd\'s rule)', 30_000, async () => etcd.members[leader]!.proc.exitCode !== null);
    await client.put('after-leader-removal', 'x');
    const logs = since(etcd.members, marks).filter((_, i) => i !== leader);
    assert.ok(logs.some((l) => /received MsgTimeoutNow from [0-9a-f]+ and starts an election/.test(l)),
      `a remaining member campaigned on the leader's word:\n${logs.join('\n---\n').slice(-4000)}`);
    for (const l of logs) assert.doesNotMatch(l, /is starting a new election/, 'no member waited out an election timeout');
    const newLeader = (await status(rest[0]!)).leader;
    assert.ok(rest.some((m) => idOf(m) === newLeader), 'a remaining member leads');

    const follower = rest.find((m) => idOf(m) !== newLeader)!;
    marks = etcd.members.map((m) => m.log.length);
    await client.removeMember(idOf(follower));
    await waitFor('the removed follower stops', 30_000, async () => follower.proc.exitCode !== null);
    const stays = rest.find((m) => m !== follower)!;
    assert.equal((await status(stays)).leader, newLeader, 'the leader is unchanged');
    assert.doesNotMatch(stays.log.slice(marks[etcd.members.indexOf(stays)]), /MsgTimeoutNow|starting a new election/);
    await client.put('after-follower-removal', 'x');
  });
});
