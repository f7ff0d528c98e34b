// Cluster-Aware Updating (issue 14, item 8): three vmhostd nodes (support/cluster.ts), one running
// clustered test guest on the shared folder.
// - Invoke-CauRun over the three nodes with an updater that restarts each node's daemon with a new
//   --version-tag (the test plays systemd here: a daemon that exits during the run is started
//   again with the tag the updater wrote, as `Restart=always` would; on an installed node the
//   updater would be `apt-get install -y vmhost && systemctl restart vmhostd`). At the end every
//   node shows the new version, the run never was coordinated by the node it updated (the
//   coordinator moves when the run reaches it), the guest ran throughout — its RAM marker is
//   still there, its uptime went on, its boot id is the same: every move was live — and the
//   longest blackout of its moves (QEMU's downtime + the hand-over, from the cluster log) is printed.
// - An updater failing on node2 stops the run: Failed with the reason, node2 left Paused with the
//   guest moved off it, the nodes after it untouched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, withAppRole, type TestCluster } from './support/cluster.ts';
import type { CliTools } from './support/cli-tools.ts';
import { waitFor, type TestDaemon } from './support/daemon.ts';

interface GroupView { Name: string; OwnerNode: string; State: string }
interface NodeView { Name: string; State: string; VmhostVersion: string; DynamicWeight: number }
interface NodeRun { Node: string; Status: string; Attempts: number; VersionBefore?: string; VersionAfter?: string; Message?: string }
interface RunView { RunState: string; RunId?: string; CurrentNode?: string; CurrentOrchestrator?: string; NodeStatus?: NodeRun[] }
interface Report { RunId: string; ClusterResult: string; NodesSucceeded: number; NodesFailed: number; Message?: string; NodeResults?: NodeRun[] }
interface Check { Title: string; State: string }
interface LogLine { Node: string; Code: string; Message: string }

const NODES = ['node1', 'node2', 'node3'];
const TAG = 'cau2';
const MARKER = `cau-${process.pid}`;

