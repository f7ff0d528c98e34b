import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addPaths, addSwitch, removePaths, removeSwitch, switchesOf, createPools, emptyBook, findPool, listPools, membersUnder, poolOf, poolsNamed, pruneMembers, removePool, renamePool, setMember, setParent,
} from './resource-pools.ts';
import { applyPoolSample, newPoolMetering, poolReport } from './pool-metering.ts';
import type { Reading } from './metering-state.ts';

test('pools: one per type, parents of the same type without loops, Primordial built in', () => {
  let b = createPools(emptyBook(), { name: 'Tenant', types: ['Ethernet', 'VHD'], paths: [] });
  b = createPools(b, { name: 'Child', types: ['VHD'], parents: ['tenant'] });
  assert.equal(findPool(b, 'child', 'VHD')?.parent, 'Tenant', 'names are case-insensitive; the stored spelling is kept');
  assert.throws(() => createPools(b, { name: 'TENANT', types: ['VHD'] }), /already exists/);
  assert.throws(() => createPools(b, { name: 'Primordial', types: ['VHD'] }), /built-in root/);
  assert.throws(() => createPools(b, { name: 'X', types: ['Memory'], parents: ['Tenant'] }), /no Memory pool named 'Tenant'/);
  assert.throws(() => createPools(b, { name: 'X', types: ['Memory'], paths: ['/srv'] }), /only VHD, ISO and VFD pools have paths/);
  assert.throws(() => createPools(b, { name: 'X', types: ['VHD'], paths: ['rel/dir'] }), /absolute/);
  assert.throws(() => setParent(b, findPool(b, 'Tenant', 'VHD')!, 'Child'), /loop/);
  assert.throws(() => setParent(b, findPool(b, 'Tenant', 'VHD')!, 'Tenant'), /loop/);
  assert.deepEqual(listPools(b, 'primordial', ['VHD']).map((p) => p.name), ['Primordial']);
  assert.deepEqual(listPools(b, undefined, ['VHD']).map((p) => p.name), ['Primordial', 'Tenant', 'Child']);
  assert.deepEqual(poolsNamed(b, 'tenant').map((p) => p.type), ['Ethernet', 'VHD']);
  assert.throws(() => poolsNamed(b, 'Tenant', ['Memory']), /RESOURCE_POOL_NOT_FOUND|No resource pool named 'Tenant' of type Memory/);
});

test('members: by type and device, Primordial takes out, VHD paths checked, rename follows, remove refused while in use', () => {
  let b = createPools(emptyBook(), { name: 'T', types: ['VHD', 'Ethernet', 'Memory'], paths: ['/srv/tenant'] });
  b = createPools(b, { name: 'Sub', types: ['Ethernet'], parents: ['T'] });
  assert.throws(() => setMember(b, { type: 'VHD', vmId: 'vm1', deviceId: 'd1' }, 'T', '/var/other/d.vhdx'), /not under the paths/);
  assert.throws(() => setMember(b, { type: 'VHD', vmId: 'vm1', deviceId: 'd1' }, 'T', '/srv/tenantX/d.vhdx'), /not under the paths/);
  b = setMember(b, { type: 'VHD', vmId: 'vm1', deviceId: 'd1' }, 't', '/srv/tenant/a/d.vhdx');
  b = setMember(b, { type: 'Ethernet', vmId: 'vm1', deviceId: 'n1' }, 'T');
  b = setMember(b, { type: 'Ethernet', vmId: 'vm2', deviceId: 'n2' }, 'Sub');
  assert.throws(() => setMember(b, { type: 'Memory', vmId: 'vm1', deviceId: null }, 'Nope'), /No Memory resource pool named 'Nope'/);
  assert.equal(poolOf(b, 'VHD', 'vm1', 'd1'), 'T');
  assert.equal(poolOf(b, 'Memory', 'vm1', null), 'Primordial');
  assert.deepEqual(membersUnder(b, findPool(b, 'T', 'Ethernet')!).map((m) => m.deviceId).sort(), ['n1', 'n2'], 'a parent counts its children\'s members');
  assert.throws(() => removePool(b, findPool(b, 'T', 'Ethernet')!), /child pools Sub and 1 member/);
  b = renamePool(b, findPool(b, 'T', 'Ethernet')!, 'Tenant');
  assert.equal(poolOf(b, 'Ethernet', 'vm1', 'n1'), 'Tenant');
  assert.equal(findPool(b, 'Sub', 'Ethernet')!.parent, 'Tenant');
  assert.equal(poolOf(b, 'VHD', 'vm1', 'd1'), 'T', 'the VHD pool of the old name is another pool');
  b = setMember(b, { type: 'VHD', vmId: 'vm1', deviceId: 'd1' }, 'Primordial');
  assert.equal(poolOf(b, 'VHD', 'vm1', 'd1'), 'Primordial');
  b = removePool(b, findPool(b, 'T', 'VHD')!);
  assert.equal(findPool(b, 'T', 'VHD'), undefined);
  b = pruneMembers(b, (m) => m.vmId !== 'vm2', () => true);
  assert.deepEqual(b.members.map((m) => m.deviceId), ['n1']);
});

