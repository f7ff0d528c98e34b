// Cluster-Aware Updating's remaining parameters through the CLI (issue 14), two vmhostd nodes and
// no guest (nothing to drain), an updater that only prints:
// - Get-CauReport -StartDate/-EndDate select runs by their start; bad dates refused.
// - Invoke-CauRun -StopAfter 00:00:00 starts no node: the run ends Cancelled naming them.
// - Invoke-CauRun -ForceRecovery ends a run left in progress (kept as a Cancelled report saying
//   where it was) and starts the new one; without it the run in progress refuses a new one.
// - Save-CauDebugTrace writes a tar archive (read back with tar(1)): every run's record, each
//   node's CAU events, each node's kept plug-in output with what the updater printed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCluster, type TestCluster } from './support/cluster.ts';
import type { CliTools } from './support/cli-tools.ts';

const run = promisify(execFile);
const NODES = ['node1', 'node2'];

interface Report { RunId: string; RunStartTime: string; ClusterResult: string; Message?: string; NodeResults?: { Node: string; Status: string }[] }

describe('CAU: Get-CauReport by date, Invoke-CauRun -StopAfter and -ForceRecovery, Save-CauDebugTrace', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];
  let dir = '';
  let first: Report | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmhost-cau-trace-'));
    cluster = await startCluster(NODES);
    t = cluster.t;
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a run, then Get-CauReport -StartDate/-EndDate around its start', async () => {
    first = await t[0]!.json<Report>('Invoke-CauRun', '-CauPluginArguments', '@{Command=\'echo "updated-$VMHOST_CAU_NODE"\'}', '-Force');
    assert.equal(first.ClusterResult, 'Succeeded', first.Message);
    // An empty answer prints nothing, as PowerShell writes no object.
    const ids = async (...args: string[]): Promise<string[]> => {
      const out = (await t[1]!.ok('Get-CauReport', ...args, '-Json')).trim();
      return out === '' ? [] : (JSON.parse(out) as Report[]).map((r) => r.RunId);
    };
    assert.deepEqual(await ids('-StartDate', first.RunStartTime, '-EndDate', first.RunStartTime), [first.RunId]);
    assert.deepEqual(await ids('-EndDate', new Date(Date.parse(first.RunStartTime) - 1000).toISOString()), []);
    assert.deepEqual(await ids('-StartDate', '2000-01-01', '-Last'), [first.RunId]);
    await t[1]!.fails(/-StartDate 'soon' is not a date/, 'Get-CauReport', '-StartDate', 'soon');
    await t[1]!.fails(/is after -EndDate/, 'Get-CauReport', '-StartDate', '2026-12-08', '-EndDate', '2026-12-07');
  });

  test('Invoke-CauRun -StopAfter 00:00:00 starts no node and ends Cancelled', async () => {
    await t[0]!.fails(/StopAfter: 'an hour' is not a time span/, 'Invoke-CauRun', '-CauPluginArguments', '@{Command=\'true\'}', '-StopAfter', 'an hour');
    const r = await t[0]!.json<Report>('Invoke-CauRun', '-CauPluginArguments', '@{Command=\'true\'}', '-StopAfter', '00:00:00', '-Force');
    assert.equal(r.ClusterResult, 'Cancelled');
    assert.match(r.Message ?? '', /StopAfter 0 s elapsed: not started node1, node2/);
  });

  test('a run in progress refuses a new one; -ForceRecovery ends it (reported Cancelled) and starts the new one', async () => {
    const d = cluster!.daemons[0]!;
    // An updater that takes a while: the run is in progress while the next calls are made.
    const started = await d.api('POST', '/api/v1/cluster/cau/run', { CauPluginName: 'vmhost.Command', CauPluginArguments: { Command: 'sleep 20' } });
    assert.equal(started.status, 200, started.text);
    const stuck = (started.json as { RunId: string }).RunId;
    await t[1]!.fails(/run is in progress .*Invoke-CauRun -ForceRecovery ends it now/, 'Invoke-CauRun', '-CauPluginArguments', '@{Command=\'true\'}', '-Force');
    const r = await t[1]!.json<Report>('Invoke-CauRun', '-CauPluginArguments', '@{Command=\'true\'}', '-ForceRecovery', '-StopAfter', '00:00:00', '-Force');
    assert.notEqual(r.RunId, stuck);
    const old = (await t[1]!.json<Report[]>('Get-CauReport')).find((x) => x.RunId === stuck)!;
    assert.equal(old.ClusterResult, 'Cancelled');
    assert.match(old.Message ?? '', /recovered by Invoke-CauRun -ForceRecovery on node2 at node node1/);
  });

  test('Save-CauDebugTrace: a tar archive of the runs\' records, each node\'s CAU events and plug-in outputs', async () => {
    const file = join(dir, 'trace.tar');
    await t[1]!.ok('Save-CauDebugTrace', '-FilePath', file);
    const names = (await run('tar', ['-tf', file])).stdout.trim().split('\n');
    for (const n of [`reports/${first!.RunId}.json`, 'nodes/node1/cau.log', 'nodes/node2/cau.log']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    const report = JSON.parse((await run('tar', ['-xOf', file, `reports/${first!.RunId}.json`])).stdout) as { State: string; Nodes: unknown[] };
    assert.deepEqual([report.State, report.Nodes.length], ['Succeeded', 2]);
    assert.match((await run('tar', ['-xOf', file, 'nodes/node1/cau.log'])).stdout, /CLUSTER_CAU_/);
    // Each node kept its updater's output of the first run.
    for (const node of NODES) {
      const outputs = names.filter((n) => n.startsWith(`nodes/${node}/output/${first!.RunId}/`));
      assert.equal(outputs.length, 1, `${node}'s output of run ${first!.RunId}: ${names.join(', ')}`);
      assert.equal((await run('tar', ['-xOf', file, outputs[0]!])).stdout, `updated-${node}\n`);
    }
    await t[1]!.fails(/exists \(-Force overwrites it\)/, 'Save-CauDebugTrace', '-FilePath', file);
    await t[1]!.ok('Save-CauDebugTrace', '-FilePath', file, '-Force');
  });
});
