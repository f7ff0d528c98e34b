// Two small UEFI-only disks for secure boot tests, built from the test guest by
// scripts/build-esp-guest.sh: `signed` boots through Debian's signed chain (shim → GRUB →
// kernel) under secure boot; `unsigned` has an unsigned GRUB as BOOTX64.EFI, which the
// secure boot firmware must refuse and firmware without secure boot boots.
import { join } from 'node:path';
import { runBuildScript, onceBuild } from './build-script.ts';

export interface EspImages {
  /** Dynamic VHDX: GPT with one ESP, shim → signed GRUB → signed kernel + busybox initrd. */
  signed: string;
  /** Dynamic VHDX: the same, but EFI/BOOT/BOOTX64.EFI is Debian's unsigned monolithic GRUB. */
  unsigned: string;
  /** manifest.json beside them: PARTUUIDs, package versions, the test guest they come from. */
  manifest: string;
}

/** Builds (or finds in the cache) both ESP disks; env VMHOST_GUEST_CACHE moves the cache. */
export const ensureEspImages: () => Promise<EspImages> = onceBuild(async () => {
  const dir = await runBuildScript('build-esp-guest.sh', 'GUEST_IMAGE_BUILD_FAILED', 'ensureEspImages', 20 * 60_000);
  return { signed: join(dir, 'esp-signed.vhdx'), unsigned: join(dir, 'esp-unsigned.vhdx'), manifest: join(dir, 'manifest.json') };
});
