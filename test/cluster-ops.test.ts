// Operating a failover cluster (issue 14): two vmhostd nodes (support/cluster.ts) and one
// running clustered test guest.
// - Drain on shutdown: SIGTERM to the owner's daemon — what `systemctl stop` sends — moves the
//   guest live to the other node before the daemon exits 0 (its RAM marker survives, its uptime
//   goes on), and the node comes back Up, not Paused, when its daemon starts again.
// - Test-Cluster: every test passes on the healthy pair; a switch on one node only fails the
//   "same switches" test of the other.
// - Get-ClusterLog: both nodes' events in etcd, merged by time; -Node and -TimeSpan filter.
// - Get-ClusterResource / Get-ClusterParameter / Update-ClusterVirtualMachineConfiguration.
// - VM monitoring: a monitored process killed in the guest restarts the VM in place (the guest
//   reboots: its RAM marker is gone); killed again, the role fails over to the other node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startCluster, withAppRole, type TestCluster } from './support/cluster.ts';
import type { CliTools } from './support/cli-tools.ts';
import { waitFor } from './support/daemon.ts';

interface GroupView { Name: string; Id: string; OwnerNode: string; State: string }
interface NodeView { Name: string; State: string; DrainStatus: string; DynamicWeight: number }
interface Vm { Name: string; State: string; IsClustered: boolean }
interface Check { Category: string; Test: string; Node: string; Result: string; Detail: string }
interface LogLine { Node: string; Time: string; Code: string; Seq: number }
interface HostEvent { Seq: number; Code: string; VMName?: string }

const NODES = ['node1', 'node2'];
const MARKER = `drained-${process.pid}`;

