// Move… in the web console (headless chromium against two real daemons): host B added on the
// Hosts page (kept in the browser, so it is still listed after a reload), then Move… of a
// running VM on A: the dialog offers B from that list, takes B's token (used once by A to get
// the move's ticket, never kept) and shared storage; the move's job shows its progress under
// the toolbar and ends in a toast; the VM then runs on B with the same Id. A wrong token is
// refused with the destination's words and leaves the VM on A. Writes docs/screenshots/move.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { SHOTS, browserSkip, openBrowser, signInWithToken } from './support/browser.ts';
import { TestDaemon } from './support/daemon.ts';

interface Vm { Name: string; Id: string; State: string }

describe('web console: Move… and the Hosts list', { skip: browserSkip }, () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]);
    ({ browser, page, pageErrors } = await openBrowser({ width: 1280, height: 900 }));
    await signInWithToken(page, a.url, a.token);
  });

  after(async () => {
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const toastSays = (re: RegExp) => page.getByRole('status').filter({ hasText: re }).waitFor({ timeout: 120_000 });

  test('add host B on the Hosts page, then Move… a running VM there with B\'s token: progress, toast, the VM runs on B', { timeout: 240_000 }, async () => {
    for (const d of [a, b]) await d.ok('Enable-VMMigration');
    await a.ok('New-VM', 'mv1', '-MemoryStartupBytes', '96MB');
    const disk = join(a.dataDir, 'mv1-data.vhdx');
    await a.ok('New-VHD', '-Path', disk, '-SizeBytes', '32MB', '-Dynamic');
    await a.ok('Add-VMHardDiskDrive', '-VMName', 'mv1', '-Path', disk, '-ControllerType', 'SCSI');
    await a.ok('Start-VM', 'mv1');
    const before = (await a.api('GET', '/api/v1/vms/mv1')).json as Vm;
    const bAddress = `127.0.0.1:${b.port}`;

    await page.goto(`${a.url}/#/hosts`);
    await page.getByText('No hosts yet').waitFor();
    await page.getByLabel('Address').fill('no-port');
    await page.getByRole('alert').filter({ hasText: 'HOST:PORT' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add host' }).isDisabled(), true);
    await page.getByLabel('Name').fill('hostB');
    await page.getByLabel('Address').fill(bAddress);
    await page.getByRole('button', { name: 'Add host' }).click();
    await page.reload();
    await page.getByRole('table', { name: 'Hosts' }).getByText(bAddress).waitFor();

    await page.goto(`${a.url}/#/vms/mv1`);
    const moveButton = page.getByRole('toolbar', { name: 'Actions for mv1' }).getByRole('button', { name: 'Move…' });
    await moveButton.waitFor();
    // A wrong token: the destination's refusal, and the VM stays.
    await moveButton.click();
    const dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Destination host').inputValue(), bAddress);
    await dialog.getByLabel('Administrator token on the destination').fill('not-the-token');
    await dialog.getByRole('button', { name: 'Move' }).click();
    await toastSays(/refused the credential/);
    assert.equal(((await a.api('GET', '/api/v1/vms/mv1')).json as Vm).State, 'Running');

    await moveButton.click();
    await dialog.getByLabel('Administrator token on the destination').fill(b.token);
    assert.equal(await dialog.getByRole('radio', { name: /Shared storage/ }).isChecked(), true);
    // The disk copied live into a folder on B (Move-VM -IncludeStorage -DestinationStoragePath).
    await dialog.getByRole('radio', { name: /Copy the disks/ }).check();
    await dialog.getByLabel('Folder on the destination', { exact: true }).fill('relative');
    await dialog.getByRole('alert').filter({ hasText: 'absolute folder' }).waitFor();
    const folder = join(b.dataDir, 'moved');
    await dialog.getByLabel('Folder on the destination', { exact: true }).fill(folder);
    await page.screenshot({ path: join(SHOTS, 'move.png'), fullPage: true });
    await dialog.getByRole('button', { name: 'Move' }).click();
    // The job's progress under the toolbar (the move takes seconds), then its toast.
    await page.locator('.running-job[data-job="Move-VM"]').waitFor({ timeout: 60_000 });
    await toastSays(/Move mv1: done/);
    const onB = (await b.api('GET', '/api/v1/vms/mv1')).json as Vm;
    assert.deepEqual([onB.Id, onB.State], [before.Id, 'Running']);
    assert.equal((await a.api('GET', '/api/v1/vms/mv1')).status, 404, 'mv1 left A');
    assert.ok(existsSync(join(folder, 'mv1-data.vhdx')), 'the disk is in the folder on B');
    assert.equal(existsSync(disk), false, 'and gone from A');
    assert.deepEqual(pageErrors, []);
  });
});
