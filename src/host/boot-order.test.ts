import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import {
  DEFAULT_STARTUP_ORDER, bootIndexes, bootOrderView, bootSource, hasBootSignature, parseStartupOrder, resolveBootDevices, startupOrderWithFirst,
  withFirstBootDevice,
} from './boot-order.ts';
import { defaultDynamicMemory, type NetworkAdapter, type VmConfig } from './vm-config.ts';
import type { DvdDrive, HardDrive } from './drives.ts';

const hd = (id: string, controllerType: 'IDE' | 'SCSI', controllerNumber: number, controllerLocation: number): HardDrive =>
  ({ id, path: `/d/${id}.vhdx`, controllerType, controllerNumber, controllerLocation, maximumIops: 0, minimumIops: 0 });
const dvd = (id: string, controllerType: 'IDE' | 'SCSI', controllerNumber: number, controllerLocation: number, path: string | null): DvdDrive =>
  ({ id, path, controllerType, controllerNumber, controllerLocation });
const nic = (id: string, name: string, isLegacy = false): NetworkAdapter =>
  ({ id, name, mac: '00:15:5D:00:00:01', dynamicMac: true, switchName: null, isLegacy, policy: {} as NetworkAdapter['policy'] });

function vm(p: Partial<VmConfig>): VmConfig {
  return {
    id: 'vm', name: 'v', generation: 2, processorCount: 1, memoryStartupBytes: 256 << 20, numaNodes: 1, secureBoot: true, notes: '',
    boot: { kind: 'TestGuest' }, bios: { startupOrder: [...DEFAULT_STARTUP_ORDER], numLockEnabled: false }, bootOrder: [], scsiControllers: 1, floppyPath: null, com2Path: null, parentSnapshotId: null,
    integrationServices: {} as VmConfig['integrationServices'], hardDrives: [], dvdDrives: [], networkAdapters: [], createdAt: '', snapshotFileLocation: '', dynamicMemory: defaultDynamicMemory(256 * 1024 * 1024), smartPagingFilePath: null, configVersion: 3, ...p,
  };
}
const all = () => true;
const none = () => false;
const bad = (param: string) => (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && (e as Error).message.startsWith(`${param}:`);

test('nothing to boot runs the test guest; a bootable disk, DVD media or network-first boots the firmware', () => {
  assert.equal(bootSource(vm({ networkAdapters: [nic('n', 'Network Adapter')] }), all), 'TestGuest', 'a generation 2 NIC alone is not network boot');
  assert.equal(bootSource(vm({ hardDrives: [hd('a', 'SCSI', 0, 0)] }), none), 'TestGuest', 'a blank data disk');
  assert.equal(bootSource(vm({ hardDrives: [hd('a', 'SCSI', 0, 0)] }), all), 'Firmware');
  assert.equal(bootSource(vm({ dvdDrives: [dvd('d', 'SCSI', 0, 1, null)] }), all), 'TestGuest', 'an empty DVD drive');
  assert.equal(bootSource(vm({ dvdDrives: [dvd('d', 'SCSI', 0, 1, '/i.iso')] }), none), 'Firmware');
  const n = nic('n', 'Network Adapter');
  assert.equal(bootSource(vm({ networkAdapters: [n], bootOrder: ['n'] }), none), 'Firmware', 'network first');
  assert.equal(bootSource(vm({ generation: 1, networkAdapters: [n] }), none), 'TestGuest', 'generation 1 boots only legacy adapters');
  assert.equal(bootSource(vm({ generation: 1, networkAdapters: [nic('l', 'L', true)] }), none), 'Firmware');
  assert.equal(bootSource(vm({ boot: { kind: 'Kernel', kernel: '/k' }, hardDrives: [hd('a', 'SCSI', 0, 0)] }), all), 'Kernel');
});

test('generation 2: stored order first, then devices added since (DVDs, disks, adapters); stale ids skipped', () => {
  const c = vm({
    hardDrives: [hd('disk1', 'SCSI', 0, 1), hd('disk0', 'SCSI', 0, 0)], dvdDrives: [dvd('cd', 'SCSI', 0, 2, '/i.iso')],
    networkAdapters: [nic('net', 'Network Adapter')], bootOrder: ['gone', 'net', 'disk1'],
  });
  assert.deepEqual(bootOrderView(c).map((b) => b.DeviceRef), ['NetworkAdapter:Network Adapter', 'SCSI:0:1', 'SCSI:0:2', 'SCSI:0:0']);
  assert.deepEqual([...bootIndexes(c, all)], [['net', 1], ['disk1', 2], ['cd', 3], ['disk0', 4]]);
  assert.deepEqual(bootOrderView(c)[0], { BootType: 'Network', Device: "Network Adapter 'Network Adapter'", Description: 'EFI Network (00:15:5D:00:00:01)', DeviceRef: 'NetworkAdapter:Network Adapter', Id: 'net' });
  assert.deepEqual(withFirstBootDevice(c, 'scsi:0:0'), ['disk0', 'net', 'disk1', 'cd']);
  assert.equal(bootIndexes(vm({ networkAdapters: [nic('n', 'x')] }), all).size, 0, 'the test guest boots by kernel: no bootindex');
});

test('generation 1: startup order of classes; only IDE disks, IDE DVDs and legacy adapters get a bootindex', () => {
  const c = vm({
    generation: 1, bios: { startupOrder: ['IDE', 'LegacyNetworkAdapter', 'CD', 'Floppy'], numLockEnabled: false },
    hardDrives: [hd('ide1', 'IDE', 0, 1), hd('ide0', 'IDE', 0, 0), hd('scsi', 'SCSI', 0, 0)], dvdDrives: [dvd('cd', 'IDE', 1, 0, '/i.iso')],
    networkAdapters: [nic('syn', 'A'), nic('leg', 'B', true)],
  });
  assert.deepEqual([...bootIndexes(c, all)], [['ide0', 1], ['ide1', 2], ['leg', 3], ['cd', 4]]);
  assert.deepEqual(startupOrderWithFirst(DEFAULT_STARTUP_ORDER, 'LegacyNetworkAdapter'), ['LegacyNetworkAdapter', 'CD', 'IDE', 'Floppy']);
});

test('device references resolve to ids; unknown devices and bad orders are errors naming them', () => {
  const c = vm({ hardDrives: [hd('d0', 'SCSI', 0, 0)], networkAdapters: [nic('n1', 'Front'), nic('n2', 'Back')] });
  assert.deepEqual(resolveBootDevices(c, ['NetworkAdapter:back', 'SCSI:0:0', 'n1'], 'BootOrder'), ['n2', 'd0', 'n1']);
  assert.throws(() => resolveBootDevices(c, ['SCSI:0:5'], 'BootOrder'), (e: unknown) => bad('BootOrder')(e) && /no drive at SCSI 0:5/.test((e as Error).message));
  assert.throws(() => resolveBootDevices(c, ['NetworkAdapter'], 'BootOrder'), (e: unknown) => bad('BootOrder')(e) && /2 network adapters/.test((e as Error).message));
  assert.throws(() => resolveBootDevices(c, ['NetworkAdapter:Side'], 'FirstBootDevice'), (e: unknown) => bad('FirstBootDevice')(e) && /named 'Side'/.test((e as Error).message));
  assert.throws(() => resolveBootDevices(c, ['d0', 'SCSI:0:0'], 'BootOrder'), (e: unknown) => bad('BootOrder')(e) && /listed twice/.test((e as Error).message));
  assert.throws(() => resolveBootDevices(c, ['floppy'], 'BootOrder'), bad('BootOrder'));
  assert.throws(() => resolveBootDevices(vm({ generation: 1 }), ['SCSI:0:0'], 'BootOrder'), /Set-VMBios/);
  assert.deepEqual(parseStartupOrder(['ide', 'CD', 'floppy', 'legacynetworkadapter'], 'v'), ['IDE', 'CD', 'Floppy', 'LegacyNetworkAdapter']);
  assert.throws(() => parseStartupOrder(['IDE', 'CD', 'Floppy'], 'v'), bad('StartupOrder'));
  assert.throws(() => parseStartupOrder(['IDE', 'IDE', 'CD', 'Floppy'], 'v'), bad('StartupOrder'));
  assert.throws(() => parseStartupOrder(['IDE', 'CD', 'Floppy', 'USB'], 'v'), /'USB' is not a startup device/);
});

test('the boot signature is 0x55AA at bytes 510-511 of the first sector', () => {
  const s = new Uint8Array(512);
  assert.equal(hasBootSignature(s), false);
  s[510] = 0x55; s[511] = 0xaa;
  assert.equal(hasBootSignature(s), true);
  assert.equal(hasBootSignature(s.subarray(0, 511)), false);
});
