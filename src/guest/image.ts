// The test guest image: scripts/build-guest.sh (which builds only when its recipe changed)
// gives the kernel and initrd; scripts/build-boot-iso.sh wraps them in a bootable ISO.
import { join } from 'node:path';
import { runCachedBuild } from './build-script.ts';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** manifest.json beside them: kernel package and version, module list, recipe hash. */
  manifest: string;
}

/** Builds (or finds in the cache) the test guest; env VMHOST_GUEST_CACHE moves the cache. */
export async function ensureGuestImage(): Promise<GuestImage> {
  const dir = await runCachedBuild('build-guest.sh');
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), manifest: join(dir, 'manifest.json') };
}

/**
 * A bootable ISO (grub for BIOS and UEFI, unsigned) whose menu boots the test guest with
 * hostname "dvd-guest": what "install from an ISO" looks like in tests.
 */
export function ensureBootIso(): Promise<string> {
  return runCachedBuild('build-boot-iso.sh');
}
