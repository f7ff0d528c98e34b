// A VM adapter's isolation settings and routing domain mappings: the ID each mode takes,
// mappings unique by ID and name, a VSID in one routing domain only, names beside IDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmhostError } from '../common/index.ts';
import { addMapping, checkMapped, defaultIsolation, isolationVsid, removeMapping, setIsolation, setMapping, withVsid } from './adapter-isolation.ts';

const throwsCode = (fn: () => unknown, code: string, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof VmhostError && e.code === code && re.test(e.message));
const BLUE = '11111111-2222-3333-4444-000000000001';
const RED = '{22222222-2222-3333-4444-000000000002}';

test('Set-VmNetworkAdapterIsolation: each mode takes its kind of ID', () => {
  const d = defaultIsolation();
  assert.deepEqual(setIsolation(d, { IsolationMode: 'nativevirtualsubnet', DefaultIsolationID: 5001 }),
    { isolationMode: 'NativeVirtualSubnet', defaultIsolationId: 5001, allowUntaggedTraffic: false, multiTenantStack: 'Off' });
  assert.equal(setIsolation(d, { IsolationMode: 'Vlan', DefaultIsolationID: 10 }).defaultIsolationId, 10);
  throwsCode(() => setIsolation(d, { IsolationMode: 'Vlan', DefaultIsolationID: 5001 }), 'HNV_BAD_POLICY', /^DefaultIsolationID: 5001 is not a VLAN ID/);
  throwsCode(() => setIsolation(d, { IsolationMode: 'NativeVirtualSubnet', DefaultIsolationID: 10 }), 'HNV_BAD_POLICY', /^DefaultIsolationID/);
  throwsCode(() => setIsolation(d, { IsolationMode: 'NativeVirtualSubnet' }), 'HNV_BAD_POLICY', /^DefaultIsolationID: 0/);
  throwsCode(() => setIsolation(d, { DefaultIsolationID: 7 }), 'HNV_BAD_POLICY', /mode None has no isolation ID/);
  throwsCode(() => setIsolation(d, { MultiTenantStack: 'On' }), 'HNV_BAD_POLICY', /^MultiTenantStack/);
  throwsCode(() => setIsolation(d, { IsolationMode: 'Tunnel' }), 'HNV_BAD_POLICY', /^IsolationMode/);
  const v = setIsolation(d, { IsolationMode: 'Vlan', DefaultIsolationID: 10 });
  assert.equal(setIsolation(v, { AllowUntaggedTraffic: true }).defaultIsolationId, 10, 'the ID stays while the mode does');
});

test('routing domain mappings: add, set, remove; a VSID in one domain', () => {
  let l = addMapping([], { RoutingDomainID: BLUE, RoutingDomainName: 'Blue', IsolationID: [5001, 5002], IsolationName: ['web', 'db'] });
  l = addMapping(l, { RoutingDomainID: RED, RoutingDomainName: 'Red', IsolationID: [6001] });
  assert.deepEqual(l[1]!.isolationNames, ['6001'], 'names default to the IDs');
  throwsCode(() => addMapping(l, { RoutingDomainID: RED, RoutingDomainName: 'Other' }), 'ALREADY_EXISTS', /already in routing domain/);
  throwsCode(() => addMapping(l, { RoutingDomainID: '33333333-2222-3333-4444-000000000003', RoutingDomainName: 'blue' }), 'ALREADY_EXISTS', /named 'blue'/);
  throwsCode(() => addMapping(l, { RoutingDomainID: '33333333-2222-3333-4444-000000000003', RoutingDomainName: 'Green', IsolationID: [5001] }), 'HNV_BAD_POLICY', /virtual subnet 5001 is already in routing domain/);
  throwsCode(() => addMapping([], { RoutingDomainID: BLUE, RoutingDomainName: 'Blue', IsolationID: [5001], IsolationName: ['a', 'b'] }), 'HNV_BAD_POLICY', /^IsolationName: 2 names for 1/);
  throwsCode(() => addMapping([], { RoutingDomainID: BLUE, RoutingDomainName: 'Blue', IsolationID: [5001, 5001] }), 'HNV_BAD_POLICY', /listed twice/);
  throwsCode(() => setMapping(l, 'Red', { IsolationID: [5002] }), 'HNV_BAD_POLICY', /5002 is already in routing domain/);
  l = setMapping(l, BLUE.toUpperCase(), { NewRoutingDomainName: 'Blue2', IsolationID: [5003] });
  assert.deepEqual([l[0]!.routingDomainName, l[0]!.isolationIds, l[0]!.isolationNames], ['Blue2', [5003], ['5003']]);
  throwsCode(() => setMapping(l, 'Blue2', { NewRoutingDomainName: 'red' }), 'ALREADY_EXISTS', /named 'red'/);
  l = removeMapping(l, 'red');
  assert.deepEqual(l.map((x) => x.routingDomainName), ['Blue2']);
  throwsCode(() => removeMapping(l, 'Red'), 'NOT_FOUND', /no routing domain 'Red'/);
});

test('the isolation settings and -VirtualSubnetId name one VSID; routing domain mappings bound it', () => {
  const d = defaultIsolation();
  const native = setIsolation(d, { IsolationMode: 'NativeVirtualSubnet', DefaultIsolationID: 5001, AllowUntaggedTraffic: true });
  assert.equal(isolationVsid(native), 5001);
  assert.equal(isolationVsid(setIsolation(d, { IsolationMode: 'ExternalVirtualSubnet', DefaultIsolationID: 5002 })), 5002);
  assert.equal(isolationVsid(setIsolation(d, { IsolationMode: 'Vlan', DefaultIsolationID: 10 })), undefined);
  assert.equal(isolationVsid(d), undefined);
  // Set-VMNetworkAdapter -VirtualSubnetId: the mode follows; 0 (none) takes a subnet mode back to None, leaves Vlan alone.
  assert.deepEqual(withVsid(d, 6001), { isolationMode: 'NativeVirtualSubnet', defaultIsolationId: 6001, allowUntaggedTraffic: true, multiTenantStack: 'Off' });
  assert.deepEqual(withVsid(native, undefined), d);
  const vlan = setIsolation(d, { IsolationMode: 'Vlan', DefaultIsolationID: 10 });
  assert.equal(withVsid(vlan, undefined), vlan);
  assert.equal(withVsid(vlan, 5001).isolationMode, 'NativeVirtualSubnet');
  throwsCode(() => withVsid(d, 12), 'HNV_BAD_POLICY', /^VirtualSubnetId: 12 is not a virtual subnet ID/);
  const maps = addMapping([], { RoutingDomainID: BLUE, RoutingDomainName: 'Blue', IsolationID: [5001, 5002] });
  checkMapped(5002, maps, 'DefaultIsolationID');
  checkMapped(6001, [], 'DefaultIsolationID');
  checkMapped(undefined, maps, 'DefaultIsolationID');
  throwsCode(() => checkMapped(6001, maps, 'DefaultIsolationID'), 'HNV_BAD_POLICY', /^DefaultIsolationID: virtual subnet 6001 is in none of the adapter's routing domains \(Blue: 5001, 5002\)/);
});
