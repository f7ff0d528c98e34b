// The rest of Cluster-Aware Updating (issue 14, item 1): three vmhostd nodes (support/cluster.ts),
// no guest.
// - Get-/Register-/Unregister-CauPlugin: the built-in vmhost.Command, a registered command template
//   whose argument is shell-quoted, the built-in's unregistering refused.
// - Invoke-CauScan: every node runs the scan command (its lines are the updates, a failing one
//   reported as Failed, nothing installed); a dead node is Unreachable.
// - The self-updating role: added (a run time years away), the leader killed, the role rescheduled
//   to a run time 2 s on — due while the dead leader's lease (8 s here) still holds the leader key. The next leader
//   starts the run once: one report for that run time, logged by a surviving node, the role's
//   LastRunId pointing at it. Disable/Enable/Set/-UpdateNow/Remove on the same record.
// - Export-CauReport of Get-CauReport -Json's output as CSV and HTML.
// - Reset-ClusterVMMonitoredState clears the failures VM monitoring recorded (seeded in etcd here as
//   vm-monitor.ts writes them: a monitored service failing needs a guest, test/cluster-ops covers that).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './support/cluster.ts';
import type { CliTools } from './support/cli-tools.ts';
import { waitFor } from './support/daemon.ts';
import { EtcdClient } from '../src/cluster/etcd-client.ts';
import { LEADER_KEY } from '../src/cluster/keys.ts';
import { monitorKey, type MonitorRecord } from '../src/cluster/ops-keys.ts';
import { DAYS_OF_WEEK } from '../src/cluster/cau-schedule.ts';

interface ScanView { NodeName: string; State: string; Updates: string[]; Message?: string }
interface PluginView { Name: string; BuiltIn: boolean }
interface RoleView { Status: string; StartDate: string; NextRun?: string; LastRunTime?: string; LastRunId?: string; DaysOfWeek: string[]; MaxFailedNodes: number }
interface Report { RunId: string; ClusterResult: string; ScheduledFor?: string; NodesSucceeded: number; NodesFailed: number; NodeResults?: { Node: string; Status: string }[] }
interface LogLine { Node: string; Time: string; Code: string; Message: string }

const NODES = ['node1', 'node2', 'node3'];
/** Longer than the default 4 s: the rescheduled run time falls before the dead leader's key expires even on a loaded machine. */
const LEASE_TTL = 8;

