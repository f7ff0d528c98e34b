// Bandwidth QoS (Set-VMNetworkAdapter -MaximumBandwidth / -MinimumBandwidthAbsolute /
// -MinimumBandwidthWeight; switch -MinimumBandwidthMode), the seed's Figures 15–17:
// - RateLimiter: MaximumBandwidth caps what a VM sends. Frames over the cap wait in a queue
//   drained by a token bucket; while the queue holds more than a few frames the port stops
//   reading its socket (the guest's NIC queue fills and its TCP slows — no loss); frames
//   injected beyond the queue bound are dropped ('rate-limit').
// - FairQueue: egress toward a port with a capacity (an uplink, a slow VM) is scheduled by
//   deficit round robin over one queue per source port, quantum ∝ the source's weight —
//   its MinimumBandwidthWeight, or its MinimumBandwidthAbsolute in Absolute mode (ports
//   without one share the switch's default-flow value). Under congestion each busy source
//   gets at least its share (≥ its floor when the floors fit the capacity); an idle
//   source's share goes to the busy ones (work-conserving). Overflow = 'congestion' drop.
// Timers are unref'd. Depends on nothing.

const TICK_MS = 2;

export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Bytes per millisecond. */
  private rate: number;
  constructor(bitsPerSecond: number, private burst: number, now: number) {
    this.rate = bitsPerSecond / 8000;
    this.tokens = burst;
    this.last = now;
  }
  setRate(bitsPerSecond: number, burst: number): void { this.rate = bitsPerSecond / 8000; this.burst = burst; }
  /**
   * Adds the tokens earned since the last call. While a backlog waits (`backlogged`) the cap is
   * 250 ms of traffic instead of the burst: tokens then only pile up because a timer fired
   * late, and giving them back keeps the average rate exact on a busy host.
   */
  refill(now: number, backlogged = false): number {
    const cap = backlogged ? Math.max(this.burst, this.rate * 250) : this.burst;
    this.tokens = Math.min(cap, this.tokens + (now - this.last) * this.rate);
    this.last = now;
    return this.tokens;
  }
  take(n: number): void { this.tokens -= n; }
  /** Milliseconds until `n` bytes are available. */
  waitMs(n: number): number { return this.tokens >= n ? 0 : (n - this.tokens) / this.rate; }
}

function burstFor(bps: number): number {
  // ~20 ms of traffic, at least four full frames: node timers on a busy host fire late, and a
  // smaller bucket would lose the tokens of the late part (measured: 5 ms gave 75–80 % of the rate).
  return Math.max(4 * 1522, (bps / 8000) * 20);
}

export class RateLimiter {
  private readonly bucket: TokenBucket;
  private readonly q: Uint8Array[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private throttled = false;
  maxQueue = 256;
  pauseAbove = 8;

  constructor(
    bitsPerSecond: number,
    private readonly now: () => number,
    private readonly pass: (frame: Uint8Array) => void,
    private readonly onDrop: () => void,
    private readonly backpressure: (pause: boolean) => void,
  ) {
    this.bucket = new TokenBucket(bitsPerSecond, burstFor(bitsPerSecond), now());
  }

  setRate(bps: number): void { this.bucket.setRate(bps, burstFor(bps)); }

  get queued(): number { return this.q.length - this.head; }

  offer(frame: Uint8Array): void {
    if (this.queued === 0 && this.bucket.refill(this.now()) >= frame.length) { this.bucket.take(frame.length); this.pass(frame); return; }
    if (this.queued >= this.maxQueue) { this.onDrop(); return; }
    // The frame may be a view into a buffer its producer reuses: keep a copy.
    this.q.push(Uint8Array.prototype.slice.call(frame));
    if (!this.throttled && this.queued > this.pauseAbove) { this.throttled = true; this.backpressure(true); }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queued === 0) return;
    const next = this.q[this.head]!;
    this.bucket.refill(this.now(), true);
    const wait = Math.max(1, Math.ceil(this.bucket.waitMs(next.length)));
    this.timer = setTimeout(() => { this.timer = null; this.drain(); }, wait);
    this.timer.unref();
  }

