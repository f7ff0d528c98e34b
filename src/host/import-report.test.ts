// Every kind of incompatibility the pure judge names, each from the one fact that causes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { incompatibilities, versionIncompatibility, type ImportFacts, type IncompatibilityKind } from './import-report.ts';
import { defaultDynamicMemory, type VmConfig } from './vm-config.ts';

const vm: VmConfig = {
  id: '11111111-1111-4111-a111-111111111111', name: 'web', generation: 2, processorCount: 2, memoryStartupBytes: 512 * 1048576, numaNodes: 1,
  secureBoot: true, notes: '', boot: { kind: 'TestGuest' }, bios: { startupOrder: [], numLockEnabled: false }, bootOrder: [], scsiControllers: 1,
  floppyPath: null, com2Path: null, integrationServices: {} as VmConfig['integrationServices'],
  hardDrives: [{ id: 'd1', path: '/exp/Virtual Hard Disks/web.vhdx', controllerType: 'SCSI', controllerNumber: 0, controllerLocation: 0, maximumIops: 0, minimumIops: 0 }],
  dvdDrives: [{ id: 'cd', path: '/iso/setup.iso', controllerType: 'SCSI', controllerNumber: 0, controllerLocation: 1 }],
  networkAdapters: [{ id: 'n1', name: 'Network Adapter', mac: '00:15:5D:00:00:01', dynamicMac: true, switchName: 'LAN', isLegacy: false, policy: {} as VmConfig['networkAdapters'][0]['policy'] }],
  parentSnapshotId: null, snapshotFileLocation: '/exp/Snapshots', createdAt: '', dynamicMemory: defaultDynamicMemory(256 * 1024 * 1024), smartPagingFilePath: null, configVersion: 3,
};

const clean: ImportFacts = {
  vm, host: { logicalProcessors: 4, memoryBytes: 8 * 1024 ** 3, generations: [1, 2] }, vms: [{ id: 'other', name: 'db', macs: ['00:15:5D:00:00:99'] }],
  switches: [{ name: 'LAN', type: 'Internal', degraded: false, netAdapterName: null }], disks: [], missing: new Set(), firmwareVars: 'Exported',
  savedState: 'None', checkpointsWithoutMemory: [], collisions: [],
};

const kinds = (f: Partial<ImportFacts>) => incompatibilities({ ...clean, ...f }).map((i) => i.Kind);
const withVm = (p: Partial<VmConfig>) => ({ vm: { ...vm, ...p } });

test('a VM that fits has no incompatibilities', () => assert.deepEqual(kinds({}), []));

const cases: [IncompatibilityKind, Partial<ImportFacts>][] = [
  ['SwitchNotFound', { switches: [] }],
  ['SwitchAdapterMissing', { switches: [{ name: 'lan', type: 'External', degraded: true, netAdapterName: 'eth9' }] }],
  ['MacAddressInUse', { vms: [{ id: 'other', name: 'db', macs: ['00:15:5d:00:00:01'] }] }],
  ['VhdNotFound', { disks: [{ driveId: 'd1', problem: 'missing', path: '/exp/Virtual Hard Disks/web.vhdx', detail: 'no such file' }] }],
  ['VhdParentNotFound', { disks: [{ driveId: 'd1', problem: 'missing-parent', path: '/base.vhdx', detail: 'the parent of web.vhdx' }] }],
  ['VhdParentMismatch', { disks: [{ driveId: 'd1', problem: 'parent-mismatch', path: '/base.vhdx', detail: 'DataWriteGuid differs' }] }],
  ['VhdUnreadable', { disks: [{ driveId: 'd1', problem: 'unreadable', path: '/x', detail: 'not a disk' }] }],
  ['VhdInUse', { disks: [{ driveId: 'd1', problem: 'in-use', path: '/x', detail: 'held' }] }],
  ['QosOutOfRange', withVm({ hardDrives: [{ ...vm.hardDrives[0]!, maximumIops: 100, minimumIops: 200 }] })],
  ['DuplicateVmId', { vms: [{ id: vm.id.toUpperCase(), name: 'same', macs: [] }] }],
  ['NameInUse', { vms: [{ id: 'x', name: 'WEB', macs: [] }] }],
  ['MemoryAboveHost', withVm({ memoryStartupBytes: 16 * 1024 ** 3 })],
  ['ProcessorsAboveHost', withVm({ processorCount: 8 })],
  ['GenerationNotSupported', withVm({ generation: 3 as VmConfig['generation'] })],
  ['PathCollision', { collisions: ['/dest/web.vhdx'] }],
  ['IsoNotFound', { missing: new Set(['/iso/setup.iso']) }],
  ['FloppyNotFound', { ...withVm({ floppyPath: '/f.vfd' }), missing: new Set(['/f.vfd']) }],
  ['KernelNotFound', { ...withVm({ boot: { kind: 'Kernel', kernel: '/k', initrd: '/i' } }), missing: new Set(['/i']) }],
  ['FirmwareVarsMissing', { firmwareVars: 'Missing' }],
  ['SavedStateMissing', { savedState: 'MemoryMissing' }],
  ['CheckpointMemoryMissing', { checkpointsWithoutMemory: [{ id: 'c', name: 'before' }] }],
];

for (const [kind, facts] of cases) {
  test(`${kind}: named once, with a message id, its source and a fix`, () => {
    const found = incompatibilities({ ...clean, ...facts });
    assert.deepEqual(found.map((i) => i.Kind), [kind]);
    const [i] = found;
    assert.ok(i!.MessageId > 0 && i!.Message.length > 10 && i!.Fix.length > 10, JSON.stringify(i));
    assert.ok(i!.Source.Type);
  });
}

test('every kind has its own message id; the missing switch is Hyper-V\'s 33012 and names the switch', () => {
  const all = cases.map(([, f]) => incompatibilities({ ...clean, ...f })[0]!.MessageId);
  assert.equal(new Set(all).size, all.length);
  const [sw] = incompatibilities({ ...clean, switches: [] });
  assert.equal(sw!.MessageId, 33012);
  assert.match(sw!.Message, /Could not find Ethernet switch 'LAN'/);
  assert.match(sw!.Fix, /-SwitchName/);
});

test('fixed facts clear the item: fresh firmware variables accepted, the old VM\'s own MAC is no conflict', () => {
  assert.deepEqual(kinds({ firmwareVars: 'New' }), []);
  assert.deepEqual(kinds({ vms: [{ id: vm.id, name: 'web', macs: [vm.networkAdapters[0]!.mac] }] }), ['DuplicateVmId']);
  assert.deepEqual(kinds({ ...withVm({ generation: 1 }), firmwareVars: 'Missing' }), [], 'generation 1 has no NVRAM');
});

test('a newer config version is its own item', () => {
  const i = versionIncompatibility('/exp/Virtual Machines/x.json', 9, 2);
  assert.equal(i.Kind, 'ConfigVersionUnsupported');
  assert.match(i.Message, /version 9; this host reads versions up to 2/);
});
