// Save a VM's state to a file and restore it. QEMU runs under `-sandbox spawn=deny` (no fork,
// no exec), so neither side may use an `exec:` URI (QEMU 7.2 has no `file:` one): the state is
// migrated to `unix:<socket>` on which the daemon listens and writes the file (gzip by zlib),
// and restored with `-incoming file:<path>` — QEMU 8.1's syntax, which QemuProcess.start turns
// into `fd:3` on a descriptor it opens (incoming-file.ts). The VM is paused before saving
// (Hyper-V "Save": the state is of a stopped VM); the source QEMU is left in 'postmigrate' for
// the caller to quit. The file is written as <file>.partial (O_EXCL|O_NOFOLLOW, 0600), fsynced
// and renamed, so a crash never leaves a truncated state file under the real name.
// Depends on: src/common, ./qmp-client, ./error-codes, ./incoming-file.

import { constants } from 'node:fs';
import { chmod, chown, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { VmhostError } from '../common/index.ts';
import { shareSocketWithGroup } from '../common/socket-group.ts';
import { QemuErrorCode } from './error-codes.ts';
import type { QmpClient } from './qmp-client.ts';
import type { MigrationInfo, RunState } from './qmp-schema.ts';
import { fileIncomingUri } from './incoming-file.ts';
import { ramBlocksOf, ramPadOf } from './state-ram-layout.ts';

export type StateCompression = 'none' | 'gzip';

/** Single-quote for /bin/sh (for callers that still build shell commands). */
export function shellQuote(s: string): string { return `'${s.replaceAll("'", `'\\''`)}'`; }

/**
 * Check a state file before starting QEMU on it: QEMU 7.2 given an empty stream waits in
 * 'inmigrate' forever (garbage it rejects and exits).
 * Throws QEMU_STATE_FAILED. Checks the QEMU stream magic "QEVM" (or the gzip magic).
 * Returns the RAM pad (bytes past the whole MiB of each boot RAM block) an uncompressed file was
 * saved with, for the restoring QEMU to match (state-ram-layout.ts); undefined when its head does not say.
 */
export async function checkStateFile(file: string, compression: StateCompression = 'none'): Promise<number | undefined> {
  const ctx = { op: 'restore-state', path: file };
  let head: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead);
    } finally { await fh.close(); }
  } catch (e) {
    throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `cannot read saved state ${file}: ${(e as Error).message}`, ctx, { cause: e });
  }
  const ok = compression === 'gzip' ? head[0] === 0x1f && head[1] === 0x8b : head.toString('latin1', 0, 4) === 'QEVM';
  if (!ok) throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `${file} is not a ${compression === 'gzip' ? 'gzip-compressed ' : ''}QEMU state file`, ctx);
  if (compression === 'gzip') return undefined;
  const blocks = ramBlocksOf(head);
  return blocks && ramPadOf(blocks);
}

/** The `-incoming` URI that restores from a state file written by saveStateToFile(). */
export function restoreIncomingUri(file: string, compression: StateCompression = 'none'): string {
  return fileIncomingUri(file, compression === 'gzip');
}

/**
 * A one-connection unix socket in a fresh 0700 temp dir (so nobody else can connect first)
 * whose stream goes to `file`, created O_EXCL|O_NOFOLLOW 0600. `done` settles once the
 * stream has ended and every byte is in the file. With a `group` (QEMU runs as another user),
 * the dir is 0710 and the socket 0660 of that group, under `dir` (a dir that group can enter).
 */
async function stateReceiver(file: string, compression: StateCompression, at: { dir?: string; group?: number }):
  Promise<{ uri: string; done: Promise<void>; close(): Promise<void> }> {
  const dir = await mkdtemp(join(at.dir ?? tmpdir(), 'vmhost-save-'));
  if (at.group !== undefined) {
    await chown(dir, process.getuid?.() ?? 0, at.group);
    await chmod(dir, 0o710);
  }
  const path = join(dir, 'state.sock');
  let resolveConn!: (s: Socket) => void;
  const conn = new Promise<Socket>((r) => { resolveConn = r; });
  const server = createServer((s) => { server.close(); resolveConn(s); });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(path, () => ok()); });
  await shareSocketWithGroup(path, at.group);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const fh = await open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  const out = fh.createWriteStream();
  const done = conn.then((s) => compression === 'gzip' ? pipeline(s, createGzip({ level: 1 }), out) : pipeline(s, out));
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection
  return {
    uri: `unix:${path}`, done,
    close: async () => {
      server.close();
      if (!out.closed) out.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SaveStateOptions {
  compression?: StateCompression;
  /** Give up (and cancel the migration) after this long. Default 600000 ms. */
  timeoutMs?: number;
  /** Called on every poll with QEMU's migration info. */
  onProgress?: (info: MigrationInfo) => void;
  /** Where the receiving socket's temp dir goes (default the OS temp dir) and the QEMU user's group, when QEMU runs as another user. */
  socketDir?: string;
  socketGroup?: number;
}

export interface SaveStateResult {
  file: string;
  bytes: number;
  durationMs: number;
  /** QEMU's own total-time for the migration. */
  qemuTotalTimeMs: number | undefined;
}

/**
 * Pause the VM (if running) and write its complete state to `file`. The QEMU process stays in
 * 'postmigrate' afterwards: quit it (the VM is now "saved"), or `cont` to keep it running.
 */
export async function saveStateToFile(qmp: QmpClient, file: string, opts: SaveStateOptions = {}): Promise<SaveStateResult> {
  const compression = opts.compression ?? 'none';
  const timeoutMs = opts.timeoutMs ?? 600000;
  const ctx = { op: 'save-state', path: file };
  const started = Date.now();
  const partial = `${file}.partial`;
  await rm(partial, { force: true });

  const { status } = await qmp.execute('query-status');
  if (status === 'running') await qmp.execute('stop');
  // Default max-bandwidth throttles migration (to 128 MiB/s); a local file needs no throttle.
  const before = await qmp.execute('query-migrate-parameters');
  await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1e12 });
  let info: MigrationInfo;
  const receiver = await stateReceiver(partial, compression, { dir: opts.socketDir, group: opts.socketGroup });
  try {
    await qmp.execute('migrate', { uri: receiver.uri });
    for (;;) {
      info = await qmp.execute('query-migrate');
      opts.onProgress?.(info);
      if (info.status === 'completed') break;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `saving VM state failed: ${info['error-desc'] ?? info.status}`, ctx);
      }
      if (Date.now() - started > timeoutMs) {
        await qmp.execute('migrate_cancel').catch(() => {});
        throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `saving VM state did not finish within ${timeoutMs} ms`, ctx);
      }
      await sleep(25);
    }
    // 'completed' means QEMU has sent everything; the file has it once the stream ended.
    await receiver.done.catch((e: unknown) => {
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `saving VM state failed: writing ${partial}: ${(e as Error).message}`, ctx, { cause: e });
    });
  } catch (e) {
    await receiver.close();
    await rm(partial, { force: true });
    throw e;
  } finally {
    if (before['max-bandwidth'] !== undefined) {
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': before['max-bandwidth'] }).catch(() => {});
    }
  }
  await receiver.close();
  // Make the bytes durable before the file takes the real name.
  const fh = await open(partial, 'r+');
  try { await fh.sync(); } finally { await fh.close(); }
  await rename(partial, file);
  const { size } = await stat(file);
  return { file, bytes: size, durationMs: Date.now() - started, qemuTotalTimeMs: info['total-time'] };
}

export interface WaitForIncomingOptions {
  /** Default 600000 ms. */
  timeoutMs?: number;
  /**
   * Resume the vCPUs once loaded. QEMU restores the run state the source had when it was saved
   * (saveStateToFile pauses first, so: 'paused'); pass true to continue the VM. Default false.
   */
  resume?: boolean;
}

/**
 * After starting QEMU with `incoming: restoreIncomingUri(file)`, wait until the state is loaded.
 * Returns the run state then ('running' after `resume`, else normally 'paused').
 */
export async function waitForIncoming(qmp: QmpClient, opts: WaitForIncomingOptions = {}): Promise<RunState> {
  const timeoutMs = opts.timeoutMs ?? 600000;
  const started = Date.now();
  for (;;) {
    let status: RunState;
    try {
      ({ status } = await qmp.execute('query-status'));
    } catch (e) {
      // QEMU exits when loading the incoming state fails.
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, 'restoring VM state failed: QEMU went away while loading it', { op: 'restore-state' }, { cause: e });
    }
    if (status !== 'inmigrate') {
      const mig = await qmp.execute('query-migrate');
      if (mig.status === 'failed') {
        throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `restoring VM state failed: ${mig['error-desc'] ?? 'unknown error'}`, { op: 'restore-state' });
      }
      if (opts.resume && status === 'paused') {
        await qmp.execute('cont');
        return (await qmp.execute('query-status')).status;
      }
      return status;
    }
    if (Date.now() - started > timeoutMs) {
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `restoring VM state did not finish within ${timeoutMs} ms`, { op: 'restore-state' });
    }
    await sleep(25);
  }
}
