// The pipeline's millisecond clock, read once per burst of frames rather than once per frame
// (Date.now() is a call into the runtime, a few percent of a frame's cost). The time read is
// reused until the current task ends (a microtask marks it stale) or BURST_FRAMES frames
// have used it, whichever comes first: so it lags the real clock by at most one burst's
// processing — nothing next to MAC ageing or ACL idle timeouts, which count in seconds.
// Depends on nothing.

const BURST_FRAMES = 256;

export class CoarseClock {
  private value = 0;
  private left = 0;
  private pending = false;
  private readonly expire = (): void => { this.pending = false; this.left = 0; };

  constructor(private readonly source: () => number) {}

  readonly now = (): number => {
    if (this.left > 0) { this.left--; return this.value; }
    this.value = this.source();
    this.left = BURST_FRAMES;
    if (!this.pending) { this.pending = true; queueMicrotask(this.expire); }
    return this.value;
  };
}
