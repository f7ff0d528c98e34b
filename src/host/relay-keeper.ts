// Keeps one host vNIC's tap relay running while the daemon runs. The relay ends when its
// socket closes or it crashes; the port is still there (ports outlive their peers), so the
// keeper starts a new one, backing off (1 s doubling to 60 s) while that keeps failing.
import { describeExit, TapRelay, type TapSpec } from './tapd.ts';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

export class RelayKeeper {
  private relay: TapRelay | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private retryMs = FIRST_RETRY_MS;

  /** `trouble` is told each time the relay ends or a restart fails (for the event log). */
  constructor(private readonly spec: TapSpec, private readonly trouble: (message: string) => void) {}

  /** Starts the relay; a failure is thrown (the helper's typed error) and not retried. */
  async start(): Promise<void> {
    const r = await TapRelay.start(this.spec);
    if (this.stopped) { await r.stop(); return; }
    this.relay = r;
    const began = Date.now();
    void r.exited.then((x) => {
      if (this.relay !== r) return; // stopped on purpose
      this.relay = null;
      // A relay that ran a good while starts a fresh back-off; one that dies at once does not.
      if (Date.now() - began > MAX_RETRY_MS) this.retryMs = FIRST_RETRY_MS;
      this.trouble(`the tap relay ended (${describeExit(x)}); restarting it in ${this.retryMs / 1000} s`);
      this.retryLater();
    });
  }

  /** Daemon start: like start(), but a failure is reported and retried instead of thrown. */
  resume(): Promise<void> {
    return this.start().catch((e: unknown) => {
      this.trouble(`the tap relay could not be started (${(e as Error).message}); next try in ${this.retryMs / 1000} s`);
      this.retryLater();
    });
  }

  private retryLater(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { this.timer = null; void this.resume(); }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }

  /** Stops the relay for good (daemon stop, adapter removal); the tap itself stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const r = this.relay;
    this.relay = null;
    await r?.stop();
  }
}
