import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportLayout, fromExportPath, layoutOfConfig, toExportPath } from './export-layout.ts';

test('the layout of an export and back from its config path', () => {
  const l = exportLayout('/x/web', 'id1');
  assert.deepEqual(l, {
    root: '/x/web', config: '/x/web/Virtual Machines/id1.json', stateDir: '/x/web/Virtual Machines/id1',
    vhdDir: '/x/web/Virtual Hard Disks', snapshotDir: '/x/web/Snapshots',
  });
  assert.deepEqual(layoutOfConfig(l.config), l);
  assert.throws(() => layoutOfConfig('/x/web/vm.json'), /not an exported VM's config/);
});

test('paths inside an export are relative; one that climbs out is refused', () => {
  assert.equal(toExportPath('/x/web', '/x/web/Virtual Hard Disks/a.vhdx'), 'Virtual Hard Disks/a.vhdx');
  assert.throws(() => toExportPath('/x/web', '/x/other.vhdx'), /outside the export/);
  assert.equal(fromExportPath('/y/web', 'Virtual Hard Disks/a.vhdx'), '/y/web/Virtual Hard Disks/a.vhdx');
  assert.equal(fromExportPath('/y/web', '/iso/a.iso'), '/iso/a.iso', 'absolute paths (ISOs) stay');
  assert.throws(() => fromExportPath('/y/web', '../../etc/shadow'), /leads outside the export folder/);
});
