// The real Debian 12 guest disk: runs scripts/build-debian-guest.sh (which builds only
// when its recipe changed; ~1–5 min, mostly mmdebstrap) once per process. The disk is a
// dynamic VHDX that boots on both generations — GRUB i386-pc in a BIOS boot partition
// for SeaBIOS, Debian's signed shim → GRUB chain on the ESP for OVMF with secure boot —
// and runs vmhost-agent.service. Use it read-only, as a parent or under an overlay.
import { join } from 'node:path';
import { runBuildScript, onceBuild } from './build-script.ts';

export interface DebianImage {
  /** The dynamic VHDX (GPT: 1 BIOS boot, 2 ESP, 3 ext4 root). */
  disk: string;
  /** manifest.json beside it: package versions, partitions with PARTUUIDs, kernel command line, sizes, build time. */
  manifest: string;
}

/** Builds (or finds in the cache) the Debian guest; env VMHOST_GUEST_CACHE moves the cache. Needs root. */
export const ensureDebianImage: () => Promise<DebianImage> = onceBuild(async () => {
  const dir = await runBuildScript('build-debian-guest.sh', 'GUEST_IMAGE_BUILD_FAILED', 'ensureDebianImage', 40 * 60_000);
  return { disk: join(dir, 'disk.vhdx'), manifest: join(dir, 'manifest.json') };
});
