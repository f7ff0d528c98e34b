// The guest integration ISO (Hyper-V's vmguest.iso for vmhost): the static agent, its
// systemd unit and install.sh, built by scripts/build-guest-iso.sh. Insert it into a
// Linux guest's DVD drive and run `sh /mnt/install.sh` there.
import { join } from 'node:path';
import { runBuildScript, onceBuild } from './build-script.ts';

export interface GuestIso {
  /** The ISO 9660 image (volume id VMHOST_GUEST). */
  iso: string;
  /** manifest.json beside it: file list, agent SHA-256, recipe hash. */
  manifest: string;
}

/** Builds (or finds in the cache) the integration ISO; env VMHOST_GUEST_CACHE moves the cache. */
export const ensureGuestIso: () => Promise<GuestIso> = onceBuild(async () => {
  const dir = await runBuildScript('build-guest-iso.sh', 'GUEST_IMAGE_BUILD_FAILED', 'ensureGuestIso', 10 * 60_000);
  return { iso: join(dir, 'vmguest.iso'), manifest: join(dir, 'manifest.json') };
});