const r = (key: string, value: number, counter: Reading['counter'] = 'networkInboundBytes'): Reading => ({ key, counter, value, onFirstSight: 'baseline' });

test('pool metering: members start at first sight, their sum is the report, a member that left keeps what it counted', () => {
  const base = { running: false, memoryBytes: 0, diskAllocatedBytes: 0 };
  let s = newPoolMetering('2026-01-01T00:00:00.000Z');
  // First sight: baselines (what the NICs did before joining is not the pool's).
  s = applyPoolSample(s, 1, [{ key: 'a', sample: { ...base, seconds: 1, readings: [r('a', 1000)] } }, { key: 'b', sample: { ...base, seconds: 1, readings: [r('b', 5000)] } }]);
  s = applyPoolSample(s, 1, [{ key: 'a', sample: { ...base, seconds: 1, readings: [r('a', 1300)] } }, { key: 'b', sample: { ...base, seconds: 1, readings: [r('b', 5200)] } }]);
  assert.equal(poolReport([s], 1000).NetworkInboundBytes, 500);
  // b leaves: its 200 stay, it adds nothing more.
  s = applyPoolSample(s, 1, [{ key: 'a', sample: { ...base, seconds: 1, readings: [r('a', 1400)] } }]);
  const rep = poolReport([s], 1000);
  assert.equal(rep.NetworkInboundBytes, 600);
  assert.equal(rep.MeteringDuration.TotalSeconds, 3);
  // Memory: the sum of averages; the extremes of any member.
  let m = newPoolMetering('2026-01-01T00:00:00.000Z');
  const mem = (key: string, bytes: number) => ({ key, sample: { ...base, seconds: 1, running: true, memoryBytes: bytes, readings: [] } });
  m = applyPoolSample(m, 1, [mem('x', 256 << 20), mem('y', 512 << 20)]);
  m = applyPoolSample(m, 1, [mem('x', 256 << 20), mem('y', 512 << 20)]);
  m = applyPoolSample(m, 1, [mem('x', 256 << 20), mem('y', 512 << 20)]);
  const mr = poolReport([m], 1000);
  assert.equal(mr.MinimumMemoryUsage, 256);
  assert.equal(mr.MaximumMemoryUsage, 512);
  assert.equal(mr.AverageMemoryUsage, 512, '(2 s × 768 MB) over 3 s: the first sample is each member\'s baseline');
});

test('storage paths: added once, removal refused while a member drive would be left outside them', () => {
  let b = createPools(emptyBook(), { name: 'S', types: ['VHD', 'Ethernet'], paths: ['/srv/a'] });
  assert.throws(() => addPaths(b, findPool(b, 'S', 'Ethernet')!, ['/srv/b']), /only VHD, ISO and VFD pools have paths/);
  b = addPaths(b, findPool(b, 'S', 'VHD')!, ['/srv/b/', '/srv/a']);
  assert.deepEqual(findPool(b, 'S', 'VHD')!.paths, ['/srv/a', '/srv/b']);
  b = setMember(b, { type: 'VHD', vmId: 'vm1', deviceId: 'd1' }, 'S', '/srv/a/disk.vhdx');
  const pathOf = () => '/srv/a/disk.vhdx';
  assert.throws(() => removePaths(b, findPool(b, 'S', 'VHD')!, ['/srv/a'], pathOf), /member drives under the paths removed \(\/srv\/a\/disk.vhdx\)/);
  assert.throws(() => removePaths(b, findPool(b, 'S', 'VHD')!, ['/srv/c'], pathOf), /not a path/);
  b = removePaths(b, findPool(b, 'S', 'VHD')!, ['/srv/b'], pathOf);
  assert.deepEqual(findPool(b, 'S', 'VHD')!.paths, ['/srv/a']);
});

test('switches in Ethernet pools: joined once, renamed with the pool, pool removal refused while they are in it', () => {
  let b = createPools(emptyBook(), { name: 'E', types: ['Ethernet', 'VHD'] });
  assert.throws(() => addSwitch(b, ['Nope'], 'sw1'), /No Ethernet resource pool named 'Nope'/);
  assert.throws(() => addSwitch(b, ['Primordial'], 'sw1'), /No Ethernet resource pool/);
  b = addSwitch(addSwitch(b, ['e'], 'sw1'), ['E'], 'sw1');
  assert.deepEqual(switchesOf(b, 'E'), ['sw1']);
  assert.throws(() => removePool(b, findPool(b, 'E', 'Ethernet')!), /1 switch/);
  b = renamePool(b, findPool(b, 'E', 'Ethernet')!, 'F');
  assert.deepEqual(switchesOf(b, 'F'), ['sw1']);
  b = removeSwitch(b, ['f'], 'sw1');
  assert.deepEqual(switchesOf(b, 'F'), []);
  b = removePool(b, findPool(b, 'F', 'Ethernet')!);
});
