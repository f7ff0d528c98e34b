// Helpers shared by the storage tests: temp dirs, disk images with known content, running
// the peer tools (qemu-img, qemu-io, nbdinfo) with a timeout. Test-only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../blockio/node-file.ts';
import { createVhdx, openVhdx } from '../vhd/index.ts';

export function tempDir(prefix = 'storage-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a tool; never throws on a non-zero exit (the result says), kills it after `timeoutMs`. */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A byte pattern that differs per 512-byte sector and per seed. */
export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + (i >> 9) * 7 + i) & 0xff;
  return b;
}

/** A dynamic VHDX at `path` with `writes` ([offset, bytes]) applied through our engine. */
export async function makeVhdx(path: string, opts: { size: number; blockSize?: number; logicalSectorSize?: 512 | 4096 }, writes: Array<[number, Uint8Array]> = []): Promise<void> {
  const f = await NodeFile.open(path, { create: true, overwrite: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: opts.size, blockSize: opts.blockSize ?? 1 << 20, logicalSectorSize: opts.logicalSectorSize ?? 512 });
  const d = await openVhdx(f);
  for (const [o, b] of writes) await d.write(b, o);
  await d.close();
}

const serveScript = fileURLToPath(new URL('./test-serve.ts', import.meta.url));

/**
 * Serve `disk` from a child process (test-serve.ts); resolves when it listens. Children are
 * added to `track` (removed when they exit) so a test's after() can SIGKILL what is left.
 * `fileSizeLimit` (bytes) runs it under prlimit --fsize: a write past it fails with EFBIG,
 * the kernel's own "no space" for that file (Node ignores SIGXFSZ). `args` go after the
 * export name (test-serve's --merge); `onLine` sees every line the child prints.
 */
export function startChildServer(disk: string, socketDir: string, exportName: string, track: Set<ChildProcess>,
  opts: { fileSizeLimit?: number; args?: string[]; onLine?: (line: string) => void } = {}): Promise<{ child: ChildProcess; socketPath: string }> {
  const argv = [process.execPath, '--import', 'tsx', serveScript, disk, socketDir, exportName, ...(opts.args ?? [])];
  if (opts.fileSizeLimit !== undefined) argv.unshift('prlimit', `--fsize=${opts.fileSizeLimit}`, '--');
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  track.add(child);
  child.on('exit', () => track.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = /^ready (\S+)$/.exec(line);
        if (m) resolve({ child, socketPath: m[1]! });
        opts.onLine?.(line);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before it was ready`)));
  });
}

/** SIGKILL (or another signal) and wait for the exit. */
export async function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  await gone;
}
