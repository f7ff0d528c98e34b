// SYNC_TRACE=1 for bench/live-migration.ts: QEMU's own trace of each dirty-bitmap sync of a
// migration (`migration_bitmap_sync_start/_end`, QEMU's "log" trace backend, stamped with
// `-msg timestamp=on`). Each sync runs under QEMU's big lock (BQL), so its length is how long
// the lock — and under TCG the guest's vCPU — was held; a query-migrate only sees the holds it
// happens to wait behind. With the migration thread's run time over the same window (the
// bench's thread sampler) it tells a sync that computed from one that waited for a core.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ThreadSampler } from '../test/support/thread-sampler.ts';

/**
 * A wrapper around `binary` that adds the trace options, writing `dir/qemu-PID.trace` (exec
 * keeps the pid, so the trace is named for the QEMU that wrote it). Ours gets it through
 * VMHOST_QEMU, the peer by name. QEMU opens the file before `-runas` drops root.
 */
export function tracedQemu(dir: string, binary = 'qemu-system-x86_64'): string {
  const path = join(dir, 'qemu-sync-traced');
  writeFileSync(path, `#!/bin/sh\nexec ${binary} "$@" -trace 'enable=migration_bitmap_sync_*' -D "${dir}/qemu-$$.trace" -msg timestamp=on\n`);
  chmodSync(path, 0o755);
  return path;
}

/**
 * One sync: epoch ms of its start and end, and QEMU's `dirty_pages` at its end — the pages
 * found dirty in the current rate period (QEMU resets it about once a second, so two syncs in
 * one period show a running total; the setup's sync shows 0 and scans every page).
 */
export interface Sync { from: number; to: number; pages: number }

export function syncsOf(dir: string, pid: number): Sync[] {
  const file = join(dir, `qemu-${pid}.trace`);
  if (!existsSync(file)) return [];
  const syncs: Sync[] = [];
  let start: number | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /@(\d+)\.(\d{6}):migration_bitmap_sync_(start|end)(?: dirty_pages (\d+))?/.exec(line);
    if (!m) continue;
    const at = Number(m[1]) * 1000 + Number(m[2]) / 1000;
    if (m[3] === 'start') start = at;
    else if (start !== undefined) {
      syncs.push({ from: start, to: at, pages: Number(m[4]) });
      start = undefined;
    }
  }
  return syncs;
}

/** `held/pages` per sync, with what the migration thread (`thread`, a sampler label prefix) ran and waited for a core meanwhile. */
export function describeSyncs(syncs: Sync[], sampler: ThreadSampler, thread: string): string {
  if (syncs.length === 0) return '(no sync traced)';
  return syncs.map((s, i) => {
    const mig = sampler.during(s.from, s.to).shares.find((t) => t.thread.startsWith(thread) && t.thread.includes('live_migration'));
    const cpu = mig ? ` ran ${Math.round(mig.ranMs)} waited ${Math.round(mig.waitedMs)}` : '';
    return `${Math.round(s.to - s.from)} ms/${i === 0 ? 'setup' : s.pages}${cpu}`;
  }).join(', ');
}