  private drain(): void {
    let tokens = this.bucket.refill(this.now(), true);
    while (this.queued > 0) {
      const f = this.q[this.head]!;
      if (tokens < f.length) break;
      this.bucket.take(f.length);
      tokens -= f.length;
      this.q[this.head++] = undefined as unknown as Uint8Array;
      this.pass(f);
    }
    if (this.head > 1024 && this.head * 2 > this.q.length) { this.q.splice(0, this.head); this.head = 0; }
    if (this.throttled && this.queued <= this.pauseAbove / 2) { this.throttled = false; this.backpressure(false); }
    this.schedule();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.throttled) { this.throttled = false; this.backpressure(false); }
  }
}

interface SourceQueue {
  readonly frames: Uint8Array[];
  head: number;
  bytes: number;
  deficit: number;
  /** The quantum of the current visit was granted. */
  granted: boolean;
  weight: number;
}

/** Deficit round robin toward one congested port. */
export class FairQueue {
  private readonly bucket: TokenBucket;
  private readonly sources = new Map<string, SourceQueue>();
  private order: SourceQueue[] = [];
  private rr = 0;
  private totalBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  maxQueuedBytesPerSource = 256 << 10;
  private static readonly QUANTUM = 4 * 1514;

  constructor(
    capacityBps: number,
    private readonly now: () => number,
    private readonly weightOf: (source: string) => number,
    private readonly transmit: (frame: Uint8Array) => void,
  ) {
    this.bucket = new TokenBucket(capacityBps, burstFor(capacityBps), now());
  }

  setCapacity(bps: number): void { this.bucket.setRate(bps, burstFor(bps)); }

  /** Weights may have changed: re-read them. */
  refreshWeights(): void { for (const [id, s] of this.sources) s.weight = Math.max(1e-6, this.weightOf(id)); }

  /** false = dropped (the source's queue is full). */
  enqueue(source: string, frame: Uint8Array): boolean {
    let s = this.sources.get(source);
    if (!s) {
      s = { frames: [], head: 0, bytes: 0, deficit: 0, granted: false, weight: Math.max(1e-6, this.weightOf(source)) };
      this.sources.set(source, s);
      this.order.push(s);
    }
    if (s.bytes + frame.length > this.maxQueuedBytesPerSource) return false;
    const wasBusy = this.totalBytes > 0;
    s.frames.push(Uint8Array.prototype.slice.call(frame));
    s.bytes += frame.length;
    this.totalBytes += frame.length;
    if (!this.timer) this.drain(wasBusy);
    return true;
  }

  private drain(backlogged = true): void {
    this.timer = null;
    let tokens = this.bucket.refill(this.now(), backlogged);
    let maxW = 0;
    for (const s of this.order) if (s.bytes > 0 && s.weight > maxW) maxW = s.weight;
    while (this.totalBytes > 0 && this.order.length > 0) {
      if (this.rr >= this.order.length) this.rr = 0;
      const s = this.order[this.rr]!;
      if (s.bytes === 0) { s.deficit = 0; s.granted = false; this.rr++; continue; }
      if (!s.granted) { s.deficit += Math.max(64, FairQueue.QUANTUM * (s.weight / maxW)); s.granted = true; }
      const f = s.frames[s.head]!;
      if (f.length > s.deficit) { s.granted = false; this.rr++; continue; }
      if (f.length > tokens) break;
      s.frames[s.head++] = undefined as unknown as Uint8Array;
      if (s.head > 512) { s.frames.splice(0, s.head); s.head = 0; }
      s.bytes -= f.length;
      this.totalBytes -= f.length;
      s.deficit -= f.length;
      tokens -= f.length;
      this.bucket.take(f.length);
      this.transmit(f);
      if (s.bytes === 0) { s.deficit = 0; s.granted = false; this.rr++; }
    }
    if (this.totalBytes > 0) {
      this.timer = setTimeout(() => this.drain(), TICK_MS);
      this.timer.unref();
    }
  }

  removeSource(source: string): void {
    const s = this.sources.get(source);
    if (!s) return;
    this.totalBytes -= s.bytes;
    this.sources.delete(source);
    this.order = this.order.filter((x) => x !== s);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
