// The block server's writer threads (native/vmhost-pwrite.c, built by scripts/build-pwrite.sh
// into .cache/bin/<hash of its source>/): HostFile hands them small pwrites so that several
// overwrites of cached pages run on both cores at once, as qemu-nbd's worker threads do,
// instead of one after another on the event loop. Completions come back in batches, one JS
// call per batch. Off — HostFile writes small requests synchronously on the loop, as before —
// with VMHOST_WRITE_THREADS=0, VMHOST_NO_PWRITE_ADDON=1, or when the addon is not built (said
// once on stderr). VMHOST_WRITE_THREADS (1–8, default DEFAULT_THREADS) sets the thread count.
// Ordering is not this module's: host-file.ts keeps overlapping requests in order.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface PwriteAddon {
  /** The number of threads started. */
  start(threads: number, completions: Float64Array, onDone: (count: number) => void): number;
  submit(id: number, fd: number, data: Uint8Array, position: number): void;
}

/**
 * The default: on, with two threads (this machine's core count; the event loop parses and
 * replies meanwhile). Flip to 0 here to make the synchronous path the default again.
 */
const DEFAULT_THREADS = 2;
/** Completions handed to JS per call (the addon calls again for the rest). */
const BATCH = 256;

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

type Done = (result: number) => void;

/**
 * Small pwrites on the addon's threads. A tick's writes are staged and handed over together at
 * its end; a tick that asked for one write while no thread is busy (queue depth 1) has it done
 * right there on the loop instead: nothing could run beside it, and the hand-off to a thread
 * and the wake-up back would only add to its round trip.
 */
export class WritePool {
  private readonly done: (Done | undefined)[] = [];
  private readonly free: number[] = [];
  private staged: { fd: number; data: Uint8Array; position: number; cb: Done }[] = [];
  /** Requests on the threads now. */
  private busy = 0;
  /** Writes done on the threads, and on the loop by the depth-1 rule (the bench reports them). */
  readonly counts = { threaded: 0, inline: 0 };

  constructor(private readonly addon: PwriteAddon, readonly threads: number) {
    const completions = new Float64Array(2 * BATCH);
    this.threads = addon.start(threads, completions, (count) => {
      for (let i = 0; i < count; i++) {
        const id = completions[2 * i]!;
        const cb = this.done[id]!;
        this.done[id] = undefined;
        this.free.push(id);
        this.busy--;
        cb(completions[2 * i + 1]!);
      }
    });
  }

  /**
   * pwrite all of `data` at `position` of `fd`; `cb` gets the bytes written or -errno. `data`
   * must not change until then. Requests staged in one tick may run in any order.
   */
  write(fd: number, data: Uint8Array, position: number, cb: Done): void {
    if (this.staged.length === 0) process.nextTick(this.handOver);
    this.staged.push({ fd, data, position, cb });
  }

  private readonly handOver = (): void => {
    const staged = this.staged;
    this.staged = [];
    if (staged.length === 1 && this.busy === 0) {
      const w = staged[0]!;
      this.counts.inline++;
      w.cb(writeAll(w.fd, w.data, w.position));
      return;
    }
    for (const w of staged) {
      const id = this.free.pop() ?? this.done.length;
      this.done[id] = w.cb;
      this.busy++;
      this.counts.threaded++;
      this.addon.submit(id, w.fd, w.data, w.position);
    }
  };
}

/** pwrite on the loop, continued after a short write: the bytes written or -errno. */
function writeAll(fd: number, data: Uint8Array, position: number): number {
  try {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
    return done;
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).errno;
    return typeof errno === 'number' && errno < 0 ? errno : -5;
  }
}

let pool: WritePool | undefined;
let why: string | undefined;
let loaded = false;

function threadCount(): number {
  const v = process.env.VMHOST_WRITE_THREADS;
  if (v === undefined || v === '') return DEFAULT_THREADS;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 8 ? n : DEFAULT_THREADS;
}

function load(): WritePool | undefined {
  if (loaded) return pool;
  loaded = true;
  const threads = threadCount();
  if (process.env.VMHOST_NO_PWRITE_ADDON === '1') why = 'VMHOST_NO_PWRITE_ADDON=1';
  else if (threads === 0) why = 'VMHOST_WRITE_THREADS=0';
  if (why) return undefined;
  try {
    const src = readFileSync(join(repo, 'native/vmhost-pwrite.c'));
    const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
    const path = join(process.env.VMHOST_BIN_CACHE ?? join(repo, '.cache/bin'), hash, 'vmhost-pwrite.node');
    if (!existsSync(path)) why = `${path} is not built (scripts/build-pwrite.sh)`;
    else pool = new WritePool(createRequire(import.meta.url)(path) as PwriteAddon, threads);
  } catch (e) {
    why = e instanceof Error ? e.message : String(e);
  }
  if (!pool) process.stderr.write(`vmhost: small disk writes run on the event loop: the writer-thread addon is unavailable (${why})\n`);
  return pool;
}

/** The process's writer threads, started on first use; undefined when switched off or not built. */
export function writePool(): WritePool | undefined {
  return load();
}

/** Whether small writes go to writer threads, and if not, why (tests, the bench). */
export function writePoolStatus(): { threads: number; reason?: string } {
  const p = load();
  return p ? { threads: p.threads } : { threads: 0, reason: why ?? 'unknown' };
}
