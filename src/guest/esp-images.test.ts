// Secure boot with plain QEMU and OVMF on the two ESP disks built from the test guest:
// the signed chain (shim → GRUB → kernel) boots under secure boot; the unsigned GRUB is
// refused by the secure boot firmware ("Access Denied") and boots without secure boot.
// Three short boots (busybox guest, ~10–30 s each under TCG). Needs qemu-system-x86_64,
// qemu-img and OVMF; skipped without them unless CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureEspImages } from './index.ts';
import { PlainQemu, skipUnless, type Firmware } from './image-test-support.ts';

const skip = skipUnless(['qemu-system-x86_64', 'qemu-img', 'mformat', 'sfdisk']);
const DEADLINE_MS = 180_000;

async function boot(t: { after: (fn: () => Promise<void>) => void }, disk: string, firmware: Firmware): Promise<PlainQemu> {
  const vm = new PlainQemu({ firmware, base: disk, bus: 'scsi', memoryMiB: 512 });
  t.after(() => vm.close());
  await vm.agent.connect();
  return vm;
}

test('ESP disks and secure boot', { skip, timeout: 900_000 }, async (t) => {
  const images = await ensureEspImages();

  await t.test('esp-signed boots under secure boot (shim → signed GRUB → signed kernel)', async (t) => {
    const vm = await boot(t, images.signed, { kind: 'uefi', secureBoot: true });
    const info = await vm.agent.waitReady(DEADLINE_MS);
    t.diagnostic(`agent ready, guest uptime ${info.uptimeMs} ms`);
    // The kernel is quiet on the console; its log says whether the firmware enforced.
    const r = await vm.agent.exec('dmesg | grep -i "secure boot"');
    assert.match(r.stdout.toString(), /Secure boot enabled/, r.stdout.toString());
  });

  await t.test('esp-unsigned is refused under secure boot', async (t) => {
    const vm = await boot(t, images.unsigned, { kind: 'uefi', secureBoot: true });
    await vm.waitSerial(/failed to load Boot\d+ .* Access Denied/, DEADLINE_MS);
    // Nothing else on the disk may start: no GRUB, no kernel, no agent.
    await assert.rejects(vm.agent.waitReady(5_000));
    assert.doesNotMatch(vm.serial, /Welcome to GRUB|vmhost-guest: up/);
  });

  await t.test('esp-unsigned boots without secure boot', async (t) => {
    const vm = await boot(t, images.unsigned, { kind: 'uefi', secureBoot: false });
    await vm.agent.waitReady(DEADLINE_MS);
    const r = await vm.agent.exec('dmesg | grep -i "secure boot"');
    assert.doesNotMatch(r.stdout.toString(), /Secure boot enabled/);
  });
});
