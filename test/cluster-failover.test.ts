// Failover clustering on etcd, end to end: three vmhostd nodes, each with its own member of a
// 3-member etcd cluster (test/support/etcd.ts), and a shared folder all of them reach. Two
// clustered test guests (disks in the shared folder) run on node1, one High priority and one
// Low; node1 dies — its daemon, its QEMUs and its etcd member are SIGKILLed — and the surviving
// nodes see it Down when its lease expires, then restart both VMs elsewhere, the High one
// first. Detection (kill → Down) and restart (Down → Online) are printed separately. The
// membership and role cmdlets are driven through the CLI; the timing polls use the API. Then
// etcd loses its majority: the owner, unable to renew its lease, turns its clustered VMs off itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { EtcdCluster } from './support/etcd.ts';
import { clusteredQemuPids, startCluster, type TestCluster } from './support/cluster.ts';

interface NodeView { Name: string; State: string; NodeWeight: number; DynamicWeight: number }
interface GroupView { Name: string; OwnerNode: string; State: string; Priority: number }
interface Vm { Name: string; State: string; IsClustered: boolean; Heartbeat: string }

const NODES = ['node1', 'node2', 'node3'];

describe('failover cluster of three nodes on etcd', () => {
  let cluster: TestCluster | undefined;
  let etcd: EtcdCluster;
  let shared = '';
  let daemons: TestDaemon[] = [];
  let t: CliTools[] = [];

  before(async () => {
    cluster = await startCluster(NODES);
    ({ etcd, shared, daemons, t } = cluster);
  });

  after(async () => {
    await cluster?.stop();
  });

  test('New-Cluster, roles on node1, node1 killed: its VMs restart on the others, High before Low', async () => {
    const [t1, t2] = [t[0]!, t[1]!];
    await t1.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    const nodes = await t2.json<NodeView[]>('Get-ClusterNode');
    assert.deepEqual(nodes.map((n) => [n.Name, n.State, n.NodeWeight, n.DynamicWeight]), NODES.map((n) => [n, 'Up', 1, 1]));
    assert.equal((await t2.json<{ Name: string }>('Get-Cluster')).Name, 'hv');
    await t1.fails(/already exists/, 'New-Cluster', '-Name', 'hv2', '-Node', 'node1');

    // Two guests whose disks are on the shared storage; a disk elsewhere is refused.
    await t1.ok('New-VM', '-Name', 'local', '-MemoryStartupBytes', '128MB', '-NewVHDPath', join(daemons[0]!.dataDir, 'local.vhdx'), '-NewVHDSizeBytes', '16MB');
    await t1.fails(/not in the cluster's shared folder/, 'Add-ClusterVirtualMachineRole', '-VMName', 'local');
    for (const vm of ['db', 'web']) {
      await t1.ok('New-VM', '-Name', vm, '-MemoryStartupBytes', '192MB', '-NewVHDPath', join(shared, `${vm}.vhdx`), '-NewVHDSizeBytes', '16MB');
      const g = await t1.json<GroupView>('Add-ClusterVirtualMachineRole', '-VMName', vm);
      assert.deepEqual([g.Name, g.OwnerNode, g.State, g.Priority], [vm, 'node1', 'Offline', 2000]);
    }
    await t1.ok('Set-ClusterParameter', '-InputObject', 'db', '-Name', 'Priority', '-Value', '3000');
    await t1.ok('Set-ClusterParameter', '-InputObject', 'web', '-Name', 'Priority', '-Value', '1000');
    // web may not go to node3: it must land on node2.
    await t1.ok('Set-ClusterOwnerNode', '-Group', 'web', '-Owners', 'node1,node2');
    // The role is started from another node: node1, the owner, starts the VM.
    for (const vm of ['db', 'web']) assert.equal((await t2.json<GroupView>('Start-ClusterGroup', vm)).State, 'Online');
    const onNode1 = await t1.json<Vm[]>('Get-VM');
    assert.deepEqual(onNode1.map((v) => [v.Name, v.State, v.IsClustered]), [['db', 'Running', true], ['local', 'Off', false], ['web', 'Running', true]]);
    assert.deepEqual((await daemons[1]!.api('GET', '/api/v1/vms')).json, [], 'a clustered VM is registered on its owner only');
    await t1.fails(/clustered role: remove the role first/, 'Remove-VM', 'web', '-Force');

    // Node death: the daemon, its QEMUs and its etcd member.
    assert.equal((await clusteredQemuPids(daemons[0]!)).length, 2);
    const killedAt = await cluster!.killNode(0);

    const d2 = daemons[1]!;
    const node1 = async (): Promise<string> => ((await d2.api('GET', '/api/v1/cluster/nodes?Name=node1')).json as NodeView[])[0]!.State;
    await waitFor('node1 Down', 30_000, async () => (await node1()) === 'Down');
    const downAt = Date.now();
    const online = new Map<string, { at: number; owner: string }>();
    await waitFor('both roles Online elsewhere', 60_000, async () => {
      for (const g of (await d2.api('GET', '/api/v1/cluster/groups')).json as GroupView[]) {
        if (g.State === 'Online' && g.OwnerNode !== 'node1' && !online.has(g.Name)) online.set(g.Name, { at: Date.now(), owner: g.OwnerNode });
      }
      return online.size === 2;
    });
    const db = online.get('db')!, web = online.get('web')!;
    process.stdout.write(`# failover: detection ${downAt - killedAt} ms (lease TTL 4 s), restart ${db.at - downAt} ms (High 'db' on ${db.owner}), ${web.at - downAt} ms (Low 'web' on ${web.owner})\n`);
    assert.ok(db.at <= web.at, 'the High priority role is Online no later than the Low one');
    assert.equal(web.owner, 'node2', 'possible owners are respected');

    // The guest really runs on its new owner, as a clustered VM.
    const owner = daemons[NODES.indexOf(db.owner)]!;
    await cliTools(owner).heartbeat('db');
    const there = await cliTools(owner).json<Vm>('Get-VM', 'db');
    assert.deepEqual([there.State, there.IsClustered], ['Running', true]);
    const nodesAfter = await t[2]!.json<NodeView[]>('Get-ClusterNode');
    // A crashed node's etcd member still counts in etcd's majority: its vote goes only when it leaves cleanly or is removed (src/cluster/quorum.ts).
    assert.deepEqual(nodesAfter.map((n) => [n.Name, n.State, n.DynamicWeight]), [['node1', 'Down', 1], ['node2', 'Up', 1], ['node3', 'Up', 1]]);

    // The role's lifecycle from another node: offline (saved), then removed — an ordinary VM of its owner.
    const webOwner = daemons[1]!;
    assert.equal((await t[2]!.json<GroupView>('Stop-ClusterGroup', 'web')).State, 'Offline');
    await t[2]!.fails(/Node node2 owns (db, )?web: move or remove those roles first/, 'Remove-ClusterNode', 'node2');
    await t[2]!.ok('Remove-ClusterGroup', 'web');
    const webVm = await cliTools(webOwner).json<Vm>('Get-VM', 'web');
    assert.deepEqual([webVm.State, webVm.IsClustered], ['Saved', false]);
    await t[2]!.ok('Remove-ClusterNode', 'node1');
    assert.equal((await t[2]!.json<{ Voters: number }>('Get-ClusterQuorum')).Voters, 2, 'the removed node\'s etcd member is gone with it');
    assert.deepEqual((await t[2]!.json<GroupView[]>('Get-ClusterGroup')).map((g) => g.Name), ['db']);
    assert.deepEqual((await t[2]!.json<NodeView[]>('Get-ClusterNode')).map((n) => n.Name), ['node2', 'node3']);

    // etcd loses its majority (a second member dies): no node can renew its lease, so each stops
    // its clustered VMs itself before the lease could expire — nobody may own them any more.
    const lostAt = Date.now();
    await etcd.kill(1);
    await waitFor('the clustered VM stopped by its owner', 30_000, async () =>
      !((await owner.api('GET', '/api/v1/vms')).json as Vm[]).some((v) => v.Name === 'db'));
    const events = (await owner.api('GET', '/api/v1/events?limit=200')).json as { Code: string }[];
    assert.ok(events.some((e) => e.Code === 'CLUSTER_NODE_ISOLATED'), 'the owner says why');
    assert.deepEqual(await clusteredQemuPids(owner), []);
    process.stdout.write(`# etcd majority lost: the owner turned its VMs off ${Date.now() - lostAt} ms later (lease TTL 4 s, safety 1 s)\n`);
  });
});
