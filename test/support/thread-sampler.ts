// Who ran during a blackout: every thread of the QEMUs and daemons of a move, sampled from
// /proc/PID/task/TID/schedstat (the kernel's nanoseconds on a core and waiting runnable for one)
// every few ms, so a gap in the pinger's replies can be split per thread into "ran", "waited
// for a core" (starved) and "slept" (blocked: a lock such as QEMU's BQL, a throttle's sleep, a
// halted vCPU). QEMU runs with debug-threads=on, so its threads carry names (CPU 0/TCG,
// live_migration, multifdsend_0, …). Used by bench/live-migration.ts; pure parts tested in
// thread-sampler.test.ts.
import { readFileSync, readdirSync } from 'node:fs';
import { threadsOf } from '../../src/qemu/thread-priority.ts';

/** A process to sample: what the trace calls it, and its pid. */
export interface Watched { label: string; pid: number }

/** One thread's cumulative times at one instant, in ms. */
export interface ThreadTimes { runMs: number; waitMs: number }

/** All threads' times at one instant (epoch ms); a thread gone since keeps its last times. */
export interface Sample { at: number; threads: Map<string, ThreadTimes> }

/** A thread's share of a window. `sleptMs`: neither on a core nor waiting for one. */
export interface ThreadShare { thread: string; ranMs: number; waitedMs: number; sleptMs: number; priority: string }

/** `/proc/PID/schedstat`'s first two fields: ns on a core, ns runnable but waiting. */
export function parseSchedstat(text: string): ThreadTimes | undefined {
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  return run === undefined || wait === undefined || Number.isNaN(run) || Number.isNaN(wait) ? undefined : { runMs: run / 1e6, waitMs: wait / 1e6 };
}

/** A thread's nice value and policy from /proc/PID/task/TID/stat (fields 19 and 41), e.g. "nice 19" or "SCHED_IDLE". */
export function parsePriority(stat: string): string {
  const f = stat.replace(/^.*\) /, '').split(' ');
  const nice = Number(f[16]), policy = Number(f[38]);
  return policy === 5 ? 'SCHED_IDLE' : `nice ${nice}`;
}

const read = (path: string): string | undefined => { try { return readFileSync(path, 'utf8'); } catch { return undefined; } };

/** The children of `parent` whose command line holds `needle` (QEMU's `-name guest=NAME,…`). */
export function childrenWith(parent: number, needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    if (!stat || Number(stat.replace(/^.*\) /, '').split(' ')[1]) !== parent) continue;
    if ((read(`/proc/${entry}/cmdline`) ?? '').split('\0').some((a) => a.includes(needle))) out.push(Number(entry));
  }
  return out;
}

/**
 * Samples every thread of the watched processes every `everyMs` until stopped. `discover` is
 * called every `discoverMs` to add processes started meanwhile (the destination's QEMU).
 */
export class ThreadSampler {
  private readonly samples: Sample[] = [];
  private readonly watched = new Map<number, string>();
  private readonly priorities = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private discoverTimer: NodeJS.Timeout | undefined;

  constructor(private readonly discover: () => Watched[], private readonly everyMs = 5, private readonly discoverMs = 100) {}

  start(): void {
    const find = () => { for (const w of this.discover()) if (!this.watched.has(w.pid)) this.watched.set(w.pid, w.label); };
    find();
    this.discoverTimer = setInterval(find, this.discoverMs);
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.discoverTimer);
  }

  private sample(): void {
    // Threads that ended (the source QEMU after the move) keep their last times: a window over the whole move still counts them.
    const threads = new Map<string, ThreadTimes>(this.samples.at(-1)?.threads);
    for (const [pid, label] of this.watched) {
      for (const { tid, comm } of threadsOf(pid)) {
        const t = parseSchedstat(read(`/proc/${pid}/task/${tid}/schedstat`) ?? '');
        if (t === undefined) continue;
        const key = `${label}: ${comm} (${tid})`;
        threads.set(key, t);
        // The priority the thread had while the move ran (the last one seen before it ended).
        const stat = read(`/proc/${pid}/task/${tid}/stat`);
        if (stat) this.priorities.set(key, parsePriority(stat));
      }
    }
    this.samples.push({ at: Date.now(), threads });
  }

  /**
   * Every thread's run, wait and sleep over [from, to] (epoch ms), widened to the samples around
   * it; a thread born inside counts from zero. Sorted by time on a core, then waiting.
   */
  during(from: number, to: number): { from: number; to: number; shares: ThreadShare[] } {
    return sharesDuring(this.samples, from, to, this.priorities);
  }
}

/** The pure part of `during`: the samples at or before `from` and at or after `to`, differenced per thread. */
export function sharesDuring(samples: Sample[], from: number, to: number, priorities: Map<string, string> = new Map()): { from: number; to: number; shares: ThreadShare[] } {
  const before = samples.filter((s) => s.at <= from).at(-1) ?? samples[0];
  const after = samples.find((s) => s.at >= to) ?? samples.at(-1);
  if (!before || !after || after.at <= before.at) return { from, to, shares: [] };
  const window = after.at - before.at;
  const shares: ThreadShare[] = [];
  for (const [thread, end] of after.threads) {
    const start = before.threads.get(thread) ?? { runMs: 0, waitMs: 0 };
    const ranMs = end.runMs - start.runMs, waitedMs = end.waitMs - start.waitMs;
    shares.push({ thread, ranMs, waitedMs, sleptMs: Math.max(0, window - ranMs - waitedMs), priority: priorities.get(thread) ?? '?' });
  }
  shares.sort((x, y) => y.ranMs - x.ranMs || y.waitedMs - x.waitedMs);
  return { from: before.at, to: after.at, shares };
}
