// The network virtualization policy store: New-/Get-/Remove- with filters in any spelling,
// kept in hnv-policy.json across a new store on the same data dir, concurrent adds both kept,
// a hand-broken file refused at load with the record at fault; a moved VM's records re-pointed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { HnvStore } from './hnv-store.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}';
const RED = '{22222222-2222-3333-4444-000000000002}';

test('NetWNV store: add, filter, remove, persist, reload', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-'));
  try {
    const s = new HnvStore(dir);
    await s.load();
    assert.deepEqual(s.lookupRecords(), []);
    await s.newProviderAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 24 });
    await s.newCustomerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' });
    await s.newCustomerRoute({ RoutingDomainID: RED, VirtualSubnetID: 6001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' });
    // Two tenants, one customer address, added at once: both kept (one lock, one file).
    await Promise.all([
      s.newLookupRecord({ CustomerAddress: '10.0.0.5', VirtualSubnetID: 5001, MACAddress: '00155D000005', ProviderAddress: '192.168.4.1', Rule: 'TranslationMethodEncap', VMName: 'blue1' }),
      s.newLookupRecord({ CustomerAddress: '10.0.0.5', VirtualSubnetID: 6001, MACAddress: '00-15-5D-00-00-06', ProviderAddress: '192.168.4.2', Rule: 'TranslationMethodEncap', VMName: 'red1' }),
    ]);
    assert.equal(s.lookupRecords().length, 2);
    assert.deepEqual(s.lookupRecords({ CustomerID: BLUE.toUpperCase() }).map((r) => r.VMName), ['blue1'], 'CustomerID from the subnet\'s routes');
    assert.deepEqual(s.lookupRecords({ MACAddress: '00:15:5d:00:00:06' }).map((r) => r.CustomerID), [RED]);
    assert.deepEqual(s.customerRoutes({ DestinationPrefix: '10.0.0.9/24' }).length, 2, 'prefix filter normalized');
    await assert.rejects(s.newLookupRecord({ CustomerAddress: '10.0.0.5', VirtualSubnetID: 5001, MACAddress: '00155D000009', ProviderAddress: '192.168.4.1', Rule: 'TranslationMethodEncap' }),
      (e: unknown) => e instanceof VmhostError && e.code === 'ALREADY_EXISTS');

    const again = new HnvStore(dir);
    await again.load();
    assert.deepEqual(again.lookupRecords(), s.lookupRecords(), 'kept in hnv-policy.json');
    assert.deepEqual(again.providerAddresses(), [{ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 24, VlanID: 0, AddressState: 'Preferred', ManagedByCluster: false }]);

    assert.equal(await again.removeLookupRecords({ VirtualSubnetID: 6001 }), 1);
    await assert.rejects(again.removeLookupRecords({ VirtualSubnetID: 6001 }), (e: unknown) => e instanceof VmhostError && e.code === 'NOT_FOUND');
    assert.equal(await again.removeCustomerRoutes({}), 2, 'no filter: all');
    const third = new HnvStore(dir);
    await third.load();
    assert.equal(third.lookupRecords().length, 1);
    assert.equal(third.customerRoutes().length, 0);

    await writeFile(join(dir, 'hnv-policy.json'), JSON.stringify({ providerAddresses: [], customerRoutes: [], lookupRecords: [{ ...third.current().lookupRecords[0], virtualSubnetId: 12 }] }));
    await assert.rejects(new HnvStore(dir).load(), (e: unknown) => e instanceof VmhostError && e.code === 'HNV_BAD_POLICY' && /hnv-policy.json: VirtualSubnetID: 12/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a moved VM: its records follow to the new PA, saved and told to listeners once; nothing to change writes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-'));
  try {
    const s = new HnvStore(dir);
    await s.load();
    assert.equal(s.sourceProviderAddress(), undefined);
    await s.newProviderAddress({ ProviderAddress: 'fd00::1', InterfaceIndex: 3, PrefixLength: 64 });
    await s.newProviderAddress({ ProviderAddress: '192.168.4.2', InterfaceIndex: 3, PrefixLength: 24 });
    assert.equal(s.sourceProviderAddress(), '192.168.4.2', 'the first IPv4 PA: the one the data path sends from');
    for (const ca of ['10.0.0.5', 'fd00:b::5']) {
      await s.newLookupRecord({ CustomerAddress: ca, VirtualSubnetID: 5001, MACAddress: '00155D000005', ProviderAddress: '192.168.4.1', Rule: 'TranslationMethodEncap', VMName: 'blue1' });
    }
    let told = 0;
    s.onChange(() => { told++; });
    const adapters = [{ virtualSubnetId: 5001, macAddress: '00:15:5D:00:00:05' }];
    assert.equal(await s.followMove(adapters, '192.168.4.2'), 2);
    assert.equal(await s.followMove(adapters, '192.168.4.2'), 0);
    assert.equal(told, 1);
    const again = new HnvStore(dir);
    await again.load();
    assert.deepEqual(again.lookupRecords().map((r) => [r.CustomerAddress, r.ProviderAddress]), [['10.0.0.5', '192.168.4.2'], ['fd00:b::5', '192.168.4.2']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
