import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootWatch, firmwareBootFailure } from './boot-watch.ts';

test('firmware failure lines are recognised; ordinary boot chatter is not', () => {
  assert.match(firmwareBootFailure('BdsDxe: failed to start Boot0001 "UEFI QEMU QEMU HARDDISK " from PciRoot(0x0)/Pci(0x2,0x0): Access Denied\r\n') ?? '',
    /secure boot refused to start Boot0001 "UEFI QEMU QEMU HARDDISK " \(Access Denied\)/);
  assert.match(firmwareBootFailure('BdsDxe: failed to load Boot0002 "x" from y: Security Violation') ?? '', /Security Violation/);
  assert.equal(firmwareBootFailure('BdsDxe: No bootable option or device was found.'), 'the UEFI firmware found no bootable device');
  assert.equal(firmwareBootFailure('Booting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.'), 'the BIOS found no bootable device');
  assert.equal(firmwareBootFailure('BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM" from …\nBdsDxe: starting Boot0001'), undefined);
  assert.equal(firmwareBootFailure('Booting from DVD/CD...\nBooting from 0000:7c00'), undefined);
});

test('BootWatch reads only what the firmware writes after the mark (also before begin), across polls', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bootwatch-'));
  try {
    const serial = join(dir, 'serial.log');
    await writeFile(serial, 'No bootable device.\n'); // an earlier run's failure must not count
    const failures: string[] = [];
    const mark = await BootWatch.mark([serial, join(dir, 'absent.log')]);
    // QEMU may print before the VM's runtime exists to listen: that output counts.
    await appendFile(serial, 'BdsDxe: No bootable option or ');
    const w = mark.begin((r) => failures.push(r));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(failures, []);
    await appendFile(serial, 'device was found.\r\n');
    const deadline = Date.now() + 5000;
    while (failures.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    w.stop();
    assert.deepEqual(failures, ['the UEFI firmware found no bootable device'], 'a line split across two polls is still seen, once');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