describe('CAU: Invoke-CauScan, the self-updating role, plug-ins, Export-CauReport, Reset-ClusterVMMonitoredState', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];
  let etcd: EtcdClient;
  let work = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmhost-cau-role-'));
    cluster = await startCluster(NODES, { args: () => ['--cluster-lease-ttl', String(LEASE_TTL)] });
    t = cluster.t;
    etcd = new EtcdClient(cluster.etcd.endpoints);
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
  });

  after(async () => {
    await cluster?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('plug-ins and Invoke-CauScan: each node\'s list, a failing scan reported, an argument shell-quoted, nothing installed', async () => {
    assert.deepEqual((await t[0]!.json<PluginView[]>('Get-CauPlugin')).map((p) => [p.Name, p.BuiltIn]), [['vmhost.Command', true]]);
    await t[0]!.fails(/built-in CAU plugin: it cannot be unregistered/, 'Unregister-CauPlugin', 'vmhost.Command');
    await t[0]!.ok('Register-CauPlugin', '-Name', 'test.Echo', '-UpdateCommand', 'touch {Marker}', '-ScanCommand', 'printf "%s\\n" {Pkg} "for-$VMHOST_CAU_NODE"');
    const again = await cluster!.daemons[1]!.api('POST', '/api/v1/cluster/cau/plugins', { Name: 'TEST.echo', UpdateCommand: 'true' });
    assert.equal(again.status, 409, `a name registered already, in another case: ${again.text}`);
    assert.deepEqual((await t[2]!.json<PluginView[]>('Get-CauPlugin')).map((p) => [p.Name, p.BuiltIn]), [['vmhost.Command', true], ['test.Echo', false]]);

    const installed = join(work, 'installed');
    const scan = `if [ "$VMHOST_CAU_NODE" = node2 ]; then echo "repository unreachable" >&2; exit 4; fi; echo pkg-a; echo "vmhost-$VMHOST_CAU_NODE"`;
    const r = await t[0]!.json<ScanView[]>('Invoke-CauScan', '-CauPluginArguments', `@{ScanCommand='${scan}'; Command='touch ${installed}'}`);
    assert.deepEqual(r.map((n) => [n.NodeName, n.State, n.Updates]), [['node1', 'Scanned', ['pkg-a', 'vmhost-node1']], ['node2', 'Failed', []], ['node3', 'Scanned', ['pkg-a', 'vmhost-node3']]]);
    assert.match(r[1]!.Message!, /the scan command exited 4: repository unreachable/);
    const quoted = await t[1]!.json<ScanView[]>('Invoke-CauScan', '-CauPluginName', 'test.Echo', '-CauPluginArguments', `@{Pkg='a b"c $(touch ${installed})'}`);
    assert.deepEqual(quoted.map((n) => n.Updates), NODES.map((n) => [`a b"c $(touch ${installed})`, `for-${n}`]), 'the argument reached the command as one word, unexpanded');
    await assert.rejects(readFile(installed), 'nothing was installed: neither the update command ran nor the argument was run');
    await t[0]!.fails(/test\.Echo: has no argument Command/, 'Invoke-CauScan', '-CauPluginName', 'test.Echo', '-CauPluginArguments', '@{Command=\'x\'}');
  });

  test('the self-updating role: its leader dead, the due run is started once by the next leader; Disable/Enable/Set/-UpdateNow/Remove', async () => {
    const leader = (JSON.parse((await etcd.get(LEADER_KEY))!.value) as { Node: string }).Node;
    const dead = NODES.indexOf(leader);
    const alive = NODES.map((_, i) => i).filter((i) => i !== dead);
    const ta = t[alive[0]!]!;
    // Checks beside the cmdlets go through the API: a CLI process costs seconds on a loaded machine.
    const da = cluster!.daemons[alive[0]!]!;
    const get = async <T>(path: string): Promise<T> => (await da.api('GET', `/api/v1/cluster${path}`)).json as T;
    const ran = join(work, 'ran');
    const role = await ta.json<RoleView>('Add-CauClusterRole', '-DaysOfWeek', 'Tuesday', '-StartDate', '2030-01-01T03:00:00Z',
      '-CauPluginArguments', `@{Command='echo "$VMHOST_CAU_RUN_ID $VMHOST_CAU_NODE" >> ${ran}'}`, '-MaxFailedNodes', '1', '-Force');
    assert.deepEqual([role.Status, role.NextRun, role.MaxFailedNodes], ['Online', '2030-01-01T03:00:00.000Z', 1]);
    await cluster!.killNode(dead);
    // Rescheduled (through the API: a CLI process may take seconds here) to a run time due while the dead
    // leader's lease (LEASE_TTL) still holds the leader key: nobody may start it until the next leader.
    const slot = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
    const set = await da.api('PATCH', '/api/v1/cluster/cau/role', { DaysOfWeek: [DAYS_OF_WEEK[slot.getUTCDay()]!], StartDate: slot.toISOString() });
    assert.equal((set.json as RoleView).NextRun, slot.toISOString(), set.text);

    let report: Report | undefined;
    await waitFor('the scheduled run\'s report', 120_000, async () => {
      report = (await get<Report[]>('/cau/reports?Detailed=true')).find((x) => x.ScheduledFor === slot.toISOString());
      return report !== undefined;
    });
    const reportedAt = Date.now();
    assert.equal(report!.ClusterResult, 'Succeeded', JSON.stringify(report));
    assert.deepEqual(report!.NodeResults!.map((n) => [n.Node, n.Status]), NODES.map((n, i) => [n, i === dead ? 'Failed' : 'Succeeded']), 'the dead node left out, the others updated');
    const lines = (await readFile(ran, 'utf8')).trim().split('\n');
    assert.deepEqual(lines, alive.map((i) => `${report!.RunId} ${NODES[i]}`), 'each live node updated once, by that run');

    const log = await get<LogLine[]>('/log');
    const starts = log.filter((l) => l.Code === 'CLUSTER_CAU_RUN_STARTED' && l.Message.includes(slot.toISOString()));
    assert.equal(starts.length, 1, `one start for the run time: ${JSON.stringify(starts)}`);
    assert.notEqual(starts[0]!.Node, leader, 'started by the next leader');
    const newLeader = log.find((l) => l.Code === 'CLUSTER_LEADER' && l.Node === starts[0]!.Node && Date.parse(l.Time) > slot.getTime() - 10_000);
    assert.ok(newLeader && Date.parse(newLeader.Time) > slot.getTime(), `the run time (${slot.toISOString()}) came before the next leader (${newLeader?.Time}): it was due with no live leader`);
    process.stdout.write(`# scheduled run of ${slot.toISOString()} started by ${starts[0]!.Node} at ${starts[0]!.Time} (it became leader at ${newLeader?.Time ?? '?'}; the dead leader was ${leader}), `
      + `its report ${reportedAt - slot.getTime()} ms after the run time (LOADED machine: not a performance claim)\n`);

    const after = await ta.json<RoleView>('Get-CauClusterRole');
    assert.deepEqual([after.LastRunTime, after.LastRunId], [slot.toISOString(), report!.RunId]);
    assert.ok(Date.parse(after.NextRun!) > slot.getTime(), `the next run time is after it (${after.NextRun})`);
    assert.equal((await get<Report[]>('/cau/reports')).filter((x) => x.ScheduledFor === slot.toISOString()).length, 1, 'still one run for that run time');

    assert.equal((await ta.json<RoleView>('Disable-CauClusterRole', '-PassThru')).Status, 'Offline');
    assert.equal((await get<RoleView>('/cau/role')).NextRun, undefined);
    assert.equal((await ta.json<RoleView>('Enable-CauClusterRole', '-PassThru')).Status, 'Online');
    const changed = await ta.json<RoleView>('Set-CauClusterRole', '-DaysOfWeek', 'Tuesday,Saturday', '-WeeksOfMonth', '5', '-PassThru');
    assert.deepEqual(changed.DaysOfWeek, ['Tuesday', 'Saturday']);
    const both = await da.api('PATCH', '/api/v1/cluster/cau/role', { IntervalWeeks: 2, WeeksOfMonth: [1] });
    assert.match(both.text, /Give -WeeksOfMonth or -IntervalWeeks, not both/);
    const again = await da.api('POST', '/api/v1/cluster/cau/role', { DaysOfWeek: ['Monday'], CauPluginName: 'vmhost.Command', CauPluginArguments: { Command: 'true' } });
    assert.match(again.text, /already added/);
    const now = await ta.json<RoleView>('Set-CauClusterRole', '-UpdateNow');
    assert.ok(now.LastRunId && now.LastRunId !== report!.RunId, 'Set-CauClusterRole -UpdateNow started a run');
    const stop = await da.cli('Stop-CauRun', '-Force');
    assert.ok(stop.code === 0 || /No Cluster-Aware Updating run is in progress/.test(stop.stderr), `Stop-CauRun: ${stop.stderr}`); // or it had ended already
    await ta.ok('Remove-CauClusterRole', '-Force');
    assert.equal((await da.api('GET', '/api/v1/cluster/cau/role')).status, 404, 'removed');

    // Invoke-CauScan with a node dead: Unreachable, the others answer.
    const scan = await ta.json<ScanView[]>('Invoke-CauScan', '-CauPluginArguments', '@{ScanCommand=\'echo x\'}');
    assert.deepEqual(scan.map((n) => n.State), NODES.map((_, i) => (i === dead ? 'Unreachable' : 'Scanned')));

    // Export-CauReport from Get-CauReport -Json's output.
    const json = join(work, 'reports.json');
    await writeFile(json, JSON.stringify(await get<Report[]>('/cau/reports?Detailed=true')));
    await ta.ok('Export-CauReport', '-InputReport', json, '-Format', 'Csv', '-Path', join(work, 'r.csv'));
    await ta.ok('Export-CauReport', '-InputReport', json, '-Format', 'Html', '-Path', join(work, 'r.html'));
    const csv = await readFile(join(work, 'r.csv'), 'utf8');
    assert.ok(csv.startsWith('ClusterName,RunId,') && csv.includes(`hv,${report!.RunId},`), csv.slice(0, 300));
    const html = await readFile(join(work, 'r.html'), 'utf8');
    assert.ok(html.includes(`Run ${report!.RunId}`) && html.includes(slot.toISOString()));
  });

  test('Reset-ClusterVMMonitoredState clears the failures VM monitoring recorded', async () => {
    const i = (await Promise.all(cluster!.daemons.map((d) => d.api('GET', '/api/v1/cluster').then((r) => r.status === 200, () => false)))).indexOf(true);
    const ti = t[i]!;
    await ti.ok('New-VM', '-Name', 'mon', '-MemoryStartupBytes', '64MB', '-NewVHDPath', join(cluster!.shared, 'mon.vhdx'), '-NewVHDSizeBytes', '16MB');
    await ti.ok('Add-ClusterVirtualMachineRole', '-VMName', 'mon');
    const items = await ti.json<{ VMId: string }[] | { VMId: string }>('Add-ClusterVMMonitoredItem', '-VirtualMachine', 'mon', '-Service', 'nginx');
    const g = Array.isArray(items) ? items[0]! : items;
    const kv = (await etcd.get(monitorKey(g.VMId)))!;
    const rec = JSON.parse(kv.value) as MonitorRecord;
    await etcd.put(monitorKey(g.VMId), JSON.stringify({ ...rec, Failures: [Date.now() - 1000] } satisfies MonitorRecord));
    assert.deepEqual(await ti.json<{ VMName: string; FailuresCleared: number }>('Reset-ClusterVMMonitoredState', '-VMName', 'mon', '-PassThru'), { VMName: 'mon', VMId: g.VMId, FailuresCleared: 1 });
    assert.deepEqual((JSON.parse((await etcd.get(monitorKey(g.VMId)))!.value) as MonitorRecord).Failures, []);
    assert.deepEqual((JSON.parse((await etcd.get(monitorKey(g.VMId)))!.value) as MonitorRecord).Items, [{ Service: 'nginx' }], 'the monitored items kept');
  });
});
