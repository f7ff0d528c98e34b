// The HNV policy model: every field validated and normalized as the NetWNV cmdlets take it,
// duplicates refused, one routing domain per virtual subnet, removal by match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmhostError } from '../common/index.ts';
import {
  addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, lookupRecord, normalizePrefix, normalizeRdid,
  movedTo, providerAddress, routingDomainOf, without, VSID_MAX, VSID_MIN,
} from './policy.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}';
const RED = '22222222-2222-3333-4444-000000000002';
const rec = (over: Record<string, unknown> = {}) => lookupRecord({
  CustomerAddress: '10.0.0.5', VirtualSubnetID: 5001, MACAddress: '00-15-5D-00-00-05', ProviderAddress: '192.168.4.1', Rule: 'TranslationMethodEncap', ...over,
});
const throwsCode = (fn: () => unknown, code: string, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof VmhostError && e.code === code && re.test(e.message));

test('lookup records: normalized, and every field checked', () => {
  const r = rec({ CustomerID: BLUE.toUpperCase(), VMName: 'blue1' });
  assert.deepEqual(r, {
    customerAddress: '10.0.0.5', virtualSubnetId: 5001, macAddress: '00155D000005', providerAddress: '192.168.4.1',
    rule: 'TranslationMethodEncap', type: 'Static', useVmMacAddress: false, customerId: BLUE, vmName: 'blue1',
  });
  assert.equal(rec({ CustomerAddress: '2001:DB8:0:0::5' }).customerAddress, '2001:db8::5');
  assert.equal(rec({ Type: 'l2only' }).type, 'L2Only');
  throwsCode(() => rec({ VirtualSubnetID: VSID_MIN - 1 }), 'HNV_BAD_POLICY', /VirtualSubnetID: 4095 is not a virtual subnet ID/);
  throwsCode(() => rec({ VirtualSubnetID: VSID_MAX + 1 }), 'HNV_BAD_POLICY', /VirtualSubnetID/);
  throwsCode(() => rec({ VirtualSubnetID: 5001.5 }), 'HNV_BAD_POLICY', /VirtualSubnetID/);
  assert.equal(rec({ VirtualSubnetID: VSID_MAX }).virtualSubnetId, VSID_MAX);
  throwsCode(() => rec({ CustomerAddress: '10.0.0.256' }), 'HNV_BAD_POLICY', /^CustomerAddress: '10.0.0.256' is not an IP address/);
  throwsCode(() => rec({ CustomerAddress: '224.0.0.5' }), 'HNV_BAD_POLICY', /not a unicast address/);
  throwsCode(() => rec({ ProviderAddress: '0.0.0.0' }), 'HNV_BAD_POLICY', /^ProviderAddress/);
  throwsCode(() => rec({ MACAddress: '01-00-5E-00-00-01' }), 'HNV_BAD_POLICY', /MACAddress: .* multicast/);
  throwsCode(() => rec({ MACAddress: 'xyz' }), 'HNV_BAD_POLICY', /MACAddress/);
  throwsCode(() => rec({ Rule: 'TranslationMethodNat' }), 'HNV_BAD_POLICY', /NVGRE only/);
  throwsCode(() => rec({ Rule: 'Encap' }), 'HNV_BAD_POLICY', /^Rule/);
  throwsCode(() => rec({ Type: 'Sometimes' }), 'HNV_BAD_POLICY', /^Type/);
  throwsCode(() => rec({ CustomerID: 'not-a-guid' }), 'HNV_BAD_POLICY', /^CustomerID: 'not-a-guid' is not a GUID/);
  throwsCode(() => rec({ Type: 'GatewayWildcard' }), 'HNV_BAD_POLICY', /wildcard customer address/);
  assert.equal(rec({ Type: 'GatewayWildcard', CustomerAddress: '0.0.0.0' }).customerAddress, '0.0.0.0');
});