describe('cluster operations: drain on shutdown, Test-Cluster, Get-ClusterLog, resources, VM monitoring', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];

  before(async () => {
    cluster = await startCluster(NODES);
    t = cluster.t;
    await withAppRole(cluster, NODES);
  });

  after(async () => {
    await cluster?.stop();
  });

  /** A test whose failure ends with both nodes' and both etcd members' last words (a clean leave that takes the other node down says so). */
  function explainedTest(name: string, body: () => Promise<void>): void {
    test(name, async () => {
      try {
        await body();
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await cluster?.diagnosis() ?? ''}`, { cause: e });
      }
    });
  }

  /** Index of the node that owns the role now. */
  async function owner(): Promise<number> {
    const g = (await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    return NODES.indexOf(g.OwnerNode);
  }

  explainedTest('SIGTERM to the owner\'s daemon moves its running role live to the other node, then the daemon exits 0', async () => {
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
    const log = await t[to]!.json<LogLine[]>('Get-ClusterLog', '-Node', NODES[from]!);
    assert.ok(log.some((l) => l.Code === 'CLUSTER_NODE_SHUTDOWN_DRAIN'), 'the stopped node\'s last events are in the cluster log');

    const vm = (await dst.api('GET', '/api/v1/vms/app')).json as Vm;
    assert.deepEqual([vm.State, vm.IsClustered], ['Running', true]);
    const r = await t[to]!.sh('app', 'cat /tmp/marker; cut -d" " -f1 /proc/uptime');
    const [marker, uptime] = r.out.trim().split('\n');
    assert.equal(marker, MARKER, 'not restarted: the guest\'s RAM still holds the marker');
    assert.ok(Number(uptime) > uptime0, `its uptime went on (${uptime} s after ${uptime0} s)`);
    // The new owner reports the role Online on its loop's next pass after the VM resumed there (Pending until then).
    await waitFor(`app Online on ${NODES[to]}`, 30_000, async () => {
      const g = (await t[to]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
      assert.equal(g.OwnerNode, NODES[to]);
      return g.State === 'Online';
    });

    // Back: the node rejoins Up (the drain's pause was the shutdown's, not the node's).
    await src.launch();
    const n = (await t[to]!.json<NodeView[]>('Get-ClusterNode', NODES[from]!))[0]!;
    assert.equal(n.State, 'Up');
    // Its vote left with it (dynamic quorum, src/cluster/quorum.ts): its etcd member was removed; the
    // node added it back as a learner, the member starts on an empty data dir (what the node's etcd
    // unit does) and the node promotes it once caught up.
    await cluster!.etcd.rejoin(from);
    await waitFor(`${NODES[from]} votes again`, 60_000, async () => (await t[to]!.json<NodeView[]>('Get-ClusterNode', NODES[from]!))[0]!.DynamicWeight === 1);
  });
  explainedTest('Test-Cluster passes on two healthy nodes; a switch on one node only fails the other\'s switch test', async () => {
    const checks = await t[0]!.json<Check[]>('Test-Cluster');
    const byTest = (name: string): string[] => checks.filter((c) => c.Test === name).map((c) => `${c.Node}:${c.Result}`).sort();
    for (const name of ['Node answers', 'etcd reachable and healthy', 'Clock offset', 'Shared folder visible and writable', 'Same virtual switches', 'Same vmhost version']) {
      assert.deepEqual(byTest(name), NODES.map((n) => `${n}:Pass`), `${name}: ${JSON.stringify(checks.filter((c) => c.Test === name))}`);
    }
    assert.match(checks.find((c) => c.Test === 'Clock offset')!.Detail, /^[+-]\d+ ms ± \d+ ms from node1's clock$/);

    await t[0]!.ok('New-VMSwitch', '-Name', 'only-here', '-SwitchType', 'Private');
    try {
      const again = await t[0]!.json<Check[]>('Test-Cluster');
      assert.deepEqual(again.filter((c) => c.Test === 'Same virtual switches').map((c) => `${c.Node}:${c.Result}`).sort(), ['node1:Pass', 'node2:Fail']);
      assert.match(again.find((c) => c.Test === 'Same virtual switches' && c.Node === 'node2')!.Detail, /only-here \(Private\) on node1/);
    } finally {
      await t[0]!.ok('Remove-VMSwitch', '-Name', 'only-here', '-Force');
    }
  });

  explainedTest('Get-ClusterLog merges both nodes\' events by time; -Node and -TimeSpan filter them', async () => {
    const all = await t[1]!.json<LogLine[]>('Get-ClusterLog');
    for (const n of NODES) assert.ok(all.some((l) => l.Node === n && l.Code === 'CLUSTER_NODE_JOINED'), `${n} joined, in the log`);
    assert.deepEqual(all.map((l) => l.Time), [...all.map((l) => l.Time)].sort(), 'oldest first');
    const one = await t[1]!.json<LogLine[]>('Get-ClusterLog', '-Node', 'node1');
    assert.ok(one.length > 0 && one.every((l) => l.Node === 'node1'));
    const recent = await t[1]!.json<LogLine[]>('Get-ClusterLog', '-TimeSpan', '60');
    assert.ok(recent.length > 0 && recent.every((l) => Date.parse(l.Time) >= Date.now() - 3_600_000));
    await t[1]!.fails(/cluster node 'node9' was not found/, 'Get-ClusterLog', '-Node', 'node9');
  });

  explainedTest('Get-ClusterResource, Get-ClusterParameter and Update-ClusterVirtualMachineConfiguration', async () => {
    const g = (await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    const res = await t[1]!.json<{ Name: string; ResourceType: string; OwnerGroup: string; OwnerNode: string; State: string }[]>('Get-ClusterResource', '-VMId', g.Id);
    assert.deepEqual(res.map((r) => [r.Name, r.ResourceType, r.OwnerGroup, r.OwnerNode, r.State]), [
      ['Virtual Machine app', 'Virtual Machine', 'app', g.OwnerNode, 'Online'],
      ['Virtual Machine Configuration app', 'Virtual Machine Configuration', 'app', g.OwnerNode, 'Online'],
    ]);
    const params = await t[1]!.json<{ Name: string; Value: unknown }[]>('Get-ClusterParameter', '-InputObject', 'Virtual Machine Configuration app');
    assert.deepEqual(params.map((p) => [p.Name, p.Value]), [['VmID', g.Id], ['ConfigStoreRootPath', join(cluster!.shared, 'vms', g.Id)]]);
    const vmId = await t[1]!.json<{ Value: unknown }[]>('Get-ClusterParameter', '-InputObject', 'Virtual Machine app', '-Name', 'VmID');
    assert.deepEqual(vmId.map((p) => p.Value), [g.Id]);
    const updated = await t[1]!.json<{ Name: string }>('Update-ClusterVirtualMachineConfiguration', '-Name', 'app');
    assert.equal(updated.Name, 'Virtual Machine Configuration app');
    await t[1]!.fails(/cluster resource 'nope' was not found/, 'Get-ClusterResource', 'nope');
  });

  explainedTest('a monitored guest process that stops restarts the VM in place, and the next stop fails the role over', async () => {
    const home = await owner();
    const other = 1 - home;
    const d = cluster!.daemons;
    const events = async (i: number): Promise<HostEvent[]> => (await d[i]!.api('GET', '/api/v1/events?limit=1000')).json as HostEvent[];
    const lastSeq = async (i: number): Promise<number> => (await events(i)).at(-1)?.Seq ?? 0;
    /** Wait for `code` on node i after event `since`. */
    const event = (i: number, code: string, since: number): Promise<HostEvent> => waitFor(`${code} on ${NODES[i]}`, 90_000, async () => (await events(i)).find((e) => e.Seq > since && e.Code === code));
    const startService = async (i: number): Promise<void> => {
      const r = await t[i]!.sh('app', "printf '#!/bin/sh\\nwhile :; do sleep 1; done\\n' > /tmp/appsvc && chmod +x /tmp/appsvc && (setsid /tmp/appsvc </dev/null >/dev/null 2>&1 &) && sleep 0.2 && pidof appsvc");
      assert.equal(r.code, 0, r.out);
    };

    await t[home]!.heartbeat('app');
    await startService(home);
    assert.equal((await t[home]!.sh('app', `echo ${MARKER} > /tmp/marker`)).code, 0);
    let since = await lastSeq(home);
    const added = await t[other]!.json<{ Name: string; VMName: string }[]>('Add-ClusterVMMonitoredItem', '-VirtualMachine', 'app', '-Service', 'appsvc');
    assert.deepEqual(added.map((i) => [i.Name, i.VMName]), [['appsvc', 'app']]);
    assert.deepEqual((await t[home]!.json<{ Name: string }[]>('Get-ClusterVMMonitoredItem', '-VirtualMachine', 'app')).map((i) => i.Name), ['appsvc']);
    await event(home, 'CLUSTER_VM_MONITOR_WATCHING', since);

    // First stop: the VM is restarted where it is (the guest reboots: its RAM-backed /tmp is empty).
    since = await lastSeq(home);
    let t0 = Date.now();
    assert.equal((await t[home]!.sh('app', 'kill $(pidof appsvc)')).code, 0);
    await event(home, 'CLUSTER_VM_MONITOR_RESTART', since);
    const detected = Date.now() - t0;
    await waitFor('the guest back after its reset', 90_000, async () => (await t[home]!.sh('app', 'test -e /tmp/marker || echo rebooted').catch(() => ({ out: '' }))).out.includes('rebooted'));
    process.stdout.write(`# monitored process killed -> restart decided ${detected} ms, -> guest answering again ${Date.now() - t0} ms (LOADED)\n`);
    assert.equal((await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!.OwnerNode, NODES[home]);

    // Second stop within the restart period: the role fails over and starts cold on the other node.
    since = await lastSeq(home);
    await startService(home);
    await event(home, 'CLUSTER_VM_MONITOR_WATCHING', since);
    t0 = Date.now();
    assert.equal((await t[home]!.sh('app', 'kill $(pidof appsvc)')).code, 0);
    await event(home, 'CLUSTER_GROUP_FAILOVER', since);
    const handedOff = Date.now() - t0;
    const moved = await waitFor('the role Online on the other node', 90_000, async () => {
      const g = (await t[other]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
      return g.OwnerNode === NODES[other] && g.State === 'Online' ? g : undefined;
    });
    assert.equal(moved.State, 'Online');
    process.stdout.write(`# killed again -> ownership given up ${handedOff} ms, -> role Online on ${NODES[other]} ${Date.now() - t0} ms (LOADED)\n`);
    assert.deepEqual((await d[home]!.api('GET', '/api/v1/vms')).json, [], 'gone from the node it failed on');
    await t[other]!.heartbeat('app');
    assert.equal((await t[other]!.sh('app', 'pidof appsvc || echo none')).out.trim(), 'none', 'a cold start');

    await t[other]!.ok('Remove-ClusterVMMonitoredItem', '-VirtualMachine', 'app', '-Service', 'appsvc');
    assert.deepEqual((await d[other]!.api('GET', '/api/v1/cluster/monitored-items?VirtualMachine=app')).json, []);
  });
});
