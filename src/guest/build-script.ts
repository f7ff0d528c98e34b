// Runs one of the project's cached image builders (scripts/build-*.sh): each builds only when
// its recipe changed and prints the output's path as its last stdout line. One run per
// process and script; a failure lets a later call try again.
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmhostError } from '../common/index.ts';

const scriptsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts');
const runs = new Map<string, Promise<string>>();

/** The last stdout line of `scripts/<name>` (env VMHOST_GUEST_CACHE moves the cache). */
export function runCachedBuild(name: string, timeoutMs = 15 * 60_000): Promise<string> {
  let run = runs.get(name);
  if (!run) {
    const script = resolve(scriptsDir, name);
    run = new Promise<string>((ok, fail) => {
      execFile('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
        if (err) {
          runs.delete(name);
          const tail = stderr.trim().split('\n').slice(-5).join('\n');
          fail(new VmhostError('GUEST_IMAGE_BUILD_FAILED', `${name} failed: ${tail}`, { op: 'build-image', path: script }, { cause: err }));
          return;
        }
        ok(stdout.trim().split('\n').pop() ?? '');
      });
    });
    runs.set(name, run);
  }
  return run;
}
