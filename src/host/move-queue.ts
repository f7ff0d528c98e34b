// The host's limit on simultaneous moves (Set-VMHost -MaximumVirtualMachineMigrations): a move
// takes a slot before it starts and waits, in arrival order, while all are taken; a waiting
// move that is cancelled (Stop-Job) leaves the line without ever running. Raising the limit
// lets waiting moves start at once. Pure.
import { VmhostError } from '../common/index.ts';

interface Waiter { grant: () => void; refuse: (e: Error) => void }

export class MoveQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private limit: number) {}

  get active(): number { return this.running; }
  get queued(): number { return this.waiting.length; }

  setLimit(limit: number): void {
    this.limit = limit;
    this.pump();
  }

  /** Wait for a slot; the returned function gives it back (exactly once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw cancelled();
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running++;
    } else {
      await new Promise<void>((grant, refuse) => {
        const w: Waiter = { grant, refuse };
        this.waiting.push(w);
        signal?.addEventListener('abort', () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) { this.waiting.splice(i, 1); refuse(cancelled()); }
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

  private pump(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!.grant();
    }
  }
}

function cancelled(): VmhostError {
  return new VmhostError('JOB_CANCELLED', 'the move was cancelled (Stop-Job) while it waited for a free migration slot', {});
}
