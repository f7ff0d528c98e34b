// QEMU-to-QEMU live migration of memory and device state over a migration URI (unix:/tcp:).
// The destination is started with `incoming: 'defer'` so the same capabilities can be set on
// both sides before the stream starts (multifd needs that). Disks are not copied here: they
// follow through the block server's mirror stage (DESIGN §7).
// Depends on: src/common, ./qmp-client, ./error-codes.

import { setTimeout as sleep } from 'node:timers/promises';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';
import type { QmpClient } from './qmp-client.ts';
import type { MigrationCapabilityName, MigrationInfo, MigrationParameters } from './qmp-schema.ts';
import { MIGRATION_THREAD, SETUP_NICE, raiseThread, type Raised } from './thread-priority.ts';

export interface MigrationTuning {
  /** Parallel streams with optional compression (both sides must agree). */
  multifd?: { channels: number; compression: 'none' | 'zlib' | 'zstd' };
  /** Throttle the guest's vCPUs while its dirty rate outruns the stream (QEMU's auto-converge). */
  autoConverge?: boolean;
  /** Auto-converge's ceiling, per cent (QEMU's default 99); source side. */
  maxCpuThrottle?: number;
  /**
   * XBZRLE: a page sent again goes as its delta against a cache of this many bytes of pages
   * sent before (a guest rewriting a few words per page then costs bytes, not 4 KiB). Source
   * side; the destination decodes deltas whatever it is told.
   */
  xbzrleCacheBytes?: number;
  /** Bytes/s; default: unthrottled. */
  maxBandwidth?: number;
  /** Default QEMU's 300 ms. */
  downtimeLimitMs?: number;
  /**
   * QEMU's own TLS on every channel: a tls-creds-x509 object from `dir` (read when it is added),
   * verifying the peer both ways; the source accepts only a destination whose leaf names `hostname`.
   * Without it, the channels are plain (a relay or a local socket carries them).
   */
  tls?: { dir: string; hostname: string };
}

/** The tls-creds-x509 object of a move (one at a time per QEMU). */
const TLS_CREDS_ID = 'migration-tls';

export interface LiveMigrationResult {
  totalTimeMs: number | undefined;
  downtimeMs: number | undefined;
  transferredBytes: number | undefined;
  /**
   * The longest wait for a query-migrate answer while QEMU pre-copied: QEMU answers QMP on its
   * main loop under the big QEMU lock (BQL), so a long answer means the lock was held that long,
   * and the guest's vCPUs (under TCG) and its NIC were held with it. `status`: the migration's
   * status in that answer (the phase that held the lock); `at`: when the query was sent (epoch ms).
   */
  longestAnswer: { ms: number; status: string; at: number };
  /** What became of the migration thread's priority during the setup (thread-priority.ts), when QEMU's pid was given. */
  setupPriority?: string;
}

/** `qemuPid`: the source QEMU, whose migration thread runs its setup raised (thread-priority.ts). */
export interface MigrateOptions { timeoutMs?: number; onProgress?: (i: MigrationInfo) => void; signal?: AbortSignal; qemuPid?: number; onRaised?: (tid: number) => void }

async function applyTuning(qmp: QmpClient, t: MigrationTuning, source: boolean): Promise<void> {
  const caps: { capability: MigrationCapabilityName; state: boolean }[] = [
    { capability: 'multifd', state: t.multifd !== undefined },
    { capability: 'auto-converge', state: t.autoConverge ?? false },
    { capability: 'xbzrle', state: t.xbzrleCacheBytes !== undefined },
  ];
  await qmp.execute('migrate-set-capabilities', { capabilities: caps });
  const params: MigrationParameters = {};
  if (t.multifd) {
    params['multifd-channels'] = t.multifd.channels;
    params['multifd-compression'] = t.multifd.compression;
  }
  // Always set: a failed TLS move's creds must not stay on for the next migration (a save to a file).
  params['tls-creds'] = t.tls ? TLS_CREDS_ID : '';
  if (t.tls) {
    await qmp.executeRaw('object-del', { id: TLS_CREDS_ID }).catch(() => undefined); // a failed move's
    await qmp.executeRaw('object-add', { 'qom-type': 'tls-creds-x509', id: TLS_CREDS_ID, dir: t.tls.dir, endpoint: source ? 'client' : 'server', 'verify-peer': true });
  }
  if (source) {
    params['tls-hostname'] = t.tls?.hostname ?? '';
    params['max-bandwidth'] = t.maxBandwidth ?? 1e12;
    if (t.downtimeLimitMs !== undefined) params['downtime-limit'] = t.downtimeLimitMs;
    if (t.maxCpuThrottle !== undefined) params['max-cpu-throttle'] = t.maxCpuThrottle;
    if (t.xbzrleCacheBytes !== undefined) params['xbzrle-cache-size'] = t.xbzrleCacheBytes;
  }
  await qmp.execute('migrate-set-parameters', params);
}

