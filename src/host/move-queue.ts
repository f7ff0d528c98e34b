// The host's limits on simultaneous moves: Set-VMHost -MaximumVirtualMachineMigrations for
// Move-VM, -MaximumStorageMigrations for Move-VMStorage (Hyper-V counts the two apart, so a
// host has one queue of each). A move takes a slot before it starts and waits, in arrival
// order, while all are taken; a waiting move that is cancelled (Stop-Job) leaves the line
// without ever running. Raising the limit lets waiting moves start at once. Pure.
import { VmhostError } from '../common/index.ts';

interface Waiter { grant: () => void; refuse: (e: Error) => void }

export class MoveQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  /** `slot` names the limit in a cancelled waiter's error ('migration', 'storage migration'). */
  constructor(private limit: number, private readonly slot = 'migration') {}

  get active(): number { return this.running; }
  get queued(): number { return this.waiting.length; }

  setLimit(limit: number): void {
    this.limit = limit;
    this.pump();
  }

  /** Wait for a slot; the returned function gives it back (exactly once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw this.cancelled();
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running++;
    } else {
      await new Promise<void>((grant, refuse) => {
        const w: Waiter = { grant, refuse };
        this.waiting.push(w);
        signal?.addEventListener('abort', () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) { this.waiting.splice(i, 1); refuse(this.cancelled()); }
        }, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.pump();
    };
  }

  /**
   * `work` in a slot: a job started `queued` waits here (Get-Job says Queued), calls
   * `started` once it has a slot, and gives the slot back however `work` ends.
   */
  async run<T>(h: { signal: AbortSignal; started(): void }, work: () => Promise<T>): Promise<T> {
    const release = await this.acquire(h.signal);
    try {
      h.started();
      return await work();
    } finally {
      release();
    }
  }

  private pump(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!.grant();
    }
  }

  private cancelled(): VmhostError {
    return new VmhostError('JOB_CANCELLED', `the move was cancelled (Stop-Job) while it waited for a free ${this.slot} slot`, { slot: this.slot });
  }
}
