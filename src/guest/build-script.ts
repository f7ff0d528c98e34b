// Runs one of the guest image builders in scripts/ (each builds only when its recipe
// changed and prints its output dir as the last stdout line) and returns that dir.
import { execFile } from 'node:child_process';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmhostError, type ErrorCode } from '../common/index.ts';

const scriptsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts');

/** Runs scripts/<name> with bash; rejects with `code` and the last lines of its stderr. */
export function runBuildScript(name: string, code: ErrorCode, op: string, timeoutMs: number): Promise<string> {
  const script = resolve(scriptsDir, name);
  return new Promise<string>((resolvePromise, reject) => {
    execFile('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      const dir = stdout.trim().split('\n').pop() ?? '';
      if (err || dir === '') {
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        reject(new VmhostError(code, `${name} failed: ${tail}`, { op, path: script }, { cause: err }));
        return;
      }
      resolvePromise(dir);
    });
  });
}

/** Memoizes a build per process; a failed build is forgotten so a later call retries. */
export function onceBuild<T>(build: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= build().catch((e: unknown) => { pending = undefined; throw e; });
    return pending;
  };
}