describe('Cluster-Aware Updating: Invoke-CauRun, Get-CauRun, Get-CauReport, Test-CauSetup', () => {
  let cluster: TestCluster | undefined;
  let t: CliTools[] = [];
  let tags = '';
  let stopping = false;
  const restartFailures: unknown[] = [];

  /** systemd's Restart=always for the test's daemons: one that exits is started again with the tag its updater left. */
  function supervise(d: TestDaemon, name: string): void {
    d.proc!.once('exit', () => {
      if (stopping) return;
      void (async () => {
        const tag = (await readFile(join(tags, name), 'utf8').catch(() => '')).trim();
        const i = d.args.indexOf('--version-tag');
        if (i >= 0) d.args.splice(i, 2);
        if (tag) d.args.push('--version-tag', tag);
        await d.launch();
        supervise(d, name);
      })().catch((e: unknown) => restartFailures.push(e));
    });
  }

  before(async () => {
    tags = await mkdtemp(join(tmpdir(), 'vmhost-cau-tags-'));
    cluster = await startCluster(NODES);
    t = cluster.t;
    cluster.daemons.forEach((d, i) => supervise(d, NODES[i]!));
    await withAppRole(cluster, NODES);
  });

  after(async () => {
    stopping = true;
    await cluster?.stop();
    await rm(tags, { recursive: true, force: true });
    assert.deepEqual(restartFailures, [], 'every daemon the updater stopped started again');
  });

  /** The node index owning the role now, and a CLI there. */
  async function owner(): Promise<number> {
    return NODES.indexOf((await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!.OwnerNode);
  }

  test('a run over the three nodes: each drained, updated (its daemon restarted with a new version), resumed; the guest runs throughout', async () => {
    const setup = await t[1]!.json<Check[]>('Test-CauSetup');
    assert.deepEqual(setup.map((c) => [c.Title, c.State]), [
      ['All cluster nodes are Up', 'Passed'], ['Every running role can move off its node', 'Passed'],
      ['Quorum holds with one node down', 'Passed'], ['No updating run in progress', 'Passed'],
    ]);
    const home = await owner();
    const guest = await t[home]!.sh('app', `echo ${MARKER} > /tmp/marker; cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime`);
    const [bootId, uptime0] = guest.out.trim().split('\n');
    const versionBefore = (await t[0]!.json<NodeView[]>('Get-ClusterNode'))[0]!.VmhostVersion;

    // Follow the run from every node that answers (the one asked may be the one restarting).
    const seen: { node: string; coordinator: string; status: string }[] = [];
    let following = true;
    const follow = (async () => {
      while (following) {
        for (const d of cluster!.daemons) {
          const r = await d.api('GET', '/api/v1/cluster/cau/run').catch(() => undefined);
          const v = r?.status === 200 ? r.json as RunView : undefined;
          const cur = v?.NodeStatus?.find((n) => n.Node === v.CurrentNode);
          if (v?.CurrentNode && v.CurrentOrchestrator && cur) seen.push({ node: v.CurrentNode, coordinator: v.CurrentOrchestrator, status: cur.Status });
          if (v) break;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();

    // The updater: the new version's tag where the node's "service manager" reads it, then the daemon restarted.
    const updater = `printf ${TAG} > ${tags}/$VMHOST_CAU_NODE && echo "updated $VMHOST_CAU_NODE to ${TAG}" && kill -TERM $VMHOSTD_PID`;
    const t0 = Date.now();
    const report = await t[2]!.json<Report>('Invoke-CauRun', '-ClusterName', 'hv', '-CauPluginName', 'vmhost.Command',
      '-CauPluginArguments', `@{Command='${updater}'}`, '-MaxFailedNodes', '0', '-MaxRetriesPerNode', '1', '-RequireAllNodesOnline', '-Force');
    const runMs = Date.now() - t0;
    following = false;
    await follow;
    assert.equal(report.ClusterResult, 'Succeeded', JSON.stringify(report));
    assert.equal(report.NodesSucceeded, 3);
    assert.deepEqual(report.NodeResults!.map((n) => [n.Node, n.Status, n.VersionBefore, n.VersionAfter]),
      NODES.map((n) => [n, 'Succeeded', versionBefore, `${versionBefore}+${TAG}`]));
    assert.match(report.NodeResults![0]!.Message!, new RegExp(`updated node1 to ${TAG}`));

    const nodes = await t[0]!.json<NodeView[]>('Get-ClusterNode');
    assert.deepEqual(nodes.map((n) => [n.Name, n.State, n.VmhostVersion, n.DynamicWeight]), NODES.map((n) => [n, 'Up', `${versionBefore}+${TAG}`, 1]),
      'every node runs the new version, Up (resumed), and kept its vote through its restart');
    assert.ok(seen.length > 0, 'Get-CauRun showed the run in progress');
    // Waiting is the hand-over: the coordinator's last write made the run reach its own node, which it then
    // lets go of before acting (CLUSTER_CAU_HANDOVER); a Get-CauRun in between shows it still coordinating.
    assert.deepEqual(seen.filter((s) => s.node === s.coordinator && s.status !== 'Waiting'), [], 'no node coordinated a step of its own update');
    assert.deepEqual([...new Set(seen.map((s) => s.node))], NODES, 'the nodes one at a time, in order');
    assert.equal((await t[0]!.json<RunView>('Get-CauRun')).RunState, 'NotRunning');
    const last = await t[1]!.json<Report[]>('Get-CauReport', '-Last');
    assert.deepEqual(last.map((r) => [r.RunId, r.ClusterResult]), [[report.RunId, 'Succeeded']]);

    // The guest never restarted: same boot, RAM marker kept, uptime on.
    const now = await owner();
    const g = (await t[now]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    assert.equal(g.State, 'Online');
    const [marker, boot, uptime] = (await t[now]!.sh('app', 'cat /tmp/marker; cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime')).out.trim().split('\n');
    assert.deepEqual([marker, boot], [MARKER, bootId], 'the same boot of the guest: only live moves');
    assert.ok(Number(uptime) > Number(uptime0), `its uptime went on (${uptime} s after ${uptime0} s)`);

    // Each move's blackout as the nodes logged it: QEMU's downtime (source) + the hand-over until the destination resumed it.
    const log = await t[0]!.json<LogLine[]>('Get-ClusterLog');
    const downs = log.filter((l) => l.Code === 'VM_MOVED_OUT').map((l) => Number(/downtime (\d+) ms/.exec(l.Message)?.[1] ?? NaN));
    const handOvers = log.filter((l) => l.Code === 'VM_MOVED_IN').map((l) => Number(/resumed and announced (\d+) ms/.exec(l.Message)?.[1] ?? NaN));
    assert.ok(downs.length >= 1 && handOvers.length === downs.length, `every drain was a live move (${downs.length} out, ${handOvers.length} in)`);
    assert.deepEqual(log.filter((l) => l.Code === 'CLUSTER_GROUP_CLAIMED'), [], 'no role was restarted by a failover');
    const blackouts = downs.map((d, i) => d + handOvers[i]!);
    process.stdout.write(`# CAU run over 3 nodes: ${runMs} ms (Invoke-CauRun as the CLI saw it); ${downs.length} live move(s), `
      + `longest blackout ${Math.max(...blackouts)} ms (QEMU downtime ${downs.join('/')} ms + hand-over ${handOvers.join('/')} ms) (LOADED machine: not a performance claim)\n`);
  });

  test('an updater failing on node2 stops the run: Failed with the reason, node2 Paused with the guest moved off it', async () => {
    if ((await owner()) !== 1) await t[0]!.ok('Move-ClusterVirtualMachineRole', '-Name', 'app', '-Node', 'node2');
    await writeFile(join(tags, 'node2.fail'), '');
    const failing = `if [ -e ${tags}/$VMHOST_CAU_NODE.fail ]; then echo "package broken on $VMHOST_CAU_NODE" >&2; exit 3; fi`;
    const r = await cluster!.daemons[0]!.cli('Invoke-CauRun', '-CauPluginArguments', `@{Command='${failing}'}`, '-NodeOrder', 'node2,node1,node3', '-MaxRetriesPerNode', '1', '-Json');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Invoke-CauRun: the run Failed/);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.ClusterResult, 'Failed');
    assert.match(report.Message!, /node node2 failed \(the updater \(vmhost\.Command\) exited 3: package broken on node2\)/);
    assert.deepEqual(report.NodeResults!.map((n) => [n.Node, n.Status]), [['node2', 'Failed'], ['node1', 'Waiting'], ['node3', 'Waiting']]);

    const n2 = (await t[0]!.json<NodeView[]>('Get-ClusterNode', 'node2'))[0]!;
    assert.equal(n2.State, 'Paused', 'left Paused for the administrator');
    const g = (await t[0]!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;
    assert.ok(g.OwnerNode !== 'node2' && g.State === 'Online', `the guest runs elsewhere (${g.OwnerNode}, ${g.State})`);
    assert.equal((await t[0]!.json<RunView>('Get-CauRun')).RunState, 'NotRunning', 'a new run may start');
    await t[0]!.ok('Resume-ClusterNode', '-Name', 'node2');
    await waitFor('node2 Up', 10_000, async () => (await t[0]!.json<NodeView[]>('Get-ClusterNode', 'node2'))[0]!.State === 'Up');
  });
});
