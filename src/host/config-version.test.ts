import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { CONFIG_VERSION, UPGRADE_STEPS, upgradeConfig } from './config-version.ts';

// A version 1 config as early daemons wrote it: no drives lists, no BIOS, no controllers.
const v1 = {
  id: '6f1b0a52-5a86-4a55-9d1b-0b8f0c3f9e01', name: 'old', generation: 1, processorCount: 1, memoryStartupBytes: 268435456, numaNodes: 1,
  secureBoot: false, notes: '', boot: { kind: 'TestGuest' }, hardDrives: [{ id: 'd', path: '/x.vhdx', controllerType: 'SCSI', controllerNumber: 1, controllerLocation: 0, maximumIops: 0, minimumIops: 0 }],
  integrationServices: { Heartbeat: false }, createdAt: '2026-01-01T00:00:00.000Z', configVersion: 1,
};

test('the steps are in order and reach the current version', () => {
  assert.deepEqual(UPGRADE_STEPS.map((s) => s.from), Array.from({ length: CONFIG_VERSION - 1 }, (_, i) => i + 1));
});

test('step 1 → 2: every setting explicit, the checkpoint folder named, nothing set kept', () => {
  const out = UPGRADE_STEPS[0]!.up(structuredClone(v1), { snapshotDir: '/data/vms/x/snapshots' });
  assert.equal(out.configVersion, 2);
  assert.equal(out.snapshotFileLocation, '/data/vms/x/snapshots');
  assert.deepEqual([out.dvdDrives, out.networkAdapters, out.bootOrder, out.floppyPath, out.com2Path, out.parentSnapshotId], [[], [], [], null, null, null]);
  assert.equal(out.scsiControllers, 2, 'controllers as the drives used them');
  assert.deepEqual((out.bios as { numLockEnabled: boolean }).numLockEnabled, false);
  const services = out.integrationServices as Record<string, boolean>;
  assert.equal(services.Heartbeat, false, 'a setting the admin made stays');
  assert.equal(services['Time Synchronization'], true, 'a service added later gets its default');
  assert.equal(out.name, 'old');
  // Pure: the input is untouched.
  assert.equal(v1.configVersion, 1);
});

test('step 2 → 3: static memory with Hyper-V\'s dynamic defaults, the smart paging file in the VM\'s folder', () => {
  const v2 = UPGRADE_STEPS[0]!.up(structuredClone(v1), { snapshotDir: 's' });
  const out = UPGRADE_STEPS[1]!.up(v2, { snapshotDir: 's' });
  assert.equal(out.configVersion, 3);
  assert.deepEqual(out.dynamicMemory, { enabled: false, minimumBytes: 268435456, maximumBytes: 1024 ** 4, bufferPercent: 20, priority: 50 });
  assert.equal(out.smartPagingFilePath, null);
});

test('upgradeConfig: a config without a version is 1; a current one passes unchanged', () => {
  const { configVersion: _v, ...unversioned } = v1;
  const r = upgradeConfig(unversioned, { snapshotDir: 's' }, 'test');
  assert.deepEqual([r.from, r.config.configVersion], [1, CONFIG_VERSION]);
  const again = upgradeConfig(r.config as unknown as Record<string, unknown>, { snapshotDir: 'other' }, 'test');
  assert.equal(again.from, CONFIG_VERSION);
  assert.equal(again.config.snapshotFileLocation, 's');
});

test('a newer config is refused, naming both versions', () => {
  assert.throws(() => upgradeConfig({ ...v1, configVersion: CONFIG_VERSION + 1 }, { snapshotDir: 's' }, 'Virtual Machines/x.json'), (e: unknown) => {
    assert.ok(isVmhostError(e, 'CONFIG_VERSION_UNSUPPORTED'));
    assert.match(e.message, new RegExp(`Virtual Machines/x.json has configuration version ${CONFIG_VERSION + 1}; this host reads versions up to ${CONFIG_VERSION}`));
    return true;
  });
  assert.throws(() => upgradeConfig({ ...v1, configVersion: 'two' }, { snapshotDir: 's' }, 'x'), /not a version number/);
});
