// The web console in a real browser (Debian's chromium driven by playwright-core) against a
// real daemon, QEMU and test guest: sign-in, the wizard with the API's own validation, start,
// the guest's screen through noVNC, typing into the guest, the serial terminal, live state
// changes from the CLI, and that nothing but the sign-in page works without a session; the
// Virtual Switches page, and a VM's adapters and disks from its Network and Storage tabs.
// Writes docs/screenshots/{vm-list,wizard,console,switch}.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { ROOT, TestDaemon, waitFor } from './support/daemon.ts';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags chromium keeps trying to reach Google's hosts,
// which this machine's closed network refuses.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = join(ROOT, 'docs/screenshots');

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

describe('web console in headless chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)` }, () => {
  let d: TestDaemon;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    // The app as the sources say (a no-op when web/dist is up to date; stdout would mix with the test report).
    execFileSync(join(ROOT, 'scripts/build.sh'), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    mkdirSync(SHOTS, { recursive: true });
    d = await TestDaemon.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    // 4xx answers are part of the test (sign-in with a wrong token, the wizard's 400), and
    // chromium logs each as "Failed to load resource"; anything else is a real error.
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
  });

  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  const row = (name: string) => page.locator(`tr[data-vm="${name}"]`);
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

  test('signs in with the token: an HttpOnly SameSite=Strict session cookie that is not the token', async () => {
    await page.goto(d.url);
    await page.evaluate('window.marker = 1'); // gone if the page reloads
    await page.getByLabel('Host token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /not this host's token/ }).waitFor();
    await page.getByLabel('Host token').fill(d.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Virtual Machines' }).waitFor();
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

  test('the wizard shows the API\'s own validation message, then creates the VM', async () => {
    await d.api('POST', '/api/v1/vms', { Name: 'db1', MemoryStartupBytes: 1024 * 1024 * 1024, ProcessorCount: 2, Generation: 2 });
    await d.api('POST', '/api/v1/vms', { Name: 'scratch' });
    await page.getByRole('link', { name: 'New VM…' }).click();
    await page.getByLabel('Name', { exact: true }).fill('web1');
    await page.getByRole('button', { name: 'Next >' }).click();
    await page.getByText('Generation 1', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Next >' }).click();
    await page.getByLabel('Startup memory (MB)').fill('33');
    await page.getByRole('button', { name: 'Finish' }).click();
    const err = page.getByRole('alert').filter({ hasText: 'MemoryStartupBytes' });
    await err.waitFor();
    assert.match(await err.innerText(), /33 MB is not a multiple of 2 MB/);
    await page.screenshot({ path: join(SHOTS, 'wizard.png') });
    await page.getByLabel('Startup memory (MB)').fill('256');
    await page.getByRole('button', { name: 'Finish' }).click();
    await page.getByRole('heading', { name: /web1/ }).waitFor();
    const vm = (await d.api('GET', '/api/v1/vms/web1')).json as Vm & { MemoryStartup: number };
    assert.equal(vm.MemoryStartup, 256 * 1024 * 1024);
  });

  test('starts the VM and sees the guest\'s screen; typed keys reach the guest', async () => {
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.locator('.page-header [data-state="Running"]').waitFor({ timeout: 30_000 });
    await page.locator('.hb-ok').waitFor({ timeout: 60_000 }); // booted: the agent answers
    await page.getByRole('tab', { name: 'Settings' }).click();
    await page.getByText('Turn off the VM to change its hardware (it is Running).').waitFor();
    assert.equal(await page.getByLabel('Virtual processors').isDisabled(), true, 'hardware greyed out while running');
    assert.equal(await page.getByLabel('Notes').isDisabled(), false, 'notes stay editable');
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
    await page.getByText('This VM has no network adapter.').waitFor();
    await page.getByRole('button', { name: 'Add network adapter' }).click();
    const adapter = page.locator('tr[data-adapter="Network Adapter"]');
    await adapter.waitFor();
    await adapter.getByLabel('Virtual switch of Network Adapter').selectOption('LAN');
    const nic = async () => ((await d.api('GET', '/api/v1/vms/web1/network-adapters')).json as { SwitchName: string | null; MacAddress: string }[])[0];
    await waitFor('the adapter on LAN', 5000, async () => (await nic())?.SwitchName === 'LAN');
    assert.match(await adapter.innerText(), /00-15-5D-/, 'the MAC as Hyper-V Manager writes it');

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

  test('the host panel shows the host\'s facts; the list sorts and filters', async () => {
    const host = (await d.api('GET', '/api/v1/host')).json as { Accelerator: string; LogicalProcessorCount: number };
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Host' }).click();
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
    await page.getByLabel('Host token').waitFor();
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/vms')).status), 401, 'the old cookie no longer works');
    assert.deepEqual(pageErrors, [], 'no console errors');
  });
});
