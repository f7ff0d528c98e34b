// Failover placement beyond priority (issue 14, item 2): anti-affinity and preemption, end to
// end. Three nodes, each daemon with a --memory-capacity: node1 runs 'a' (AntiAffinityClassNames
// sql) and 'high' (High, may run on node1 and node2); node2 runs 'low' (Low, node2 only) and
// holds 'b' (class sql, Off); node3 holds 'c' and 'd' (Off). node1 dies (daemon, QEMUs, etcd
// member). 'high' fits on node2 only once 'low' is off: the leader preempts 'low', node2 turns
// it off, and 'high' starts there; 'low' fits nowhere else and waits, Pending. 'a' would go to
// node2 (fewest roles, first by name) but node2 holds 'b' of its class: it starts on node3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { waitFor } from './support/daemon.ts';
import { clusteredQemuPids, startCluster, type TestCluster } from './support/cluster.ts';

interface GroupView { Name: string; OwnerNode: string; State: string; Priority: number; AntiAffinityClassNames: string[] }
interface HostEvent { Time: string; Code: string; Message: string }

const NODES = ['node1', 'node2', 'node3'];
const CAPACITY = ['1024MB', '448MB', '448MB'];

describe('cluster placement: anti-affinity and preemption', () => {
  let cluster: TestCluster | undefined;

  before(async () => {
    cluster = await startCluster(NODES, { args: (i) => ['--memory-capacity', CAPACITY[i]!] });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('node1 dies: High preempts Low on node2, the sql role avoids the node holding its class', async () => {
    const { t, daemons, shared } = cluster!;
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    const role = async (node: number, name: string, memory: string): Promise<void> => {
      await t[node]!.ok('New-VM', '-Name', name, '-MemoryStartupBytes', memory, '-NewVHDPath', join(shared, `${name}.vhdx`), '-NewVHDSizeBytes', '16MB');
      await t[node]!.ok('Add-ClusterVirtualMachineRole', '-VMName', name);
    };
    await role(0, 'a', '192MB');
    await role(0, 'high', '256MB');
    await role(1, 'low', '256MB');
    await role(1, 'b', '128MB');
    await role(2, 'c', '128MB');
    await role(2, 'd', '128MB');
    await t[0]!.ok('Set-ClusterParameter', '-InputObject', 'high', '-Name', 'Priority', '-Value', '3000');
    await t[0]!.ok('Set-ClusterParameter', '-InputObject', 'low', '-Name', 'Priority', '-Value', '1000');
    await t[0]!.ok('Set-ClusterOwnerNode', '-Group', 'high', '-Owners', 'node1,node2');
    await t[0]!.ok('Set-ClusterOwnerNode', '-Group', 'low', '-Owners', 'node2');
    for (const g of ['a', 'b']) await t[0]!.ok('Set-ClusterParameter', '-InputObject', g, '-Name', 'AntiAffinityClassNames', '-Value', 'sql');
    await t[0]!.fails(/Priority '5': 3000 \(High\)/, 'Set-ClusterParameter', '-InputObject', 'a', '-Name', 'Priority', '-Value', '5');
    assert.deepEqual((await t[1]!.json<GroupView[]>('Get-ClusterGroup')).map((g) => [g.Name, g.AntiAffinityClassNames]),
      [['a', ['sql']], ['b', ['sql']], ['c', []], ['d', []], ['high', []], ['low', []]]);
    for (const g of ['a', 'high', 'low']) assert.equal((await t[0]!.json<GroupView>('Start-ClusterGroup', g)).State, 'Online');

    assert.equal((await clusteredQemuPids(daemons[0]!)).length, 2);
    const killedAt = await cluster!.killNode(0);

    const d2 = daemons[1]!;
    const groups = async (): Promise<Map<string, GroupView>> => new Map(((await d2.api('GET', '/api/v1/cluster/groups')).json as GroupView[]).map((g) => [g.Name, g]));
    let seen = new Map<string, GroupView>();
    await waitFor('high and a Online on the survivors', 90_000, async () => {
      seen = await groups();
      return ['high', 'a'].every((n) => seen.get(n)?.State === 'Online' && seen.get(n)?.OwnerNode !== 'node1');
    });
    const at = Date.now() - killedAt;
    assert.equal(seen.get('high')!.OwnerNode, 'node2', 'High runs where its possible owners allow, in the room Low left');
    assert.equal(seen.get('a')!.OwnerNode, 'node3', 'the sql role avoided node2, which holds b of the same class');
    assert.equal(seen.get('low')!.State, 'Pending', 'Low, preempted, fits nowhere it may run: it waits');
    const vmsOn2 = ((await d2.api('GET', '/api/v1/vms')).json as { Name: string; State: string }[]).map((v) => [v.Name, v.State]);
    assert.deepEqual(vmsOn2.filter(([n]) => n !== 'b'), [['high', 'Running']], 'node2 no longer runs low');
    const events = ((await d2.api('GET', '/api/v1/events?limit=500')).json as HostEvent[]).filter((e) => e.Code === 'CLUSTER_GROUP_PREEMPTED');
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.match(events[0]!.Message, /Role 'low' \(priority 1000\) was turned off on node2 to make room for 'high'/);
    process.stdout.write(`# node1 killed: High on node2 after preempting Low, 'a' on node3, both Online ${at} ms after the kill\n`);
  });
});
