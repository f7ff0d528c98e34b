// The migration thread's priority while it holds QEMU's lock at the start of a migration.
// QEMU 7.2's first dirty-bitmap sync runs in the `live_migration` thread under the big QEMU lock
// (BQL), page by page under TCG (TCG_RAM_PAD in command-line.ts): the guest's vCPU and its NIC
// wait for that lock the whole time. On a busy host the thread holding the lock also waits for a
// core — measured at load 30: it ran 453–855 ms and waited 2.5–4.6 s for a core during a
// 3.0–5.3 s stall (BENCHMARKS.md, "what stops the guest in the pre-copy"). So it runs at nice
// −20 during the setup, and back at its own priority as soon as QEMU answers again (the lock
// released). A lower priority (nice 19, SCHED_IDLE) would lengthen the stall: the guest waits on
// this thread's lock, not for its core.
// With the scheduler's autogroups (kernel.sched_autogroup_enabled, Debian's default), a thread's
// nice only orders it within its session's group, and QEMU runs in a session of its own: against
// every other process the whole group competes as one, at the group's nice. During the setup
// everything else in QEMU waits on this thread's lock, so the group is raised with the thread.
// QEMU runs with `-name …,debug-threads=on`, so its threads carry names in /proc.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The thread QEMU 7.2 runs a migration's setup and pre-copy in. */
export const MIGRATION_THREAD = 'live_migration';
/** The most CFS gives: the lock holder gets the core before the guests that wait on its lock. */
export const SETUP_NICE = -20;

export interface ThreadName { tid: number; comm: string }

/** The threads of `threads` named `name` (a comm is at most 15 characters; QEMU's names fit). */
export function threadsNamed(threads: ThreadName[], name: string): number[] {
  return threads.filter((t) => t.comm === name).map((t) => t.tid);
}

/** Every thread of `pid` with its name; [] once the process is gone. */
export function threadsOf(pid: number): ThreadName[] {
  let tids: string[];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return []; }
  const out: ThreadName[] = [];
  for (const tid of tids) {
    try { out.push({ tid: Number(tid), comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() }); } catch { /* the thread ended meanwhile */ }
  }
  return out;
}

/** `/proc/PID/autogroup`'s nice ("/autogroup-42 nice 0"); undefined without autogroups. */
export function parseAutogroupNice(text: string): number | undefined {
  const m = /nice (-?\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Set `pid`'s autogroup nice, returning the one it had; undefined when the kernel has no autogroups. */
function setAutogroupNice(pid: number, nice: number): number | undefined {
  let from: number | undefined;
  try { from = parseAutogroupNice(readFileSync(`/proc/${pid}/autogroup`, 'utf8')); } catch { return undefined; }
  if (from === undefined) return undefined;
  writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  return from;
}

/** A raised thread: `restore` gives it its priority back, once (a thread gone meanwhile needs none). */
export interface Raised { tid: number; from: number; restore(): void }

/**
 * Raise `pid`'s thread `name` to `nice` (setpriority on a thread id acts on that thread alone on
 * Linux), and `pid`'s autogroup with it when there are autogroups. Needs CAP_SYS_NICE (a daemon running as root has it): without it the reason comes back
 * and the migration goes on unraised. `undefined` when no such thread (yet).
 */
export function raiseThread(pid: number, name: string, nice: number): Raised | { refused: string } | undefined {
  const tid = threadsNamed(threadsOf(pid), name)[0];
  if (tid === undefined) return undefined;
  try {
    const from = getPriority(tid);
    setPriority(tid, nice);
    let groupFrom: number | undefined;
    try {
      groupFrom = setAutogroupNice(pid, nice);
    } catch (e) {
      setPriority(tid, from);
      throw e;
    }
    let restored = false;
    return {
      tid, from, restore: () => {
        if (restored) return;
        restored = true;
        try { setPriority(tid, from); } catch { /* the thread ended: nothing to restore */ }
        try { if (groupFrom !== undefined) setAutogroupNice(pid, groupFrom); } catch { /* QEMU ended */ }
      },
    };
  } catch (e) {
    return { refused: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}
