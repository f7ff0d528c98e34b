// The web console in a real browser (Debian's chromium driven by playwright-core) against a
// real daemon, QEMU and test guest: sign-in, the wizard with the API's own validation, start,
// the guest's screen through noVNC, typing into the guest, the serial terminal, live state
// changes from the CLI, and that nothing but the sign-in page works without a session; the
// Virtual Switches page, and a VM's adapters and disks from its Network and Storage tabs; the
// wizard's page checks and a VM it builds with a disk, a switch and an ISO, boot order, DVD
// media and a new disk; the Checkpoints pane;
// the Performance tab's and the host panel's graphs. Writes
// docs/screenshots/{vm-list,wizard,wizard-check,console,switch,checkpoints,boot-order,storage,graphs}.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { isLegal, whyIllegal, type VmAction, type VmState } from '../src/host/vm-state.ts';
import { SHOTS, browserSkip, openBrowser } from './support/browser.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';


interface Vm { Name: string; Id: string; State: string; Heartbeat: string }

/** Status of a WebSocket upgrade attempt: 101 when it opened, else the HTTP status of the refusal. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => { ws.terminate(); ok(101); });
    ws.on('unexpected-response', (req, res) => { ok(res.statusCode ?? 0); req.destroy(); });
    ws.on('error', fail);
  });
}

describe('web console in headless chromium', { skip: browserSkip }, () => {
  let d: TestDaemon;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    d = await TestDaemon.start();
    ({ browser, ctx, page, pageErrors } = await openBrowser({ width: 1280, height: 800 }));
  });

  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  const row = (name: string) => page.locator(`tr[data-vm="${name}"]`);
  /** Dismiss the toasts so a screenshot shows the page. */
  const dismissToasts = async () => {
    const buttons = page.getByRole('status').getByRole('button', { name: 'Dismiss' });
    while (await buttons.count() > 0) await buttons.first().click();
  };
  const rowState = (name: string, state: string) => row(name).locator(`[data-state="${state}"]`);

  test('without a session only the sign-in page loads: every API call and the console sockets get 401', async () => {
    const shell = await fetch(d.url + '/');
    assert.equal(shell.status, 200);
    const html = await shell.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'the shell references its bundle');
    assert.equal((await fetch(d.url + asset)).status, 200, 'its assets load without a session');
    for (const [method, path] of [['GET', '/api/v1/vms'], ['GET', '/api/v1/host'], ['GET', '/api/v1/session'], ['POST', '/api/v1/session/logout'],
      ['GET', '/api/v1/events/stream'], ['GET', '/api/v1/vms/x/vnc'], ['GET', '/api/v1/openapi.json'], ['GET', '/vms'], ['GET', '/assets/../../package.json']] as const) {
      assert.equal((await fetch(d.url + path, { method })).status, 401, `${method} ${path}`);
      assert.equal((await fetch(d.url + path, { method, headers: { cookie: 'vmhost_session_00000000=forged' } })).status, 401, `${method} ${path} with a forged cookie`);
    }
    const ws = d.url.replace('http', 'ws');
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/x/vnc`), 401, 'VNC socket without a session');
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/x/serial`), 401, 'serial socket without a session');
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/x/vnc`, { authorization: 'Bearer wrong' }), 401, 'VNC socket with a wrong token');
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/x/vnc`, { authorization: `Bearer ${d.token}` }), 404, 'with the token: an unknown VM is 404 before any upgrade');
    const wrong = await fetch(d.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Token: 'nope' }) });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
  });

  test('signs in as a host user, signs out; then with the token: an HttpOnly SameSite=Strict session cookie that is not the token', async () => {
    assert.equal((await d.api('POST', '/api/v1/users', { Name: 'alice', Role: 'Operator', Password: 'correct horse 42' })).status, 201);
    await page.goto(d.url);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /Wrong user name or password/ }).waitFor();
    await page.getByLabel('Password', { exact: true }).fill('correct horse 42');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Virtual Machines' }).waitFor();
    assert.equal(await page.getByTitle('Signed in as').textContent(), 'alice (Operator)');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('radio', { name: 'Sign in with the host token' }).check();
    await page.evaluate('window.marker = 1'); // gone if the page reloads
    await page.getByLabel('Host token', { exact: true }).fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /not this host's token/ }).waitFor();
    await page.getByLabel('Host token', { exact: true }).fill(d.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Virtual Machines' }).waitFor();
    assert.equal(await page.getByTitle('Signed in as').textContent(), 'admin (Administrator)');
    const cookies = await ctx.cookies();
    assert.equal(cookies.length, 1);
    const c = cookies[0]!;
    assert.match(c.name, /^vmhost_session_[0-9a-f]{8}$/);
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.notEqual(c.value, d.token);
    assert.ok(!c.value.includes(d.token) && !page.url().includes(d.token), 'the token is in no cookie and no URL');
    // The cookie works for the API as the browser sends it, and a cross-origin request carrying it is refused.
    assert.equal((await fetch(d.url + '/api/v1/vms', { headers: { cookie: `${c.name}=${c.value}` } })).status, 200);
    assert.equal((await fetch(d.url + '/api/v1/vms', { method: 'POST', headers: { cookie: `${c.name}=${c.value}`, origin: 'http://127.0.0.1:1', 'content-type': 'application/json' }, body: '{"Name":"csrf"}' })).status, 401);
  });

  test('the wizard checks each page as it is left (empty and duplicate names, memory), shows the API\'s refusal on Finish, then creates the VM', async () => {
    await d.api('POST', '/api/v1/vms', { Name: 'db1', MemoryStartupBytes: 1024 * 1024 * 1024, ProcessorCount: 2, Generation: 2 });
    await d.api('POST', '/api/v1/vms', { Name: 'scratch' });
    await page.getByRole('link', { name: 'New VM…' }).click();
    const next = page.getByRole('button', { name: 'Next >' });
    const alert = (text: string | RegExp) => page.getByRole('alert').filter({ hasText: text });
    // Page 1 refuses an empty name and a name the host already has (any case), before any other page.
    await next.click();
    await alert('Enter a name for the virtual machine.').waitFor();
    assert.equal(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Name', { exact: true }).fill('DB1');
    await next.click();
    await alert(/A virtual machine named 'db1' already exists/).waitFor();
    await page.getByRole('button', { name: /Summary/ }).click(); // jumping ahead stops at the page with the problem
    await alert(/A virtual machine named 'db1' already exists/).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('web1');
    await next.click();
    await page.getByText('Generation 1', { exact: true }).waitFor();
    await next.click();
    // Memory: the console's own words, never the browser's number validation ("nearest valid values").
    const memory = page.getByLabel('Startup memory (MB)');
    assert.equal(await memory.getAttribute('type'), null, 'a text field: no native number validation');
    await memory.fill('33');
    await next.click();
    await alert('33 MB is not a multiple of 2 MB.').waitFor();
    await page.screenshot({ path: join(SHOTS, 'wizard-check.png') });
    await memory.fill('16');
    await page.getByRole('button', { name: 'Finish' }).click(); // Finish checks every page too
    await alert('16 MB is below the minimum of 32 MB.').waitFor();
    await memory.fill('256');
    await next.click();
    assert.equal(await page.getByLabel('Connection').inputValue(), '', 'the adapter is not connected by default');
    await next.click();
    // A disk the host does not have passes the page (it is a path) and the API refuses it on Finish: shown on the disk page.
    await page.getByRole('radio', { name: 'Use an existing virtual hard disk' }).check();
    await page.getByLabel('Path of the existing disk').fill(join(d.dataDir, 'no-such.vhdx'));
    await page.getByRole('button', { name: 'Finish' }).click();
    await alert(/^VHDPath: no such file/).waitFor();
    assert.equal(await page.getByLabel('Path of the existing disk').getAttribute('aria-invalid'), 'true');
    await page.getByRole('radio', { name: 'Attach a virtual hard disk later' }).check();
    await page.getByRole('button', { name: 'Finish' }).click();
    await page.getByRole('heading', { name: /web1/ }).waitFor();
    const vm = (await d.api('GET', '/api/v1/vms/web1')).json as Vm & { MemoryStartup: number; BootSource: string };
    assert.equal(vm.MemoryStartup, 256 * 1024 * 1024);
    assert.equal(vm.BootSource, 'TestGuest', 'nothing bootable: the built-in test guest');
    const nics = (await d.api('GET', '/api/v1/vms/web1/network-adapters')).json as { Name: string; SwitchName: string | null }[];
    assert.deepEqual(nics.map((n) => [n.Name, n.SwitchName]), [['Network Adapter', null]]);
  });

  test('starts the VM and sees the guest\'s screen; typed keys reach the guest', async () => {
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.locator('.page-header [data-state="Running"]').waitFor({ timeout: 30_000 });
    await page.locator('.hb-ok').waitFor({ timeout: 60_000 }); // booted: the agent answers
    await page.getByRole('tab', { name: 'Settings' }).click();
    await page.getByText('Turn off the VM to change its hardware (it is Running).').waitFor();
    assert.equal(await page.getByLabel('Virtual processors').isDisabled(), true, 'hardware greyed out while running');
    assert.equal(await page.getByLabel('Notes').isDisabled(), false, 'notes stay editable');
    await page.getByRole('list', { name: 'Startup order' }).waitFor(); // boot order changes apply from the next boot: editable while running
    await page.getByRole('button', { name: 'Connect…' }).click();
    await page.getByTestId('console-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
    // The guest's tty1 shell is on the VGA console: wait until the screen is drawn and not uniform.
    // (A string: this runs in the page, and the test's own types have no DOM.)
    const colours = await waitFor('a non-uniform guest screen', 20_000, () => page.evaluate<number>(`(() => {
      const canvas = document.querySelector('[data-testid="console-screen"] canvas');
      if (!canvas || canvas.width < 100) return 0;
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      const seen = new Set();
      for (let i = 0; i < px.length; i += 4 * 7) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      return seen.size > 1 ? seen.size : 0;
    })()`));
    assert.ok(colours > 1, `the screen has ${colours} colours`);

    // Keyboard: typed into the screen as a user would (the canvas has focus after a click).
    await page.getByTestId('console-screen').locator('canvas').click();
    await page.keyboard.type('touch /tmp/typed-in-browser', { delay: 15 });
    await page.keyboard.press('Enter');
    // Polled through the API (cheap); the last check below goes through the CLI's Invoke-Command.
    const inGuest = async (script: string) => ((await d.api('POST', '/api/v1/vms/web1/invoke', { ScriptBlock: script })).json as { ExitCode: number; StdOut: string } | undefined);
    await waitFor('the typed command to run in the guest', 15_000, async () => (await inGuest('test -e /tmp/typed-in-browser'))?.ExitCode === 0);

    // "Type clipboard": shifted characters too, typed as key presses.
    await page.getByRole('button', { name: 'Type clipboard…' }).click();
    await page.getByLabel('Text', { exact: true }).fill('echo "Clip: OK!" > /tmp/clip.txt\n');
    await page.getByRole('button', { name: 'Type', exact: true }).click();
    await waitFor('the typed clipboard text to run in the guest', 15_000, async () => (await inGuest('test -s /tmp/clip.txt'))?.ExitCode === 0);
    const clip = await d.cli('Invoke-Command', '-VMName', 'web1', '-ScriptBlock', 'cat /tmp/clip.txt; ls /tmp/typed-in-browser');
    assert.equal(clip.code, 0, clip.stderr);
    assert.equal(clip.stdout, 'Clip: OK!\n/tmp/typed-in-browser\n');
    await page.waitForTimeout(300); // let the echo of the last keys reach the screen
    await page.screenshot({ path: join(SHOTS, 'console.png') });
  });

  test('the serial tab is a live terminal on COM1', async () => {
    await page.getByRole('tab', { name: 'Serial (COM1)' }).click();
    const input = page.getByPlaceholder('Type a line and press Enter');
    await input.waitFor();
    await page.locator('.conn.on').waitFor();
    await input.fill('echo serial-$((6*7))');
    await input.press('Enter');
    await page.locator('pre.terminal').filter({ hasText: 'serial-42' }).waitFor({ timeout: 15_000 });
  });

  test('graphs: the VM\'s Performance tab and the host panel draw the last hour with uPlot', async () => {
    // Keep the guest's vCPU busy for a while so the CPU line has something to show.
    const busy = await d.api('POST', '/api/v1/vms/web1/invoke', { ScriptBlock: 'setsid sh -c \'timeout 25 sh -c "while :; do :; done"\' </dev/null >/dev/null 2>&1 & sleep 1' });
    assert.equal(busy.status, 200, busy.text);
    type History = { StepSeconds: number; Times: number[]; CpuPercent: number[]; MemoryAssignedBytes: number[]; MemoryDemandBytes: (number | null)[] };
    const h = await waitFor('a 10 s step with the busy guest in it', 40_000, async () => {
      const r = (await d.api('GET', '/api/v1/vms/web1/history')).json as History;
      return r.Times.length >= 2 && r.CpuPercent.at(-1)! > 1 && r;
    });
    assert.equal(h.StepSeconds, 10);
    assert.ok(h.MemoryAssignedBytes.at(-1)! > 0, 'a running VM has memory assigned');
    assert.ok(h.MemoryDemandBytes.every((v) => v === null), 'static memory reports no demand');
    await page.goto(`${d.url}/#/vms/web1/performance`);
    const graphs = page.locator('[data-graphs] figure[data-graph]');
    await graphs.nth(3).locator('canvas').waitFor();
    assert.deepEqual(await graphs.evaluateAll((f) => f.map((x) => x.getAttribute('data-graph'))), ['CPU', 'Memory', 'Disk', 'Network']);
    const legend = await page.locator('figure[data-graph="Memory"] .u-legend').innerText();
    assert.match(legend, /Assigned/);
    assert.doesNotMatch(legend, /Demand/, 'a series without values is not drawn');
    await dismissToasts();
    await page.screenshot({ path: join(SHOTS, 'graphs.png'), fullPage: true });
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Host', exact: true }).click();
    await page.locator('[data-graphs] figure[data-graph="CPU"] canvas').waitFor();
    const host = (await d.api('GET', '/api/v1/host/history')).json as History;
    assert.ok(host.Times.length >= 2 && host.MemoryAssignedBytes.at(-1)! >= h.MemoryAssignedBytes.at(-1)!, 'the host\'s memory is the VMs\' sum');
    await page.goto(`${d.url}/#/vms/web1`);
  });

  test('Shut Down from the list: the state change arrives without reloading', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Virtual Machines' }).click();
    await row('web1').waitFor();
    await page.screenshot({ path: join(SHOTS, 'vm-list.png') });
    await row('web1').getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Shut Down', exact: true }).click();
    await rowState('web1', 'Off').waitFor({ timeout: 60_000 });
    assert.equal(await page.evaluate('window.marker'), 1, 'no reload happened');
  });

  test('state changes made with the CLI appear in the open browser within 2 s; the console socket closes with the VM', async () => {
    const start = await d.cli('Start-VM', '-Name', 'web1');
    assert.equal(start.code, 0, start.stderr);
    let t0 = Date.now();
    await rowState('web1', 'Running').waitFor({ timeout: 2000 });
    const startSeen = Date.now() - t0;

    // A console client (token auth) gets QEMU's RFB greeting, then a clean close at turn-off.
    const vnc = new WebSocket(`${d.url.replace('http', 'ws')}/api/v1/vms/web1/vnc`, { headers: { authorization: `Bearer ${d.token}` } });
    const greeting = await new Promise<string>((ok, fail) => { vnc.once('message', (m) => ok(String(m))); vnc.once('error', fail); });
    assert.match(greeting, /^RFB 003\.00\d\n$/);
    const closed = new Promise<number>((ok) => vnc.once('close', (code) => ok(code)));

    const off = await d.cli('Stop-VM', '-Name', 'web1', '-TurnOff');
    assert.equal(off.code, 0, off.stderr);
    t0 = Date.now();
    await rowState('web1', 'Off').waitFor({ timeout: 2000 });
    const offSeen = Date.now() - t0;
    console.log(`CLI change seen in the browser after: Start-VM ${startSeen} ms, Stop-VM -TurnOff ${offSeen} ms`);
    assert.equal(await closed, 1000, 'the console socket closes normally when the VM stops');
  });

  test('Ctrl+Alt+Del from the console reaches the guest: its init powers it off', async () => {
    const start = await d.cli('Start-VM', '-Name', 'web1');
    assert.equal(start.code, 0, start.stderr);
    await page.goto(`${d.url}/#/vms/web1/console`);
    await page.getByTestId('console-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
    // init handles Ctrl+Alt+Del once it runs; the agent's heartbeat says it does.
    await waitFor('heartbeat', 60_000, async () => ((await d.api('GET', '/api/v1/vms/web1')).json as Vm).Heartbeat === 'OK');
    await page.getByRole('button', { name: 'Ctrl+Alt+Del' }).click();
    await page.getByText('The console is available while it runs').waitFor({ timeout: 30_000 });
    const events = (await d.api('GET', '/api/v1/events?vm=web1')).json as { Message: string }[];
    assert.match(events.at(-1)!.Message, /the guest shut down/);
  });

  test('settings: hardware is editable when Off, and the API\'s error is shown on the field', async () => {
    await page.goto(`${d.url}/#/vms/web1/settings`);
    await page.getByLabel('Virtual processors').fill('99');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('alert').filter({ hasText: /^ProcessorCount: / }).waitFor(); // the schema's maximum, in the API's words
    await page.getByLabel('Virtual processors').fill('1');
    await page.getByLabel('Startup memory (MB)').fill('384');
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitFor('the new memory size', 5000, async () => ((await d.api('GET', '/api/v1/vms/web1')).json as { MemoryStartup: number }).MemoryStartup === 384 * 1024 * 1024);
    await page.getByRole('button', { name: 'Apply', disabled: true }).waitFor(); // the form started over from the saved settings
    await page.getByLabel('Startup memory (MB)').fill('385');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('alert').filter({ hasText: '385 MB is not a multiple of 2 MB.' }).waitFor();
    await page.getByRole('button', { name: 'Revert' }).click();

    // Generation 1: the BIOS startup order of the four device classes (Set-VMBios).
    const startup = page.getByRole('list', { name: 'Startup order' });
    assert.deepEqual(await startup.locator('.boot-what').allInnerTexts(), ['CD', 'IDE (hard drive)', 'Legacy Network adapter', 'Floppy']);
    await page.getByRole('button', { name: 'Move IDE (hard drive) up' }).click();
    await page.getByRole('button', { name: 'Save BIOS settings' }).click();
    const bios = async () => ((await d.api('GET', '/api/v1/vms/web1/bios')).json as { StartupOrder: string[] }).StartupOrder;
    await waitFor('the new startup order', 5000, async () => (await bios())[0] === 'IDE');
    assert.deepEqual(await bios(), ['IDE', 'CD', 'LegacyNetworkAdapter', 'Floppy']);
  });

  test('switches, adapters and disks: create a switch, plug the VM into it from its Network tab, add a disk from its Storage tab', async () => {
    const nav = page.getByRole('navigation', { name: 'Sections' });
    await nav.getByRole('link', { name: 'Virtual Switches' }).click();
    await page.getByText('No virtual switches yet').waitFor();
    await page.getByRole('radio', { name: /External/ }).check();
    await page.getByText('This host has no free network adapter').waitFor(); // this daemon has no --net-adapter
    await page.getByRole('radio', { name: /Private/ }).check();
    await page.getByLabel('Switch name').fill('LAN');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('tr[data-switch="LAN"]').waitFor();
    assert.equal(((await d.api('GET', '/api/v1/switches/LAN')).json as { SwitchType: string }).SwitchType, 'Private');
    await page.getByLabel('Switch name').fill('lan');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('alert').filter({ hasText: /already exists/ }).waitFor(); // the API's own message

    await page.goto(`${d.url}/#/vms/web1/network`);
    const adapter = page.locator('tr[data-adapter="Network Adapter"]'); // New-VM's own adapter, as in Hyper-V
    await adapter.waitFor();
    await adapter.getByLabel('Virtual switch of Network Adapter').selectOption('LAN');
    const nics = async () => (await d.api('GET', '/api/v1/vms/web1/network-adapters')).json as { Name: string; SwitchName: string | null; MacAddress: string }[];
    const nic = async () => (await nics())[0];
    await waitFor('the adapter on LAN', 5000, async () => (await nic())?.SwitchName === 'LAN');
    assert.match(await adapter.innerText(), /00-15-5D-/, 'the MAC as Hyper-V Manager writes it');
    // A second adapter gets a name of its own (the page addresses adapters by name), unconnected.
    await page.getByRole('button', { name: 'Add network adapter' }).click();
    await page.locator('tr[data-adapter="Network Adapter 2"]').waitFor();
    assert.deepEqual((await nics()).map((n) => [n.Name, n.SwitchName]), [['Network Adapter', 'LAN'], ['Network Adapter 2', null]]);

    await page.getByRole('tab', { name: 'Storage' }).click();
    const vhd = join(d.dataDir, 'web1-data.vhdx');
    assert.equal((await d.cli('New-VHD', '-Path', vhd, '-SizeBytes', '64MB', '-Dynamic')).code, 0);
    await page.getByLabel('Virtual hard disk file').fill(join(d.dataDir, 'missing.vhdx'));
    await page.getByRole('button', { name: 'Add hard drive' }).click();
    await page.getByRole('status').filter({ hasText: /missing\.vhdx/ }).waitFor(); // the API's refusal, as a toast
    await page.getByLabel('Virtual hard disk file').fill(vhd);
    await page.getByRole('button', { name: 'Add hard drive' }).click();
    await page.locator(`tr[data-disk="${vhd}"]`).waitFor();
    const disks = (await d.api('GET', '/api/v1/vms/web1/hard-drives')).json as { Path: string; ControllerType: string }[];
    assert.deepEqual(disks.map((x) => [x.Path, x.ControllerType]), [[vhd, 'SCSI']]);

    await nav.getByRole('link', { name: 'Virtual Switches' }).click();
    await page.getByRole('link', { name: 'LAN', exact: true }).click();
    await page.getByRole('heading', { name: 'Dropped frames by reason' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'switch.png') });
    await page.getByRole('button', { name: 'Remove…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('1 network adapter(s) are connected').waitFor();
    await dialog.getByRole('button', { name: 'Remove' }).click();
    await page.getByText('No virtual switches yet').waitFor();
    assert.equal((await nic())?.SwitchName, null, 'the adapter was disconnected with the switch');
  });

  test('checkpoints pane: take, rename, apply and delete (with its subtree); the tree and Now follow; buttons grey out as the state table says', { timeout: 240_000 }, async () => {
    interface Snap { Name: string; Id: string; ParentSnapshotId: string | null }
    const snaps = async () => (await d.api('GET', '/api/v1/vms/web1/snapshots')).json as Snap[];
    const vmNow = async () => (await d.api('GET', '/api/v1/vms/web1')).json as Vm & { ParentSnapshotId: string | null };
    const node = (name: string) => page.locator(`li[data-checkpoint="${name}"]`);
    const nowUnder = (name: string) => node(name).locator(':scope > ul > li[data-now]');
    const selected = (name: string) => page.getByRole('group', { name: `Checkpoint ${name}` });
    const stateIs = (state: string) => page.locator(`#vm-title [data-state="${state}"]`).waitFor({ timeout: 60_000 });
    const toastSays = (re: RegExp) => page.getByRole('status').filter({ hasText: re }).waitFor({ timeout: 120_000 });
    /** A button of the pane is disabled exactly when the host's table refuses its action, and then says why in the table's words. */
    const greyedAsTable = async (button: ReturnType<Page['getByRole']>, action: VmAction, state: VmState) => {
      assert.equal(await button.isDisabled(), !isLegal(action, state), `${action} while ${state}`);
      if (!isLegal(action, state)) assert.equal(await button.getAttribute('title'), whyIllegal(action, state, 'web1'));
    };
    const vhd = join(d.dataDir, 'web1-data.vhdx');

    await page.goto(`${d.url}/#/vms/web1/checkpoints`);
    await page.getByText('No checkpoints').waitFor();
    await stateIs('Off');
    await greyedAsTable(page.getByRole('button', { name: 'Checkpoint', exact: true }), 'Checkpoint', 'Off');
    await page.getByLabel('New checkpoint name').fill('before-change');
    await page.getByRole('button', { name: 'Checkpoint', exact: true }).click();
    await nowUnder('before-change').waitFor({ timeout: 60_000 });
    await toastSays(/Checkpoint: done/);

    assert.equal((await d.cli('Start-VM', '-Name', 'web1')).code, 0);
    await stateIs('Running');
    await page.getByLabel('New checkpoint name').fill('running-1');
    await page.getByRole('button', { name: 'Checkpoint', exact: true }).click();
    await nowUnder('running-1').waitFor({ timeout: 120_000 });
    assert.equal(await node('before-change').locator('li[data-checkpoint="running-1"]').count(), 1, 'the second checkpoint hangs under the first');
    await node('before-change').locator(':scope > button').click();
    await greyedAsTable(selected('before-change').getByRole('button', { name: 'Apply…' }), 'RestoreSnapshot', 'Running');
    await greyedAsTable(selected('before-change').getByRole('button', { name: 'Delete…' }), 'RemoveSnapshot', 'Running');
    await dismissToasts();
    await page.screenshot({ path: join(SHOTS, 'checkpoints.png') });

    await node('running-1').locator(':scope > button').click();
    await selected('running-1').getByLabel('New name').fill('with-memory');
    await selected('running-1').getByRole('button', { name: 'Rename' }).click();
    await nowUnder('with-memory').waitFor();
    assert.deepEqual((await snaps()).map((x) => x.Name), ['before-change', 'with-memory']);

    // Apply on the running VM: it goes on running from the checkpoint's memory.
    await selected('with-memory').getByRole('button', { name: 'Apply…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Apply' }).click();
    await toastSays(/Apply 'with-memory': done/);
    await stateIs('Running');
    const withMemory = (await snaps()).find((x) => x.Name === 'with-memory')!;
    assert.equal((await vmNow()).ParentSnapshotId, withMemory.Id, 'the VM runs from the applied checkpoint');

    assert.equal((await d.cli('Stop-VM', '-Name', 'web1', '-TurnOff')).code, 0);
    await stateIs('Off');
    await node('before-change').locator(':scope > button').click();
    const del = selected('before-change').getByRole('button', { name: 'Delete…' });
    await greyedAsTable(del, 'RemoveSnapshot', 'Off');
    await del.click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Delete its subtree too/).check();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await toastSays(/Delete 'before-change': done/);
    await page.getByText('No checkpoints').waitFor();
    assert.deepEqual(await snaps(), []);
    const drives = (await d.api('GET', '/api/v1/vms/web1/hard-drives')).json as { Path: string }[];
    assert.deepEqual(drives.map((x) => x.Path), [vhd], 'the merges left the VM on its own disk');
    const jobs = (await d.api('GET', '/api/v1/jobs')).json as { Name: string; State: string; PercentComplete: number }[];
    assert.ok(jobs.some((j) => j.Name === 'Remove-VMSnapshot' && j.State === 'Completed' && j.PercentComplete === 100));
  });

  test('the wizard builds a VM with a new disk, a connected adapter and an ISO to install from; its boot order, DVD and a new disk from the console', async () => {
    await d.api('POST', '/api/v1/switches', { Name: 'Lab', SwitchType: 'Private' });
    const iso = join(d.dataDir, 'install.iso');
    writeFileSync(iso, Buffer.alloc(1024 * 1024));
    const next = page.getByRole('button', { name: 'Next >' });
    const alert = (text: string | RegExp) => page.getByRole('alert').filter({ hasText: text });
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'New Virtual Machine' }).click();
    await page.getByLabel('Name', { exact: true }).fill('srv1');
    await next.click();
    await page.getByRole('radio', { name: /Generation 2/ }).check();
    await next.click();
    await next.click();
    await page.getByLabel('Connection').selectOption('Lab');
    await next.click();
    // A new disk by default, named for the VM beside the host's data; its size is checked on the page.
    assert.equal(await page.getByRole('radio', { name: 'Create a virtual hard disk' }).isChecked(), true);
    assert.equal(await page.getByLabel('Path of the new disk').inputValue(), join(d.dataDir, 'srv1.vhdx'));
    await page.getByLabel('Size (GB)').fill('0');
    await next.click();
    await alert('Enter the disk size as a whole number of GB, at least 1.').waitFor();
    await page.getByLabel('Size (GB)').fill('2');
    await next.click();
    await page.getByRole('radio', { name: /from a bootable image file/ }).check();
    await next.click();
    await alert('Enter the path of the image file.').waitFor();
    await page.getByLabel('Image file (.iso)').fill(iso);
    await next.click();
    await page.getByRole('group', { name: 'Summary' }).getByText('Lab').waitFor();
    await dismissToasts();
    await page.screenshot({ path: join(SHOTS, 'wizard.png') });
    await page.getByRole('button', { name: 'Finish' }).click();
    await page.getByRole('heading', { name: /srv1/ }).waitFor();

    // What the API says the wizard made: the disk at SCSI 0:0, the adapter on Lab, the DVD with the ISO, booting from it first.
    const get = async <T,>(path: string) => (await d.api('GET', `/api/v1/vms/srv1${path}`)).json as T;
    type Disk = { Path: string; ControllerType: string; ControllerLocation: number };
    assert.deepEqual((await get<Disk[]>('/hard-drives')).map((x) => [x.Path, x.ControllerType, x.ControllerLocation]), [[join(d.dataDir, 'srv1.vhdx'), 'SCSI', 0]]);
    assert.deepEqual((await get<{ Name: string; SwitchName: string }[]>('/network-adapters')).map((n) => [n.Name, n.SwitchName]), [['Network Adapter', 'Lab']]);
    assert.deepEqual((await get<{ Path: string | null }[]>('/dvd-drives')).map((x) => x.Path), [iso]);
    type Firmware = { SecureBoot: string; BootOrder: { DeviceRef: string; BootType: string }[] };
    assert.equal((await get<Firmware>('/firmware')).BootOrder[0]?.DeviceRef, 'SCSI:0:1', 'the DVD first');
    assert.equal((await get<{ BootSource: string }>('')).BootSource, 'Firmware');

    // Settings: the boot order (move the hard drive to the top) and Secure Boot, saved together.
    await page.getByRole('tab', { name: 'Settings' }).click();
    const order = page.getByRole('list', { name: 'Boot order' });
    await order.waitFor();
    assert.equal(await order.locator('li').count(), 3, 'DVD, disk, adapter');
    await page.getByRole('button', { name: 'Move Hard Drive on SCSI controller number 0 at location 0 up' }).click();
    assert.equal(await page.getByLabel('Secure Boot').isDisabled(), false, 'the VM is off');
    await page.getByLabel('Secure Boot').selectOption('Off');
    await dismissToasts();
    await page.getByRole('form', { name: 'Firmware' }).screenshot({ path: join(SHOTS, 'boot-order.png') });
    await page.getByRole('button', { name: 'Save firmware settings' }).click();
    await waitFor('the new boot order', 5000, async () => (await get<Firmware>('/firmware')).BootOrder[0]?.DeviceRef === 'SCSI:0:0');
    const fw = await get<Firmware>('/firmware');
    assert.deepEqual(fw.BootOrder.map((b) => b.DeviceRef), ['SCSI:0:0', 'SCSI:0:1', 'NetworkAdapter:Network Adapter']);
    assert.equal(fw.SecureBoot, 'Off');

    // Storage: eject and insert the ISO, add a DVD drive, make and attach a new disk (POST /vhd, then the hard drive).
    await page.getByRole('tab', { name: 'Storage' }).click();
    const dvd = page.locator('tr[data-dvd="SCSI 0:1"]');
    await dvd.getByRole('button', { name: 'Eject' }).click();
    const dvds = async () => (await get<{ Path: string | null }[]>('/dvd-drives')).map((x) => x.Path);
    await waitFor('the ejected media', 5000, async () => (await dvds())[0] === null);
    await dvd.getByText('None').waitFor();
    await dvd.getByLabel('Image file for SCSI 0:1').fill(join(d.dataDir, 'missing.iso'));
    await dvd.getByRole('button', { name: 'Insert' }).click();
    await page.getByRole('status').filter({ hasText: /missing\.iso/ }).waitFor(); // the API's refusal, as a toast
    await dvd.getByLabel('Image file for SCSI 0:1').fill(iso);
    await dvd.getByRole('button', { name: 'Insert' }).click();
    await waitFor('the inserted media', 5000, async () => (await dvds())[0] === iso);
    await page.getByRole('button', { name: 'Add DVD drive' }).click();
    await waitFor('a second DVD drive', 5000, async () => (await dvds()).length === 2);
    const newDisk = join(d.dataDir, 'srv1-disk2.vhdx');
    assert.equal(await page.getByLabel('Path of the new disk').inputValue(), newDisk);
    await page.getByLabel('Size (GB)').fill('1');
    await page.getByRole('button', { name: 'Create and attach' }).click();
    await page.locator(`tr[data-disk="${newDisk}"]`).waitFor();
    assert.deepEqual((await get<Disk[]>('/hard-drives')).map((x) => [x.Path, x.ControllerType]), [[join(d.dataDir, 'srv1.vhdx'), 'SCSI'], [newDisk, 'SCSI']]);
    const info = await d.cli('Get-VHD', '-Path', newDisk);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /VhdType +: Dynamic/);
    await dismissToasts();
    await page.screenshot({ path: join(SHOTS, 'storage.png'), fullPage: true });

    assert.equal((await d.api('DELETE', '/api/v1/vms/srv1')).status, 204);
    assert.equal((await d.api('DELETE', '/api/v1/switches/Lab')).status, 204);
  });

  test('the host panel shows the host\'s facts; the list sorts and filters', async () => {
    const host = (await d.api('GET', '/api/v1/host')).json as { Accelerator: string; LogicalProcessorCount: number };
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Host', exact: true }).click();
    assert.equal(await page.locator('[data-tile="Accelerator"] .tile-value').innerText(), host.Accelerator);
    assert.equal(await page.locator('[data-tile="Logical processors"] .tile-value').innerText(), String(host.LogicalProcessorCount));

    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Virtual Machines' }).click();
    const names = () => page.locator('tr[data-vm]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-vm')));
    await row('web1').waitFor();
    assert.deepEqual(await names(), ['db1', 'scratch', 'web1']);
    await page.getByRole('button', { name: 'Name' }).click();
    assert.deepEqual(await names(), ['web1', 'scratch', 'db1'], 'second click sorts descending');
    await page.getByRole('button', { name: 'Generation' }).click();
    assert.equal((await names())[2], 'db1', 'generation 2 sorts last');
    await page.getByLabel('Filter VMs').fill('WE');
    assert.deepEqual(await names(), ['web1']);
    await page.getByLabel('Filter VMs').fill('');
  });

  test('Delete asks for confirmation; sign-out ends the session', async () => {
    await row('scratch').getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('cannot be undone').waitFor();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row('scratch').waitFor({ state: 'detached' });
    assert.equal((await d.api('GET', '/api/v1/vms/scratch')).status, 404);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('User name').waitFor(); // the sign-in page, in its default mode
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/vms')).status), 401, 'the old cookie no longer works');
    assert.deepEqual(pageErrors, [], 'no console errors');
  });
});
