// Operating a failover cluster (issue 14): two vmhostd nodes (support/cluster.ts) and one
// running clustered test guest. Drain on shutdown: SIGTERM to the owner's daemon — what
// `systemctl stop` sends — moves the guest live to the other node before the daemon exits 0
// (its RAM marker survives, its uptime goes on), and the node comes back Up, not Paused, when
// its daemon starts again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './support/cluster.ts';
import type { CliTools } from './support/cli-tools.ts';

interface GroupView { Name: string; Id: string; OwnerNode: string; State: string }
interface NodeView { Name: string; State: string; DrainStatus: string }
interface Vm { Name: string; State: string; IsClustered: boolean }

const NODES = ['node1', 'node2'];
const MARKER = `drained-${process.pid}`;

describe('cluster operations: drain on shutdown', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];

  before(async () => {
    cluster = await startCluster(NODES);
    t = cluster.t;
    await Promise.all(t.map((x) => x.ok('Enable-VMMigration')));
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    await t[0]!.ok('New-VM', '-Name', 'app', '-MemoryStartupBytes', '192MB', '-NewVHDPath', join(cluster.shared, 'app.vhdx'), '-NewVHDSizeBytes', '16MB');
    await t[0]!.ok('Add-ClusterVirtualMachineRole', '-VMName', 'app');
    assert.equal((await t[0]!.json<GroupView>('Start-ClusterGroup', 'app')).State, 'Online');
    await t[0]!.heartbeat('app');
  });

  after(async () => {
    await cluster?.stop();
  });

  /** Index of the node that owns the role now. */
  async function owner(): Promise<number> {
    const g = (await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    return NODES.indexOf(g.OwnerNode);
  }

  test('SIGTERM to the owner\'s daemon moves its running role live to the other node, then the daemon exits 0', async () => {
    const from = await owner();
    const to = 1 - from;
    const [src, dst] = [cluster!.daemons[from]!, cluster!.daemons[to]!];
    assert.equal((await t[from]!.sh('app', `echo ${MARKER} > /tmp/marker; cut -d" " -f1 /proc/uptime`)).code, 0);
    const uptime0 = Number((await t[from]!.sh('app', 'cut -d" " -f1 /proc/uptime')).out.trim());

    const t0 = Date.now();
    await src.terminate();
    process.stdout.write(`# SIGTERM to exit, with the drain: ${Date.now() - t0} ms (LOADED machine: not a performance claim)\n`);
    assert.equal(src.proc!.exitCode, 0, src.output);
    assert.match(src.output, /draining 1 clustered role\(s\) to other nodes: app/);
    assert.match(src.output, /drain Completed: 1 moved, 0 left to turn off/);

    const vm = (await dst.api('GET', '/api/v1/vms/app')).json as Vm;
    assert.deepEqual([vm.State, vm.IsClustered], ['Running', true]);
    const r = await t[to]!.sh('app', 'cat /tmp/marker; cut -d" " -f1 /proc/uptime');
    const [marker, uptime] = r.out.trim().split('\n');
    assert.equal(marker, MARKER, 'not restarted: the guest\'s RAM still holds the marker');
    assert.ok(Number(uptime) > uptime0, `its uptime went on (${uptime} s after ${uptime0} s)`);
    const g = (await t[to]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    assert.deepEqual([g.OwnerNode, g.State], [NODES[to], 'Online']);

    // Back: the node rejoins Up (the drain's pause was the shutdown's, not the node's).
    await src.launch();
    const n = (await t[to]!.json<NodeView[]>('Get-ClusterNode', NODES[from]!))[0]!;
    assert.equal(n.State, 'Up');
  });
});