test('routing domain IDs, prefixes, provider addresses and customer routes', () => {
  assert.equal(normalizeRdid(RED), `{${RED}}`);
  throwsCode(() => normalizeRdid('{11111111-2222-3333-4444-000000000001'), 'HNV_BAD_POLICY', /not a GUID/);
  throwsCode(() => normalizeRdid('00000000-0000-0000-0000-000000000000'), 'HNV_BAD_POLICY', /empty GUID/);
  assert.equal(normalizePrefix('10.0.0.77/24').text, '10.0.0.0/24', 'host bits cleared');
  assert.equal(normalizePrefix('2001:db8:ffff::1/33').text, '2001:db8:8000::/33');
  assert.equal(normalizePrefix('0.0.0.0/0').text, '0.0.0.0/0');
  throwsCode(() => normalizePrefix('10.0.0.0/33'), 'HNV_BAD_POLICY', /DestinationPrefix/);
  assert.deepEqual(providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 24 }), { providerAddress: '192.168.4.1', interfaceIndex: 3, prefixLength: 24, vlanId: 0 });
  throwsCode(() => providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 0, PrefixLength: 24 }), 'HNV_BAD_POLICY', /^InterfaceIndex/);
  throwsCode(() => providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 33 }), 'HNV_BAD_POLICY', /^PrefixLength/);
  throwsCode(() => providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 24, VlanID: 4095 }), 'HNV_BAD_POLICY', /^VlanID/);
  const r = customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' });
  assert.deepEqual(r, { routingDomainId: BLUE, virtualSubnetId: 5001, destinationPrefix: '10.0.0.0/24', nextHop: '0.0.0.0', metric: 0 });
  throwsCode(() => customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.0/24', NextHop: '::' }), 'HNV_BAD_POLICY', /^NextHop.*family/);
});

test('policy changes: duplicates refused, a subnet in one routing domain, removal by match', () => {
  let p = emptyPolicy();
  p = addProviderAddress(p, providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 3, PrefixLength: 24 }));
  throwsCode(() => addProviderAddress(p, providerAddress({ ProviderAddress: '192.168.4.1', InterfaceIndex: 4, PrefixLength: 24 })), 'ALREADY_EXISTS', /192.168.4.1/);
  p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' }));
  throwsCode(() => addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: '10.0.0.9/24', NextHop: '0.0.0.0' })), 'ALREADY_EXISTS', /10.0.0.0\/24/);
  throwsCode(() => addCustomerRoute(p, customerRoute({ RoutingDomainID: RED, VirtualSubnetID: 5001, DestinationPrefix: '10.9.0.0/24', NextHop: '0.0.0.0' })), 'HNV_BAD_POLICY', /virtual subnet 5001 is in routing domain/);
  p = addLookupRecord(p, rec());
  throwsCode(() => addLookupRecord(p, rec({ MACAddress: '00155D000009' })), 'ALREADY_EXISTS', /10.0.0.5 in virtual subnet 5001/);
  throwsCode(() => addLookupRecord(p, rec({ CustomerAddress: '10.0.0.6', CustomerID: RED })), 'HNV_BAD_POLICY', /^CustomerID/);
  // Same CA, another tenant's subnet: overlapping customer addresses are the point of HNV.
  p = addLookupRecord(p, rec({ VirtualSubnetID: 6001, CustomerID: RED }));
  assert.equal(routingDomainOf(p, 5001), BLUE);
  assert.equal(routingDomainOf(p, 6001), `{${RED}}`);
  assert.equal(routingDomainOf(p, 7001), undefined);
  const gone = without(p, 'lookupRecords', (r) => r.virtualSubnetId === 6001);
  assert.equal(gone.removed.length, 1);
  assert.equal(gone.policy.lookupRecords.length, 1);
  assert.equal(p.lookupRecords.length, 2, 'the old policy is unchanged');
});

test('a moved VM: its records (VSID and MAC) name the new PA; other records, and a second call, change nothing', () => {
  let p = addLookupRecord(emptyPolicy(), rec());
  p = addLookupRecord(p, rec({ CustomerAddress: '10.0.0.6', MACAddress: '00155D000006' }));
  p = addLookupRecord(p, rec({ VirtualSubnetID: 6001 })); // the same MAC in another subnet is another adapter
  const r = movedTo(p, [{ virtualSubnetId: 5001, macAddress: '00:15:5d:00:00:05' }], '192.168.4.2');
  assert.equal(r.moved, 1);
  assert.deepEqual(r.policy.lookupRecords.map((x) => [x.virtualSubnetId, x.customerAddress, x.providerAddress]),
    [[5001, '10.0.0.5', '192.168.4.2'], [5001, '10.0.0.6', '192.168.4.1'], [6001, '10.0.0.5', '192.168.4.1']]);
  const again = movedTo(r.policy, [{ virtualSubnetId: 5001, macAddress: '00155D000005' }], '192.168.4.2');
  assert.equal(again.moved, 0);
  assert.equal(again.policy, r.policy);
  throwsCode(() => movedTo(p, [], '224.0.0.1'), 'HNV_BAD_POLICY', /ProviderAddress: 224\.0\.0\.1 is not a unicast address/);
});
