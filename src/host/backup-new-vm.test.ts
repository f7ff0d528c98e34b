// Restore-VMBackup -NewVMName's config (pure): a new VM, not a second copy of the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newVmConfigFromBackup } from './backup-new-vm.ts';
import { defaultDynamicMemory, type VmConfig } from './vm-config.ts';

const old: VmConfig = {
  id: '11111111-1111-4111-a111-111111111111', name: 'web', generation: 2, processorCount: 2, memoryStartupBytes: 512 * 1048576, numaNodes: 1,
  secureBoot: true, notes: 'n', boot: { kind: 'TestGuest' }, bios: { startupOrder: [], numLockEnabled: false }, bootOrder: ['d1', 'n1'], scsiControllers: 1,
  floppyPath: null, com2Path: null, integrationServices: {} as VmConfig['integrationServices'],
  hardDrives: [{ id: 'd1', path: '/vms/web.vhdx', controllerType: 'SCSI', controllerNumber: 0, controllerLocation: 0, maximumIops: 0, minimumIops: 0 }],
  dvdDrives: [],
  networkAdapters: [
    { id: 'n1', name: 'Network Adapter', mac: '00:15:5D:00:00:01', dynamicMac: true, switchName: 'LAN', isLegacy: false, policy: {} as VmConfig['networkAdapters'][0]['policy'] },
    { id: 'n2', name: 'Static', mac: '00:15:5D:00:00:02', dynamicMac: false, switchName: 'LAN', isLegacy: false, policy: {} as VmConfig['networkAdapters'][0]['policy'] },
  ],
  parentSnapshotId: 'snap', snapshotFileLocation: '/vms/old/snapshots', createdAt: '2026-01-01T00:00:00.000Z', dynamicMemory: defaultDynamicMemory(512 * 1048576), smartPagingFilePath: null, configVersion: 3,
};

test('new id and device ids, the restored files, new dynamic MACs (static ones kept), no checkpoint', () => {
  let n = 0;
  const vm = newVmConfigFromBackup({
    source: old, name: 'web-restored', disks: new Map([['d1', '/restored/web.vhdx']]),
    snapshotDir: (id) => `/data/vms/${id}/snapshots`, newMac: (taken) => { assert.equal(taken.size, n); return `00:15:5D:00:01:0${++n}`; },
  }, 'backup b');
  assert.notEqual(vm.id, old.id);
  assert.equal(vm.name, 'web-restored');
  assert.deepEqual(vm.hardDrives.map((d) => d.path), ['/restored/web.vhdx']);
  assert.notEqual(vm.hardDrives[0]!.id, 'd1');
  assert.deepEqual(vm.bootOrder, [vm.hardDrives[0]!.id, vm.networkAdapters[0]!.id], 'the boot order follows the new device ids');
  assert.deepEqual(vm.networkAdapters.map((a) => a.mac), ['00:15:5D:00:01:01', '00:15:5D:00:00:02']);
  assert.equal(vm.parentSnapshotId, null);
  assert.equal(vm.snapshotFileLocation, `/data/vms/${vm.id}/snapshots`);
  assert.deepEqual([vm.processorCount, vm.memoryStartupBytes, vm.notes], [2, 512 * 1048576, 'n']);
});

test('a config of an older version is upgraded; a newer one is refused', () => {
  const v1 = { id: old.id, name: 'web', generation: 1, processorCount: 1, memoryStartupBytes: 256 * 1048576, hardDrives: [], dvdDrives: [], networkAdapters: [], createdAt: '' };
  const vm = newVmConfigFromBackup({ source: v1, name: 'x', disks: new Map(), snapshotDir: () => '/s', newMac: () => '00:15:5D:00:01:01' }, 'backup b');
  assert.equal(vm.configVersion, 3);
  assert.throws(() => newVmConfigFromBackup({ source: { ...old, configVersion: 99 }, name: 'x', disks: new Map(), snapshotDir: () => '/s', newMac: () => '' }, 'backup b'), /CONFIG_VERSION_UNSUPPORTED|version 99/);
});
