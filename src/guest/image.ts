// The test guest image: runs scripts/build-guest.sh (which builds only when its recipe
// changed) once per process and returns the kernel and initrd paths.
import { join } from 'node:path';
import { runBuildScript, onceBuild } from './build-script.ts';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** manifest.json beside them: kernel package and version, module list, recipe hash. */
  manifest: string;
}

/** Builds (or finds in the cache) the test guest; env VMHOST_GUEST_CACHE moves the cache. */
export const ensureGuestImage: () => Promise<GuestImage> = onceBuild(async () => {
  const dir = await runBuildScript('build-guest.sh', 'GUEST_IMAGE_BUILD_FAILED', 'ensureGuestImage', 15 * 60_000);
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), manifest: join(dir, 'manifest.json') };
});

/**
 * A bootable ISO (grub for BIOS and UEFI, unsigned) whose menu boots the test guest with
 * hostname "dvd-guest": what "install from an ISO" looks like in tests.
 */
export const ensureBootIso: () => Promise<string> = onceBuild(() => runBuildScript('build-boot-iso.sh', 'GUEST_IMAGE_BUILD_FAILED', 'ensureBootIso', 15 * 60_000));
