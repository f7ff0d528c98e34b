// The test guest image: runs scripts/build-guest.sh (which builds only when its recipe
// changed) once per process and returns the kernel and initrd paths.
import { execFile } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmhostError } from '../common/index.ts';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** manifest.json beside them: kernel package and version, module list, recipe hash. */
  manifest: string;
}

const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/build-guest.sh');
let once: Promise<GuestImage> | undefined;

/** Builds (or finds in the cache) the test guest; env VMHOST_GUEST_CACHE moves the cache. */
export function ensureGuestImage(): Promise<GuestImage> {
  once ??= new Promise<GuestImage>((resolvePromise, reject) => {
    execFile('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 }, (err, stdout, stderr) => {
      if (err) {
        once = undefined; // let a later call retry
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        reject(new VmhostError('GUEST_IMAGE_BUILD_FAILED', `build-guest.sh failed: ${tail}`, { op: 'ensureGuestImage', path: script }, { cause: err }));
        return;
      }
      const dir = stdout.trim().split('\n').pop() ?? '';
      resolvePromise({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), manifest: join(dir, 'manifest.json') });
    });
  });
  return once;
}
