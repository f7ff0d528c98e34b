// Moving clustered roles live (issue 14): two vmhostd nodes of one cluster (support/cluster.ts),
// a running clustered test guest. Move-ClusterVirtualMachineRole takes it node1 → node2; the guest
// does not restart (a marker in its RAM-backed /tmp survives, its uptime goes on), the owner
// changes, and etcd's history shows the ownership key replaced by one PUT — never deleted, so at
// no instant did nobody own it. Suspend-ClusterNode node2 -Drain pauses node2 and moves the guest
// off live; Resume-ClusterNode node2 -Failback Immediate brings it back live. Move times are
// printed (the job, as the cmdlet waits for it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { clusteredQemuPids, startCluster, type TestCluster } from './support/cluster.ts';
import { EtcdClient, type WatchEvent } from '../src/cluster/etcd-client.ts';
import { ownerKey } from '../src/cluster/keys.ts';

interface GroupView { Name: string; Id: string; OwnerNode: string; State: string }
interface NodeView { Name: string; State: string; DrainStatus: string }
interface Vm { Name: string; State: string; IsClustered: boolean }

const NODES = ['node1', 'node2'];
const MARKER = `moved-${process.pid}`;

describe('live moves of a clustered VM: Move-ClusterVirtualMachineRole, drain, failback', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];

  before(async () => {
    cluster = await startCluster(NODES);
    t = cluster.t;
  });

  after(async () => {
    await cluster?.stop();
  });

  /** The guest is running on `node` with the marker it got before any move, and has been up longer than `since` seconds. */
  async function stillTheSameGuest(node: number, since: number): Promise<number> {
    const vm = (await cluster!.daemons[node]!.api('GET', '/api/v1/vms/app')).json as Vm;
    assert.deepEqual([vm.State, vm.IsClustered], ['Running', true]);
    const r = await t[node]!.sh('app', 'cat /tmp/marker; cut -d" " -f1 /proc/uptime');
    const [marker, uptime] = r.out.trim().split('\n');
    assert.equal(marker, MARKER, 'the guest was not restarted: its RAM still holds the marker');
    assert.ok(Number(uptime) > since, `uptime went on (${uptime} s after ${since} s)`);
    const other = (node + 1) % 2;
    assert.deepEqual((await cluster!.daemons[other]!.api('GET', '/api/v1/vms')).json, [], 'registered on its owner only');
    assert.deepEqual(await clusteredQemuPids(cluster!.daemons[other]!), [], 'no QEMU of it left on the other node');
    return Number(uptime);
  }

  async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    const r = await f();
    process.stdout.write(`# ${what}: ${Date.now() - t0} ms\n`);
    return r;
  }

  test('a running role moves node1 → node2 without a restart; a drain moves it off node2 and failback brings it back', async () => {
    const [t1, t2] = [t[0]!, t[1]!];
    await Promise.all([t1.ok('Enable-VMMigration'), t2.ok('Enable-VMMigration')]);
    await t1.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    await t1.ok('New-VM', '-Name', 'app', '-MemoryStartupBytes', '192MB', '-NewVHDPath', join(cluster!.shared, 'app.vhdx'), '-NewVHDSizeBytes', '16MB');
    const g = await t1.json<GroupView>('Add-ClusterVirtualMachineRole', '-VMName', 'app');
    assert.equal((await t2.json<GroupView>('Start-ClusterGroup', 'app')).State, 'Online');
    await t1.heartbeat('app');
    assert.equal((await t1.sh('app', `echo ${MARKER} > /tmp/marker`)).code, 0);
    let uptime = await stillTheSameGuest(0, 0);

    // etcd's history of the ownership key across the move.
    const etcd = new EtcdClient(cluster!.etcd.endpoints);
    const before = (await etcd.range(ownerKey(g.Id))).kvs[0]!;
    const moved = await timed('Move-ClusterVirtualMachineRole node1 -> node2', () => t2.json<GroupView>('Move-ClusterVirtualMachineRole', '-Name', 'app', '-Node', 'node2'));
    assert.deepEqual([moved.OwnerNode, moved.State], ['node2', 'Online']);
    uptime = await stillTheSameGuest(1, uptime);
    const now = (await etcd.range(ownerKey(g.Id))).kvs[0]!;
    assert.ok(now.modRevision > before.modRevision && now.lease !== before.lease, 'a new token, under node2\'s lease');
    const history: WatchEvent[] = [];
    const stop = new AbortController();
    await etcd.watch(ownerKey(g.Id), before.modRevision + 1, (e) => {
      history.push(e);
      if (e.kv.modRevision >= now.modRevision) stop.abort();
    }, stop.signal);
    assert.deepEqual(history.map((e) => [e.type, JSON.parse(e.kv.value) as unknown, e.kv.modRevision]), [['PUT', { Node: 'node2' }, now.modRevision]],
      'one txn replaced node1\'s key by node2\'s: it was never absent');
    const events = (await cluster!.daemons[1]!.api('GET', '/api/v1/events?limit=200')).json as { Code: string; Message: string }[];
    assert.ok(events.some((e) => e.Code === 'CLUSTER_GROUP_MOVED' && e.Message.includes(`${before.modRevision} -> ${now.modRevision}`)), 'node2 says which token replaced which');

    // Drain node2: Paused, its role goes live to the only other node.
    const drained = await timed('Suspend-ClusterNode node2 -Drain', () => t1.json<NodeView>('Suspend-ClusterNode', '-Name', 'node2', '-Drain'));
    assert.deepEqual([drained.State, drained.DrainStatus], ['Paused', 'Completed']);
    assert.equal((await t1.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!.OwnerNode, 'node1');
    uptime = await stillTheSameGuest(0, uptime);
    await t1.fails(/Node node2 is Paused/, 'Move-ClusterVirtualMachineRole', '-Name', 'app', '-Node', 'node2');

    // Resume with failback: Up again, and the role it had comes back live.
    const resumed = await timed('Resume-ClusterNode node2 -Failback Immediate', () => t1.json<NodeView>('Resume-ClusterNode', '-Name', 'node2', '-Failback', 'Immediate'));
    assert.equal(resumed.State, 'Up');
    assert.equal((await t1.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!.OwnerNode, 'node2');
    await stillTheSameGuest(1, uptime);
    assert.deepEqual((await cliTools(cluster!.daemons[1]!).json<Vm>('Get-VM', 'app')).State, 'Running');
  });
});
