// The Failover Cluster page of the web console (headless chromium against a real two-node
// cluster: two vmhostd with their etcd members, support/cluster.ts): both nodes Up with their
// votes, a clustered VM role started from the page, moved live to the other node with the
// page's Live Migrate, that node paused with Drain (the role comes back) and resumed; the
// priority changed from the page; a Cluster Shared Volume listed with its coordinator. A host
// that is no cluster node says how to make it one.
// Writes docs/screenshots/cluster.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { SHOTS, browserSkip, openBrowser, signInWithToken } from './support/browser.ts';
import { startCluster, type TestCluster } from './support/cluster.ts';
import { TestDaemon } from './support/daemon.ts';

interface GroupView { Name: string; OwnerNode: string; State: string; Priority: number }
interface LogLine { Node: string; Code: string; Message: string }

describe('web console: Failover Cluster Manager', { skip: browserSkip }, () => {
  let cluster: TestCluster | undefined;
  let plain: TestDaemon | undefined;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    [cluster, plain] = await Promise.all([startCluster(['node1', 'node2']), TestDaemon.start()]);
    ({ browser, page, pageErrors } = await openBrowser({ width: 1280, height: 800 }));
  });

  after(async () => {
    await browser?.close();
    await Promise.all([cluster?.stop(), plain?.stop()]);
  });

  async function signIn(d: TestDaemon, hash: string): Promise<void> {
    await signInWithToken(page, d.url, d.token);
    await page.goto(`${d.url}/#/${hash}`);
  }
  const toastSays = (re: RegExp) => page.getByRole('status').filter({ hasText: re }).waitFor({ timeout: 120_000 });

  test('a host that is no cluster node says so', async () => {
    await signIn(plain!, 'cluster');
    await page.getByText('This host is not a cluster node').waitFor();
  });

  test('nodes and roles; Start, Live Migrate, Pause (Drain) and Resume from the page', { timeout: 300_000 }, async () => {
    const [d1] = cluster!.daemons;
    const [t1, t2] = cluster!.t;
    await Promise.all([t1!.ok('Enable-VMMigration'), t2!.ok('Enable-VMMigration')]);
    await t1!.ok('New-Cluster', '-Name', 'hv', '-Node', 'node1,node2');
    await t1!.ok('New-VM', '-Name', 'app', '-MemoryStartupBytes', '96MB', '-NewVHDPath', join(cluster!.shared, 'app.vhdx'), '-NewVHDSizeBytes', '16MB');
    await t1!.ok('Add-ClusterVirtualMachineRole', '-VMName', 'app');
    await mkdir(join(cluster!.shared, 'csv'));
    await t1!.ok('Add-ClusterSharedVolume', '-Name', 'Volume1', '-Path', join(cluster!.shared, 'csv'));
    const group = async () => (await t1!.json<GroupView[]>('Get-ClusterGroup', 'app'))[0]!;

    await signIn(d1!, 'cluster');
    await page.getByRole('heading', { name: 'Failover Cluster Manager: hv' }).waitFor();
    const nodes = page.getByRole('table', { name: 'Nodes' });
    for (const n of ['node1', 'node2']) await nodes.locator(`tr[data-node="${n}"] [data-node-state="Up"]`).waitFor();
    const role = page.locator('tr[data-role="app"]');
    await role.locator('[data-role-state="Offline"]').waitFor();
    await page.locator('tr[data-volume="Volume1"]').filter({ hasText: /Online\s*node[12]/ }).waitFor();

    await role.getByLabel('Priority of app').selectOption({ label: 'High' });
    await toastSays(/app: priority set/);
    assert.equal((await group()).Priority, 3000);

    await role.getByRole('button', { name: 'Start' }).click();
    await toastSays(/app is online/);
    await role.locator('[data-role-state="Online"]').waitFor();
    const owner = (await group()).OwnerNode;
    const other = owner === 'node1' ? 'node2' : 'node1';
    await cluster!.t[owner === 'node1' ? 0 : 1]!.heartbeat('app');

    assert.equal(await role.getByLabel('Move app to').inputValue(), other, 'the only other Up node is offered');
    await role.getByRole('button', { name: 'Live Migrate' }).click();
    await toastSays(new RegExp(`app moved live to ${other}`));
    assert.deepEqual([(await group()).OwnerNode, (await group()).State], [other, 'Online']);

    await page.locator(`tr[data-node="${other}"]`).getByRole('button', { name: 'Pause (Drain Roles)' }).click();
    await toastSays(new RegExp(`Drained ${other}|Drain of ${other} failed`));
    await nodes.locator(`tr[data-node="${other}"] [data-node-state="Paused"]`).waitFor();
    // A drain that left the role behind says why in the cluster log: the failure carries it.
    const drainedTo = (await group()).OwnerNode;
    if (drainedTo !== owner) {
      const log = await t1!.json<LogLine[]>('Get-ClusterLog');
      assert.fail(`the drain left app on ${drainedTo}; the cluster log's last lines: ${JSON.stringify(log.slice(-12))}`);
    }
    await toastSays(new RegExp(`Drained ${other}`));
    await page.screenshot({ path: join(SHOTS, 'cluster.png') });

    await page.locator(`tr[data-node="${other}"]`).getByRole('button', { name: 'Resume (Fail Roles Back)' }).click();
    await toastSays(new RegExp(`Resumed ${other}`));
    await nodes.locator(`tr[data-node="${other}"] [data-node-state="Up"]`).waitFor();
    assert.equal((await group()).OwnerNode, other, 'failback brought the role back');
    assert.deepEqual(pageErrors, []);
  });
});