/**
 * Destination side: QEMU was started with `incoming: 'defer'`; tune it and start listening on
 * `uri`. Returns the TCP port QEMU listens on (a `tcp:HOST:0` uri lets the kernel choose), if any.
 */
export async function startIncoming(qmp: QmpClient, uri: string, tuning: MigrationTuning = {}): Promise<number | undefined> {
  await applyTuning(qmp, tuning, false);
  await qmp.execute('migrate-incoming', { uri });
  const port = (await qmp.execute('query-migrate'))['socket-address']?.find((a) => a.type === 'inet')?.port;
  return port === undefined ? undefined : Number(port);
}

/**
 * Source side: migrate to `uri` (where startIncoming listens) and wait for completion. On
 * success the source is in 'postmigrate' and the destination runs (if the source was running).
 * On failure or timeout the migration is cancelled and the source keeps running.
 */
export async function migrateLive(qmp: QmpClient, uri: string, tuning: MigrationTuning = {}, opts: MigrateOptions = {}): Promise<LiveMigrationResult> {
  const timeoutMs = opts.timeoutMs ?? 600000;
  await applyTuning(qmp, tuning, true);
  try {
    return await follow(qmp, uri, timeoutMs, opts);
  } catch (e) {
    // The VM runs on here: a save to a file must not try TLS.
    if (tuning.tls) await qmp.execute('migrate-set-parameters', { 'tls-creds': '', 'tls-hostname': '' }).catch(() => undefined);
    throw e;
  }
}

/** How long to look for the migration thread after `migrate` (a TLS handshake comes first). */
const THREAD_WAIT_MS = 2000;

/**
 * Raise the migration thread for its setup (thread-priority.ts): looked for in /proc every 2 ms
 * from `migrate` on — not after a query-migrate, which waits out the very setup it should speed
 * up — until found or QEMU is past the setup (asked every 50 ms).
 */
async function raiseForSetup(qmp: QmpClient, pid: number, onRaised?: (tid: number) => void): Promise<{ raised?: Raised; note: string }> {
  for (let i = 0, until = Date.now() + THREAD_WAIT_MS; Date.now() < until; i++) {
    const r = raiseThread(pid, MIGRATION_THREAD, SETUP_NICE);
    if (r && 'refused' in r) return { note: `setup not raised (${r.refused})` };
    if (r) {
      onRaised?.(r.tid);
      return { raised: r, note: `setup at nice ${SETUP_NICE}` };
    }
    if (i % 25 === 24 && (await qmp.execute('query-migrate')).status !== 'setup') break;
    await sleep(2);
  }
  return { note: 'setup not raised (no migration thread seen)' };
}

async function follow(qmp: QmpClient, uri: string, timeoutMs: number, opts: MigrateOptions): Promise<LiveMigrationResult> {
  const ctx = { op: 'live-migrate', uri };
  const started = Date.now();
  const longestAnswer = { ms: 0, status: 'none', at: started };
  await startMigrate(qmp, uri);
  const raised = opts.qemuPid === undefined ? undefined : await raiseForSetup(qmp, opts.qemuPid, opts.onRaised);
  try {
    return await poll(qmp, ctx, started, timeoutMs, opts, longestAnswer, raised);
  } finally {
    raised?.raised?.restore();
  }
}

