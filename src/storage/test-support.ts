// Helpers shared by the storage tests: temp dirs, disk images with known content, running
// the peer tools (qemu-img, qemu-io, nbdinfo) with a timeout. Test-only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../blockio/node-file.ts';
import assert from 'node:assert/strict';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { createVhdx, openVhdx } from '../vhd/index.ts';
import { COPY_CHUNK } from './chunk-walker.ts';
import { openDiskFile } from './open-disk.ts';
import { mulberry32 } from '../common/prng.ts';

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

/** A deterministic generator (mulberry32) so a failure can be replayed. */
export function prng(seed: number): (n: number) => number {
  const next = mulberry32(seed);
  return (n) => next() % n;
}

/**
 * qemu-io commands for `count` random operations of 4 KiB–256 KiB on a `size`-byte disk, none
 * touching [skipFrom, skipTo) (moved just past it), in order: 70 % pattern writes (byte 1 + k %
 * 255), 20 % write-zeroes, 10 % discards. `model` gets each write; `discarded` says what a
 * discard leaves there (zeros, or nothing when the copy under test drops trims).
 */
export function randomIoOutside(rnd: (n: number) => number, count: number, size: number, skip: [number, number],
  model: Uint8Array, discarded: 'zeros' | 'kept'): string[] {
  const [skipFrom, skipTo] = skip;
  const cmds: string[] = [];
  for (let k = 0; k < count; k++) {
    const length = (1 + rnd(64)) * 4096;
    let offset = rnd((size - length) / 4096) * 4096;
    if (offset < skipTo && offset + length > skipFrom) offset = skipTo + offset % skipFrom;
    const op = rnd(10);
    if (op < 7) {
      const byte = 1 + (k % 255);
      cmds.push('-c', `write -P ${byte} ${offset} ${length}`);
      model.fill(byte, offset, offset + length);
    } else if (op < 9) {
      cmds.push('-c', `write -z ${offset} ${length}`);
      model.fill(0, offset, offset + length);
    } else {
      cmds.push('-c', `discard ${offset} ${length}`);
      if (discarded === 'zeros') model.fill(0, offset, offset + length);
    }
  }
  return cmds;
}

export interface Gate {
  /** Let the held target writes go on (or fail with `error`). */
  open(error?: Error): void;
  /** Target writes or trims that reached the gate so far. */
  held: number;
}

/**
 * `inner` with target writes and trims touching `chunks` held until the gate opens (then done,
 * or failed when it opens with an error). Everything else passes.
 */
export function gated(inner: VirtualDisk, chunks: number[]): { disk: VirtualDisk; gate: Gate } {
  let opened: { error?: Error } | undefined;
  let release!: () => void;
  const wait = new Promise<void>((r) => { release = r; });
  const gate: Gate = { held: 0, open: (error) => { opened = error ? { error } : {}; release(); } };
  const pass = async (offset: number, length: number) => {
    const touches = chunks.some((c) => offset < (c + 1) * COPY_CHUNK && offset + length > c * COPY_CHUNK);
    if (!touches) return;
    gate.held++;
    if (!opened) await wait;
    if (opened?.error) throw opened.error;
  };
  const disk: VirtualDisk = {
    format: inner.format, type: inner.type, virtualSize: inner.virtualSize, logicalSectorSize: inner.logicalSectorSize,
    physicalSectorSize: inner.physicalSectorSize, readOnly: inner.readOnly,
    read: (b, o) => inner.read(b, o),
    write: async (b, o) => { await pass(o, b.length); await inner.write(b, o); },
    trim: async (o, l) => { await pass(o, l); await inner.trim(o, l); },
    flush: () => inner.flush(),
    blockStatus: (o, l) => inner.blockStatus(o, l),
    close: () => inner.close(),
  };
  return { disk, gate };
}

export async function readAll(path: string, size: number): Promise<Uint8Array> {
  const d = await openDiskFile(path, { readOnly: true });
  const b = new Uint8Array(size);
  await d.read(b, 0);
  await d.close();
  return b;
}

export function same(a: Uint8Array, b: Uint8Array, what: string): void {
  const at = a.findIndex((x, i) => x !== b[i]);
  assert.equal(at, -1, `${what}: first difference at byte ${at} (chunk ${Math.floor(at / COPY_CHUNK)})`);
}
