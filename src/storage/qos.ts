// Storage QoS stage (Set-VMHardDiskDrive -MaximumIOPS -MinimumIOPS), in normalized IOPS.
// Maximum: a smooth token bucket in virtual time (GCRA): each request is released at the
// bucket's "theoretical arrival time" and pushes it on by cost/rate; credit for idle time
// is capped at `burstSeconds` (200 ms: enough to make up for a stalled client or a busy
// host without letting a burst stand out), so a flood is paced request by request, never in long stalls.
// Minimum: every `windowMs` the achieved normalized IOPS is compared with the minimum while
// there was demand (requests waiting or in flight for most of the window); the first short
// window of an episode raises one 'minimum-iops-alert', the first good window ends the
// episode with 'minimum-iops-restored'. Both limits change at runtime.
import { EventEmitter } from 'node:events';
import type { IoRequest, IoResult, Next, Stage } from './pipeline.ts';
import { normalizedIos } from './normalized.ts';

export interface QosLimits {
  /** 0 or undefined: no cap. */
  maximumIops?: number;
  /** 0 or undefined: no reservation (no alerts). */
  minimumIops?: number;
}

export interface MinimumIopsAlert {
  exportName: string;
  minimumIops: number;
  achievedIops: number;
  windowMs: number;
  /** Share of the window with requests waiting or in flight (0..1). */
  demand: number;
}

export interface QosOptions {
  exportName: string;
  /** Credit a bucket may bank while idle (seconds of the maximum rate). Default 0.2. */
  burstSeconds?: number;
  /** Minimum-IOPS evaluation window. Default 1000 ms. */
  windowMs?: number;
}

interface Waiter {
  at: number;
  resolve: () => void;
  timer: NodeJS.Timeout;
}

export class QosStage extends EventEmitter implements Stage {
  readonly name = 'qos';
  private max = 0;
  private min = 0;
  /** Theoretical arrival time (performance.now() ms) of the next request. */
  private tat = 0;
  private readonly burstMs: number;
  private readonly windowMs: number;
  private readonly exportName: string;
  private waiters = new Set<Waiter>();
  // Minimum-IOPS accounting.
  private outstanding = 0;
  private busySince = 0;
  private busyMs = 0;
  private doneIos = 0;
  private windowStart = performance.now();
  private monitor: NodeJS.Timeout | undefined;
  private inEpisode = false;

  constructor(opts: QosOptions) {
    super();
    this.exportName = opts.exportName;
    this.burstMs = (opts.burstSeconds ?? 0.2) * 1000;
    this.windowMs = opts.windowMs ?? 1000;
  }

  get limits(): { maximumIops: number; minimumIops: number } {
    return { maximumIops: this.max, minimumIops: this.min };
  }

  set(limits: QosLimits): void {
    const max = Math.max(0, limits.maximumIops ?? this.max);
    const min = Math.max(0, limits.minimumIops ?? this.min);
    if (max !== this.max) {
      this.max = max;
      // Waiting requests were paced for the old rate: let them go and start afresh.
      this.tat = performance.now();
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.resolve();
      }
      this.waiters.clear();
    }
    if (min !== this.min) {
      this.min = min;
      this.inEpisode = false;
      this.resetWindow(performance.now());
      if (min > 0 && !this.monitor) {
        this.monitor = setInterval(() => this.evaluate(), this.windowMs);
        this.monitor.unref();
      } else if (min === 0 && this.monitor) {
        clearInterval(this.monitor);
        this.monitor = undefined;
      }
    }
  }

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    // No limits: nothing to pace or watch.
    if (this.max === 0 && this.min === 0) return next(req);
    return this.limited(req, next);
  }

  /** Without limits a read answered at once has nothing to wait for or count here. */
  passesNow(): boolean {
    return this.max === 0 && this.min === 0;
  }

  private async limited(req: IoRequest, next: Next): Promise<IoResult> {
    const cost = normalizedIos(req);
    this.begin();
    try {
      if (this.max > 0 && cost > 0) await this.admit(cost);
      const r = await next(req);
      this.doneIos += cost;
      return r;
    } finally {
      this.end();
    }
  }

  private admit(cost: number): Promise<void> | undefined {
    const now = performance.now();
    const at = Math.max(this.tat, now - this.burstMs);
    this.tat = at + (cost * 1000) / this.max;
    const delay = at - now;
    if (delay < 0.5) return undefined;
    return new Promise((resolve) => {
      const w: Waiter = {
        at,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          resolve();
        }, delay),
      };
      this.waiters.add(w);
    });
  }

  private begin(): void {
    if (this.outstanding++ === 0) this.busySince = performance.now();
  }

  private end(): void {
    if (--this.outstanding === 0) this.busyMs += performance.now() - this.busySince;
  }

  private resetWindow(now: number): void {
    this.windowStart = now;
    this.busyMs = 0;
    this.doneIos = 0;
    if (this.outstanding > 0) this.busySince = now;
  }

  /** One minimum-IOPS window: raise or clear the alert. Public for tests. */
  evaluate(): void {
    const now = performance.now();
    const span = now - this.windowStart;
    if (span <= 0) return;
    const busy = this.busyMs + (this.outstanding > 0 ? now - this.busySince : 0);
    const demand = Math.min(1, busy / span);
    const achieved = (this.doneIos * 1000) / span;
    this.resetWindow(now);
    if (this.min <= 0) return;
    const short = demand >= 0.5 && achieved < this.min;
    if (short && !this.inEpisode) {
      this.inEpisode = true;
      const alert: MinimumIopsAlert = { exportName: this.exportName, minimumIops: this.min, achievedIops: achieved, windowMs: span, demand };
      this.emit('minimum-iops-alert', alert);
    } else if (!short && this.inEpisode) {
      this.inEpisode = false;
      this.emit('minimum-iops-restored', { exportName: this.exportName, minimumIops: this.min, achievedIops: achieved, windowMs: span, demand });
    }
  }

  close(): void {
    if (this.monitor) clearInterval(this.monitor);
    this.monitor = undefined;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters.clear();
  }
}