async function poll(qmp: QmpClient, ctx: Record<string, string>, started: number, timeoutMs: number, opts: MigrateOptions,
  longestAnswer: LiveMigrationResult['longestAnswer'], raised: { raised?: Raised; note: string } | undefined): Promise<LiveMigrationResult> {
  for (;;) {
    const asked = Date.now();
    const info = await qmp.execute('query-migrate');
    // QEMU answered past the setup: the lock is free, and the thread now only sends — at its own priority, beside the guests.
    if (info.status !== 'setup') raised?.raised?.restore();
    // Not the completion's answer: the final stop holds the lock by design (QEMU's downtime).
    if (Date.now() - asked > longestAnswer.ms && info.status !== 'completed') Object.assign(longestAnswer, { ms: Date.now() - asked, status: info.status ?? 'none', at: asked });
    opts.onProgress?.(info);
    if (info.status === 'completed') {
      return { totalTimeMs: info['total-time'], downtimeMs: info.downtime, transferredBytes: info.ram?.transferred, longestAnswer, ...(raised ? { setupPriority: raised.note } : {}) };
    }
    if (info.status === 'failed' || info.status === 'cancelled') {
      const why = `live migration failed: ${info['error-desc'] ?? info.status}`;
      await settled(qmp, ctx, why);
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, why, ctx);
    }
    if (Date.now() - started > timeoutMs) {
      const why = `live migration did not finish within ${timeoutMs} ms (cancelled)`;
      await cancel(qmp, ctx, why);
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED, why, ctx);
    }
    if (opts.signal?.aborted) {
      await cancel(qmp, ctx, 'live migration cancelled');
      throw new VmhostError('JOB_CANCELLED', 'live migration cancelled', ctx);
    }
    await sleep(50);
  }
}

/** How long QEMU gets to clean a failed or cancelled migration up. */
const CLEANUP_MS = 15_000;

/**
 * `migrate`, again while QEMU says "duplicate yank instance": right after a failed multifd
 * migration was settled (`settled` saw no migration yank instance), a new `migrate` was still
 * refused so in one CI run (src/qemu/live-migration.test.ts) — QEMU 7.2 finishes that cleanup
 * in a bottom half we cannot observe. Anything else, or the refusal outlasting CLEANUP_MS, fails.
 */
async function startMigrate(qmp: QmpClient, uri: string): Promise<void> {
  const until = Date.now() + CLEANUP_MS;
  for (;;) {
    try {
      await qmp.execute('migrate', { uri });
      return;
    } catch (e) {
      if (!(e instanceof Error && e.message.includes('duplicate yank instance')) || Date.now() > until) throw e;
      await sleep(100);
    }
  }
}

async function cancel(qmp: QmpClient, ctx: Record<string, string>, why: string): Promise<void> {
  await qmp.execute('migrate_cancel').catch(() => {});
  await settled(qmp, ctx, why);
}

/**
 * Wait until QEMU has cleaned a failed or cancelled migration up. 'failed' is shown before the
 * cleanup runs, and 'cancelling' until it ends; its last step unregisters the migration's yank
 * instance, and a `migrate` issued before that fails with "duplicate yank instance" — so the
 * next move would fail. When the cleanup never ends (a multifd channel stuck in a write) the
 * error says so: this QEMU cannot migrate again.
 */
async function settled(qmp: QmpClient, ctx: Record<string, string>, why: string): Promise<void> {
  const until = Date.now() + CLEANUP_MS;
  for (;;) {
    const status = (await qmp.execute('query-migrate')).status;
    const yanks = await qmp.execute('query-yank');
    if (status !== 'cancelling' && !yanks.some((y) => y.type === 'migration')) return;
    if (Date.now() > until) {
      throw new VmhostError(QemuErrorCode.QEMU_STATE_FAILED,
        `${why}, and QEMU did not clean the migration up within ${CLEANUP_MS} ms (status ${status ?? 'none'}): the VM keeps running, but cannot be moved again until it is restarted`, ctx);
    }
    await sleep(50);
  }
}
