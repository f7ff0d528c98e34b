// Export and Import in the web console (headless chromium against a real daemon): Export… of a
// VM from its toolbar and of a checkpoint from the Checkpoints pane, greyed out as the state
// table says; then the Import page on a host that lacks the VM's switch: Compare-VM's report
// names the missing switch with its fix, the switch chosen in the page resolves it, and
// Import-VM (copy, new id) registers a new VM on the chosen switch with a new id and MAC.
// The host panel shows the dynamic MAC pool the new address came from. Writes docs/screenshots/import.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { isLegal } from '../src/host/vm-state.ts';
import { SHOTS, browserSkip, openBrowser, signInWithToken } from './support/browser.ts';
import { TestDaemon } from './support/daemon.ts';

interface Vm { Name: string; Id: string; State: string }
interface Adapter { SwitchName: string | null; MacAddress: string }

describe('web console: export and import', { skip: browserSkip }, () => {
  let d: TestDaemon;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    d = await TestDaemon.start();
    ({ browser, page, pageErrors } = await openBrowser({ width: 1280, height: 900 }));
    await signInWithToken(page, d.url, d.token);
  });

  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  const toastSays = (re: RegExp) => page.getByRole('status').filter({ hasText: re }).waitFor({ timeout: 120_000 });
  const vmJson = async (name: string) => (await d.api('GET', `/api/v1/vms/${name}`)).json as Vm;

  test('Export… a VM and one of its checkpoints, then Import (copy, new id) on a host without its switch: the report names it, the chosen switch fixes it', { timeout: 240_000 }, async () => {
    const exports = join(d.dataDir, 'exports');
    mkdirSync(exports);
    await d.ok('New-VMSwitch', '-Name', 'gone-net', '-SwitchType', 'Private');
    await d.ok('New-VM', '-Name', 'exp1', '-MemoryStartupBytes', '256MB', '-NewVHDPath', join(d.dataDir, 'exp1.vhdx'), '-NewVHDSizeBytes', '64MB', '-SwitchName', 'gone-net');
    await d.ok('Checkpoint-VM', '-Name', 'exp1', '-SnapshotName', 'first');
    const original = await vmJson('exp1');
    const originalMac = ((await d.api('GET', '/api/v1/vms/exp1/network-adapters')).json as Adapter[])[0]!.MacAddress;

    // Export-VM from the VM's toolbar: legal while Off, so enabled, and the job's end is a toast.
    await page.goto(`${d.url}/#/vms/exp1`);
    const exportButton = page.getByRole('toolbar', { name: 'Actions for exp1' }).getByRole('button', { name: 'Export…' });
    await exportButton.waitFor();
    assert.equal(await exportButton.isDisabled(), !isLegal('Export', 'Off'));
    await exportButton.click();
    await page.getByRole('dialog').getByLabel('Folder on the host').fill(exports);
    await page.getByRole('dialog').getByRole('button', { name: 'Export' }).click();
    await toastSays(/Export exp1: done/);
    const config = join(exports, 'exp1', 'Virtual Machines', `${original.Id}.json`);
    assert.ok(existsSync(config), `${config} written`);

    // Export-VMSnapshot from the Checkpoints pane.
    const snapExports = join(d.dataDir, 'snapshot-exports');
    mkdirSync(snapExports);
    await page.goto(`${d.url}/#/vms/exp1/checkpoints`);
    await page.locator('li[data-checkpoint="first"] > button').click();
    const group = page.getByRole('group', { name: 'Checkpoint first' });
    const snapExport = group.getByRole('button', { name: 'Export…' });
    assert.equal(await snapExport.isDisabled(), !isLegal('ExportSnapshot', 'Off'));
    await snapExport.click();
    await page.getByRole('dialog').getByLabel('Folder on the host').fill(snapExports);
    await page.getByRole('dialog').getByRole('button', { name: 'Export' }).click();
    await toastSays(/Export 'first': done/);
    assert.deepEqual(await readdir(snapExports), ['exp1'], 'the checkpoint exported as a VM folder');

    // This host loses the VM and its switch, and gets another one.
    await d.ok('Remove-VM', '-Name', 'exp1', '-Force');
    await d.ok('Remove-VMSwitch', '-Name', 'gone-net', '-Force');
    await d.ok('New-VMSwitch', '-Name', 'lab', '-SwitchType', 'Private');

    await page.goto(`${d.url}/#/vms`);
    await page.getByRole('link', { name: 'Import VM…' }).click();
    await page.getByLabel('Exported configuration').fill(config);
    await page.getByRole('radio', { name: /create a new unique ID/ }).check();
    await page.getByRole('button', { name: 'Check compatibility' }).click();
    const missing = page.locator('li[data-kind="SwitchNotFound"]');
    await missing.waitFor();
    assert.match(await missing.innerText(), /gone-net/);
    assert.match(await missing.innerText(), /Fix:/);
    const importButton = page.getByRole('button', { name: 'Import', exact: true });
    assert.equal(await importButton.isDisabled(), true, 'Import waits for a clean report');
    await page.getByLabel('Connect the adapters whose switch this host lacks to').selectOption('lab');
    await page.screenshot({ path: join(SHOTS, 'import.png'), fullPage: true });
    await page.getByRole('button', { name: 'Check again' }).click();
    await page.locator('[data-report="clean"]').waitFor();
    await importButton.click();
    await page.locator('#vm-title').filter({ hasText: 'exp1' }).waitFor({ timeout: 120_000 });

    const imported = await vmJson('exp1');
    assert.notEqual(imported.Id, original.Id, 'a new id');
    assert.equal(imported.State, 'Off');
    const [nic] = (await d.api('GET', '/api/v1/vms/exp1/network-adapters')).json as Adapter[];
    assert.equal(nic!.SwitchName, 'lab', 'the adapter is on the switch chosen in the report');
    assert.notEqual(nic!.MacAddress, originalMac, 'a dynamic MAC gets a new address with a new id');

    // The host panel shows the pool the new MAC came from (Get-VMHost's MacAddressMinimum/-Maximum).
    const h = (await d.api('GET', '/api/v1/host')).json as { MacAddressMinimum: string; MacAddressMaximum: string };
    assert.ok(nic!.MacAddress >= h.MacAddressMinimum && nic!.MacAddress <= h.MacAddressMaximum, 'the new MAC is from the host\'s pool');
    await page.goto(`${d.url}/#/host`);
    const dashed = (hex: string) => hex.match(/../g)!.join('-');
    assert.equal(await page.locator('[data-mac-pool]').innerText(), `${dashed(h.MacAddressMinimum)} – ${dashed(h.MacAddressMaximum)}`);
    assert.deepEqual(pageErrors, []);
  });
});
