// Network virtualization policy through the CLI and the API, on one daemon with no guests:
// the NetWNV cmdlets (provider addresses, lookup records for two tenants sharing a customer
// address, customer routes) with their filters and refusals, kept across a graceful daemon
// restart; a Viewer may read but not change them; Set-VMNetworkAdapter -VirtualSubnetId is
// stored on a VM's adapter and shown by Get-VMNetworkAdapter (the data path: hnv-datapath.test.ts);
// Set-VMNetworkAdapterIsolation sets that VSID (or the access VLAN) and the two stay one; routing
// domain mappings bound the adapter's subnet.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from './support/daemon.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}';
const RED = '22222222-2222-3333-4444-000000000002';
interface Rec { CustomerAddress: string; VirtualSubnetID: number; MACAddress: string; ProviderAddress: string; CustomerID: string; Rule: string; Type: string }

describe('network virtualization policy', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  /** A Get- cmdlet's objects (-Json prints one object alone, none as nothing or []). */
  const json = async <T>(...args: string[]): Promise<T> => {
    const text = (await d.ok(...args, '-Json')).trim();
    return (text === '' ? [] : [JSON.parse(text) as unknown].flat()) as T;
  };

  test('NetWNV cmdlets: two tenants on one customer address, filters, refusals, restart', { timeout: 120_000 }, async () => {
    await d.ok('New-NetVirtualizationProviderAddress', '-ProviderAddress', '192.168.4.1', '-InterfaceIndex', '3', '-PrefixLength', '24');
    await d.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', BLUE, '-VirtualSubnetID', '5001', '-DestinationPrefix', '10.0.0.0/24', '-NextHop', '0.0.0.0');
    await d.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', RED, '-VirtualSubnetID', '6001', '-DestinationPrefix', '10.0.0.0/24', '-NextHop', '0.0.0.0', '-Metric', '5');
    for (const [vsid, mac, pa] of [['5001', '00155D000005', '192.168.4.1'], ['6001', '00-15-5D-00-00-06', '192.168.4.2']] as const) {
      await d.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.0.5', '-VirtualSubnetID', vsid, '-MACAddress', mac, '-ProviderAddress', pa, '-Rule', 'TranslationMethodEncap');
    }
    const all = await json<Rec[]>('Get-NetVirtualizationLookupRecord');
    assert.equal(all.length, 2);
    const red = await json<Rec[]>('Get-NetVirtualizationLookupRecord', '-VirtualSubnetID', '6001');
    assert.deepEqual(red.map((r) => [r.CustomerAddress, r.MACAddress, r.ProviderAddress, r.CustomerID, r.Rule, r.Type]),
      [['10.0.0.5', '00155D000006', '192.168.4.2', `{${RED}}`, 'TranslationMethodEncap', 'Static']]);
    assert.match(await d.ok('Get-NetVirtualizationCustomerRoute', '-RoutingDomainID', RED), /10\.0\.0\.0\/24/);

    // Refusals: one line naming the parameter, exit code 2 (usage) or 3-style conflicts.
    const refused = async (re: RegExp, ...args: string[]) => {
      const r = await d.cli(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      return r.code;
    };
    assert.equal(await refused(/VirtualSubnetID/, 'New-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.0.7', '-VirtualSubnetID', '100', '-MACAddress', '00155D000007', '-ProviderAddress', '192.168.4.1', '-Rule', 'TranslationMethodEncap'), 2);
    assert.equal(await refused(/NVGRE only/, 'New-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.0.7', '-VirtualSubnetID', '5001', '-MACAddress', '00155D000007', '-ProviderAddress', '192.168.4.1', '-Rule', 'TranslationMethodNat'), 2);
    await refused(/already exists/, 'New-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.0.5', '-VirtualSubnetID', '5001', '-MACAddress', '00155D000009', '-ProviderAddress', '192.168.4.1', '-Rule', 'TranslationMethodEncap');
    await refused(/virtual subnet 5001 is in routing domain/, 'New-NetVirtualizationCustomerRoute', '-RoutingDomainID', RED, '-VirtualSubnetID', '5001', '-DestinationPrefix', '10.1.0.0/24', '-NextHop', '0.0.0.0');
    await refused(/RoutingDomainID: 'zzzzzzzz-2222-3333-4444-000000000002' is not a GUID/, 'Get-NetVirtualizationCustomerRoute', '-RoutingDomainID', 'zzzzzzzz-2222-3333-4444-000000000002');

    await d.terminate();
    await d.launch();
    assert.deepEqual(await json<Rec[]>('Get-NetVirtualizationLookupRecord'), all, 'kept across a restart');
    await d.ok('Remove-NetVirtualizationLookupRecord', '-VirtualSubnetID', '6001');
    await refused(/No lookup record matches/, 'Remove-NetVirtualizationLookupRecord', '-VirtualSubnetID', '6001');
    assert.deepEqual((await json<Rec[]>('Get-NetVirtualizationLookupRecord')).map((r) => r.VirtualSubnetID), [5001]);
    assert.equal((await json<unknown[]>('Get-NetVirtualizationProviderAddress', '-ProviderAddress', '192.168.4.1')).length, 1);
    await d.ok('Remove-NetVirtualizationProviderAddress', '-ProviderAddress', '192.168.4.1');
    assert.equal((await json<unknown[]>('Get-NetVirtualizationProviderAddress')).length, 0);
  });

  test('API: a Viewer reads the policy and may not change it', { timeout: 60_000 }, async () => {
    await d.ok('New-VMHostUser', '-Name', 'viewer1', '-Role', 'Viewer', '-NoPassword');
    const token = (JSON.parse(await d.ok('New-VMHostUserToken', '-UserName', 'viewer1', '-Json')) as { Token: string }).Token;
    const base = '/api/v1/host/network-virtualization';
    assert.equal((await d.api('GET', `${base}/customer-routes`, undefined, token)).status, 200);
    const write = await d.api('POST', `${base}/customer-routes`, { RoutingDomainID: BLUE, VirtualSubnetID: 7001, DestinationPrefix: '10.7.0.0/24', NextHop: '0.0.0.0' }, token);
    assert.equal(write.status, 403, write.text);
    const bad = await d.api('POST', `${base}/provider-addresses`, { ProviderAddress: '224.0.0.1', InterfaceIndex: 1, PrefixLength: 24 });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /HNV_BAD_POLICY/);
  });

  test('Set-VMNetworkAdapter -VirtualSubnetId: stored on the adapter, shown, 0 clears, bad values refused', { timeout: 60_000 }, async () => {
    await d.ok('New-VM', 'tenant1');
    await d.ok('Set-VMNetworkAdapter', 'tenant1', '-VirtualSubnetId', '5001');
    const show = async () => (await json<{ VirtualSubnetId: number }[]>('Get-VMNetworkAdapter', 'tenant1'))[0]!.VirtualSubnetId;
    assert.equal(await show(), 5001);
    const r = await d.cli('Set-VMNetworkAdapter', 'tenant1', '-VirtualSubnetId', '4095');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /VirtualSubnetId/);
    assert.equal(await show(), 5001, 'a refused value changes nothing');
    await d.ok('Set-VMNetworkAdapter', 'tenant1', '-VirtualSubnetId', '0');
    assert.equal(await show(), 0);
  });

  test('adapter isolation and routing domain mappings: set, shown, refused, removed', { timeout: 60_000 }, async () => {
    await d.ok('New-VM', 'tenant2');
    await d.ok('Set-VMNetworkAdapterIsolation', 'tenant2', '-IsolationMode', 'NativeVirtualSubnet', '-DefaultIsolationID', '5001', '-AllowUntaggedTraffic', '$true');
    const iso = await json<{ IsolationMode: string; DefaultIsolationID: number; AllowUntaggedTraffic: boolean }[]>('Get-VMNetworkAdapterIsolation', 'tenant2');
    assert.deepEqual(iso.map((x) => [x.IsolationMode, x.DefaultIsolationID, x.AllowUntaggedTraffic]), [['NativeVirtualSubnet', 5001, true]]);
    // Applied: the adapter (and so its port) is in 5001; -VirtualSubnetId and the isolation settings stay one.
    type Nic = { VirtualSubnetId: number; VlanSetting: { OperationMode: string; AccessVlanId: number } };
    const nic = async (): Promise<Nic> => (await json<Nic[]>('Get-VMNetworkAdapter', '-VMName', 'tenant2'))[0]!;
    assert.equal((await nic()).VirtualSubnetId, 5001);
    await d.ok('Set-VMNetworkAdapter', '-VMName', 'tenant2', '-VirtualSubnetId', '5002');
    assert.deepEqual((await json<{ IsolationMode: string; DefaultIsolationID: number }[]>('Get-VMNetworkAdapterIsolation', 'tenant2')).map((x) => [x.IsolationMode, x.DefaultIsolationID]), [['NativeVirtualSubnet', 5002]]);
    await d.ok('Set-VMNetworkAdapterIsolation', 'tenant2', '-IsolationMode', 'Vlan', '-DefaultIsolationID', '10');
    const v = await nic();
    assert.deepEqual([v.VirtualSubnetId, v.VlanSetting.OperationMode, v.VlanSetting.AccessVlanId], [0, 'Access', 10]);
    await d.ok('Set-VMNetworkAdapterIsolation', 'tenant2', '-IsolationMode', 'NativeVirtualSubnet', '-DefaultIsolationID', '5001');
    assert.deepEqual([(await nic()).VirtualSubnetId, (await nic()).VlanSetting.OperationMode], [5001, 'Untagged']);
    const bad = await d.cli('Set-VMNetworkAdapterIsolation', 'tenant2', '-IsolationMode', 'Vlan', '-DefaultIsolationID', '5001');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /DefaultIsolationID: 5001 is not a VLAN ID/);

    await d.ok('Add-VMNetworkAdapterRoutingDomainMapping', 'tenant2', '-RoutingDomainID', BLUE, '-RoutingDomainName', 'Blue', '-IsolationID', '5001,5002', '-IsolationName', 'web,db');
    const clash = await d.cli('Add-VMNetworkAdapterRoutingDomainMapping', 'tenant2', '-RoutingDomainID', RED, '-RoutingDomainName', 'Red', '-IsolationID', '5002');
    assert.match(clash.stderr, /virtual subnet 5002 is already in routing domain/);
    await d.ok('Set-VMNetworkAdapterRoutingDomainMapping', 'tenant2', '-RoutingDomainName', 'Blue', '-NewRoutingDomainName', 'BlueCorp');
    // The mappings bound the adapter's subnet: 6001 is in none of them, and a mapping that drops 5001 would leave the adapter outside.
    const outside = await d.cli('Set-VMNetworkAdapter', '-VMName', 'tenant2', '-VirtualSubnetId', '6001');
    assert.match(outside.stderr, /VirtualSubnetId: virtual subnet 6001 is in none of the adapter's routing domains \(BlueCorp: 5001, 5002\)/);
    assert.match((await d.cli('Set-VMNetworkAdapterRoutingDomainMapping', 'tenant2', '-RoutingDomainName', 'BlueCorp', '-IsolationID', '5002')).stderr, /IsolationID: virtual subnet 5001 is in none/);
    const maps = await json<{ RoutingDomainID: string; RoutingDomainName: string; IsolationID: number[]; IsolationName: string[] }[]>('Get-VMNetworkAdapterRoutingDomainMapping', 'tenant2');
    assert.deepEqual(maps.map((m) => [m.RoutingDomainID, m.RoutingDomainName, m.IsolationID, m.IsolationName]), [[BLUE, 'BlueCorp', [5001, 5002], ['web', 'db']]]);
    await d.ok('Remove-VMNetworkAdapterRoutingDomainMapping', 'tenant2', '-RoutingDomainID', BLUE);
    assert.deepEqual(await json<unknown[]>('Get-VMNetworkAdapterRoutingDomainMapping', 'tenant2'), []);
  });
});
