// Save a VM's state to a file and restore it: QEMU 7.2 has no `file:` migration URI, so the
// state is migrated to `exec:cat > <file>` (or through gzip) and restored with
// `-incoming exec:cat <file>`. The VM is paused before saving (Hyper-V "Save": the state is of
// a stopped VM); the source QEMU is left in 'postmigrate' for the caller to quit.
// The file is written as <file>.partial, fsynced and renamed, so a crash never leaves a
// truncated state file under the real name.
// Depends on: src/common, ./qmp-client, ./error-codes.

import { open, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';
import type { QmpClient } from './qmp-client.ts';
import type { MigrationInfo, RunState } from './qmp-schema.ts';

export type StateCompression = 'none' | 'gzip';

/** Single-quote for /bin/sh (QEMU runs `exec:` URIs with `sh -c`). */
export function shellQuote(s: string): string { return `'${s.replaceAll("'", `'\\''`)}'`; }

/**
 * Check a state file before starting QEMU on it: QEMU 7.2 given an empty or missing file
 * through `exec:` waits in 'inmigrate' forever (garbage it rejects and exits).
 * Throws QEMU_STATE_FAILED. Checks the QEMU stream magic "QEVM" (or the gzip magic).
 */
export async function checkStateFile(file: string, compression: StateCompression = 'none'): Promise<void> {
  const ctx = { op: 'restore-state', path: file };
  let head: Buffer;
  try {
    const fh = await open(file, 'r');
    try { head = Buffer.alloc(4); await fh.read(head, 0, 4, 0); } finally { await fh.close(); }
  } catch (e) {
    throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `cannot read saved state ${file}: ${(e as Error).message}`, ctx, { cause: e });
  }
  const ok = compression === 'gzip' ? head[0] === 0x1f && head[1] === 0x8b : head.toString('latin1') === 'QEVM';
  if (!ok) throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, `${file} is not a ${compression === 'gzip' ? 'gzip-compressed ' : ''}QEMU state file`, ctx);
}

/** The `-incoming` URI that restores from a state file written by saveStateToFile(). */
export function restoreIncomingUri(file: string, compression: StateCompression = 'none'): string {
  return compression === 'gzip' ? `exec:gzip -dc ${shellQuote(file)}` : `exec:cat ${shellQuote(file)}`;
}

function saveUri(file: string, compression: StateCompression): string {
  return compression === 'gzip' ? `exec:gzip -1 -c > ${shellQuote(file)}` : `exec:cat > ${shellQuote(file)}`;
}

export interface SaveStateOptions {
  compression?: StateCompression;
  /** Give up (and cancel the migration) after this long. Default 600000 ms. */
  timeoutMs?: number;
  /** Called on every poll with QEMU's migration info. */
  onProgress?: (info: MigrationInfo) => void;
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
  try {
    await qmp.execute('migrate', { uri: saveUri(partial, compression) });
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
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  } finally {
    if (before['max-bandwidth'] !== undefined) {
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': before['max-bandwidth'] }).catch(() => {});
    }
  }
  // QEMU reports completed once it has written to the pipe; make the bytes durable ourselves.
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
