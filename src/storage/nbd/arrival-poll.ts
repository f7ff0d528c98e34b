// Adaptive polling of the event loop between requests, as QEMU's AioContext polls (poll-max-ns)
// before it blocks. When the loop has answered what arrived and sleeps in epoll_wait, the
// client's next send must wake it, and the client pays for that wake-up inside its sendmsg
// (the socket's wait-queue callback, the wake-up, on this virtualized host an IPI): a client
// driving QD32 at full speed had a quarter of its samples in sendmsg against us and 1.4 %
// against qemu-nbd, which sleeps less (issue 17's raw-hole row, where the client, not our
// server, is the limit; BENCHMARKS.md, branch nbdrows). While requests keep coming, the loop instead
// spins through non-blocking polls (setImmediate: libuv polls with a zero timeout) for a window
// after the latest arrival, so the next request is read without a wake-up on either side.
// The window adapts per process, as QEMU's does: a gap between arrivals longer than the window
// but within the cap doubles it (a longer spin would have caught that one); a gap past the cap
// shrinks it by an eighth, to 0 below 8 µs (the line is quiet: spinning would only burn the
// core). The shrink is gentler than the growth because one spin that times out wastes at most
// the window, while every wake-up it saves is paid by the client: on a busy line where most
// gaps are short, a descheduled moment or a pause of the client must not close the window
// (halving did, on a loaded host: the server still slept on 3 gaps in 4). An idle or slow
// export decays to no spinning within a few dozen arrivals; a busy one spends its otherwise
// idle core on the spin.
// A spin only pays on a core nobody else wants: on a loaded host it takes time slices from the
// client and everyone else (a LOADED A/B: 40 % more server CPU per read, no faster). So
// before a spin and every half millisecond of one the poll reads the process's involuntary
// context switches; one more than at the last look means the scheduler had someone waiting
// for this core, and polling stops for the next 100 ms (the loop sleeps in epoll_wait again,
// as without it). On a quiet host the loop is never preempted and polls on.
// VMHOST_NBD_POLL_US sets the cap (0: never spin).

/** The longest window, in ms: a gap beyond it ends the spinning (QEMU's iothreads cap at 32 µs; this host's wake-ups are slower). */
const MAX_MS = envMicros('VMHOST_NBD_POLL_US', 128) / 1000;
/** The window a first short gap opens; below it, shrinking closes the window. */
const MIN_MS = 0.008;
/** A gap past the cap keeps this much of the window. */
const SHRINK = 7 / 8;
/** How often a spin checks for contention (a getrusage), and how long contention stops polling. */
const CHECK_MS = 0.5;
const BACKOFF_MS = 100;

function envMicros(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** The process's involuntary context switches so far (getrusage). */
const preempted = (): number => process.resourceUsage().involuntaryContextSwitches;

export class ArrivalPoll {
  /** Current window in ms: how long after an arrival the loop keeps polling. */
  private windowMs = 0;
  private last = -Infinity;
  private spinning: NodeJS.Immediate | undefined;
  /** Involuntary switches at the last check, and when the next check is due. */
  private switches = 0;
  private checkAt = 0;
  /** No polling before this time (performance.now()): the core was contended. */
  private backoffUntil = -Infinity;
  private readonly spin = (): void => {
    const now = performance.now();
    this.spinning = now - this.last >= this.windowMs || (now >= this.checkAt && this.contended(now)) ? undefined : setImmediate(this.spin);
  };

  /** `switchCount`: the involuntary context switch count (injected by tests). */
  constructor(private readonly maxMs = MAX_MS, private readonly switchCount: () => number = preempted) {
    this.switches = switchCount();
  }

  /** The window now, in µs (for tests and diagnostics). */
  get windowMicros(): number {
    return this.windowMs * 1000;
  }

  /** Whether the loop is spinning now. */
  get active(): boolean {
    return this.spinning !== undefined;
  }

  /** Bytes arrived on some connection: adapt the window to the gap since the last arrival and spin for it. */
  arrived(): void {
    const now = performance.now();
    const gap = now - this.last;
    this.last = now;
    if (now < this.backoffUntil) return;
    if (gap > this.maxMs) this.windowMs = this.windowMs * SHRINK < MIN_MS ? 0 : this.windowMs * SHRINK;
    else if (gap > this.windowMs) this.windowMs = Math.min(this.maxMs, Math.max(2 * this.windowMs, MIN_MS));
    if (this.windowMs > 0 && !this.spinning && !this.contended(now)) this.spinning = setImmediate(this.spin);
  }

  /** Whether the process was preempted since the last look (someone else wanted the core): if so, no polling for a while. */
  private contended(now: number): boolean {
    this.checkAt = now + CHECK_MS;
    const n = this.switchCount();
    const more = n > this.switches;
    this.switches = n;
    if (more) {
      this.windowMs = 0;
      this.backoffUntil = now + BACKOFF_MS;
    }
    return more;
  }

  /** Stop spinning now (the server is closing); a later arrival may start again. */
  stop(): void {
    if (this.spinning) clearImmediate(this.spinning);
    this.spinning = undefined;
    this.windowMs = 0;
  }
}
