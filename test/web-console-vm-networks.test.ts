// The web console's VM Networks page (headless chromium against a real daemon, no guest): the
// policy pushed through the NetWNV cmdlets shows as provider addresses, routing domains with
// their virtual subnets and prefixes, lookup records, customer routes and gateways, and each
// VM adapter in a virtual subnet shows with the customer and provider addresses its records
// give it — one whose record names another host's PA is marked. Writes docs/screenshots/vm-networks.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { SHOTS, browserSkip, openBrowser, signInWithToken } from './support/browser.ts';
import { TestDaemon } from './support/daemon.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}';

describe('web console: VM Networks', { skip: browserSkip }, () => {
  let d: TestDaemon;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    d = await TestDaemon.start();
    ({ browser, page, pageErrors } = await openBrowser({ width: 1280, height: 1000 }));
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  test('policy, subnets and which adapter is where', { timeout: 120_000 }, async () => {
    await d.ok('New-NetVirtualizationProviderAddress', '-ProviderAddress', '192.168.100.1', '-InterfaceIndex', '1', '-PrefixLength', '24');
    await d.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', BLUE, '-VirtualSubnetID', '5001', '-DestinationPrefix', '10.0.0.0/24', '-NextHop', '0.0.0.0');
    await d.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', BLUE, '-VirtualSubnetID', '5002', '-DestinationPrefix', '10.0.1.0/24', '-NextHop', '0.0.0.0');
    const macs: Record<string, string> = {};
    for (const [vm, vsid, ca, pa] of [['web', '5001', '10.0.0.10', '192.168.100.1'], ['db', '5002', '10.0.1.10', '192.168.100.2']] as const) {
      await d.ok('New-VM', vm);
      await d.ok('Set-VMNetworkAdapter', '-VMName', vm, '-VirtualSubnetId', vsid);
      macs[vm] = ((await d.api('GET', `/api/v1/vms/${vm}/network-adapters`)).json as { MacAddress: string }[])[0]!.MacAddress;
      await d.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', ca, '-VirtualSubnetID', vsid, '-MACAddress', macs[vm]!, '-ProviderAddress', pa, '-Rule', 'TranslationMethodEncap', '-VMName', vm);
    }

    await signInWithToken(page, d.url, d.token);
    await page.getByRole('link', { name: 'VM Networks' }).click();
    await page.getByRole('heading', { name: 'VM Networks' }).waitFor();

    const text = async (sel: string) => (await page.locator(sel).innerText()).replace(/\s+/g, ' ');
    assert.match(await text('tr[data-pa="192.168.100.1"]'), /192\.168\.100\.1 24 1/);
    assert.match(await text('tr[data-vsid="5001"]'), new RegExp(`${BLUE.replace(/[{}]/g, '.')} 5001 10\\.0\\.0\\.0/24 1 web \\(Network Adapter\\)`));
    assert.match(await text('tr[data-vsid="5002"]'), /5002 10\.0\.1\.0\/24 1 db/);
    assert.match(await text('tr[data-adapter="web"]'), /web Network Adapter .*5001 10\.0\.0\.10 192\.168\.100\.1/);
    assert.doesNotMatch(await text('tr[data-adapter="web"]'), /another host/);
    assert.match(await text('tr[data-adapter="db"]'), /5002 10\.0\.1\.10 192\.168\.100\.2 \(another host\)/);
    assert.match(await text('tr[data-ca="10.0.1.10"]'), new RegExp(`10\\.0\\.1\\.10 5002 ${macs.db} 192\\.168\\.100\\.2 db Static`));
    assert.ok(await page.getByText('No gateway (New-VmhostNetVirtualizationGateway).').isVisible());
    await page.screenshot({ path: join(SHOTS, 'vm-networks.png'), fullPage: true });

    // A change through the cmdlets shows without a reload (the page polls and follows live events).
    await d.ok('Remove-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.1.10', '-VirtualSubnetID', '5002');
    await page.locator('tr[data-adapter="db"]').getByText('no lookup record').waitFor({ timeout: 15_000 });
    assert.deepEqual(pageErrors, []);
  });
});
