// One state-changing operation per VM at a time; a second one waits its turn instead of
// racing the first on the same QEMU process. The lock hands its holder a `LockHeld` proof:
// a VM's state can only be changed with one (vm-state.ts), so a state change made outside
// the lock does not typecheck.
declare const heldBrand: unique symbol;
/** Proof that the caller runs inside `VmLock.run` (nothing else can make one without a cast). */
export interface LockHeld { readonly [heldBrand]: true }

/** Runs functions one after the other, in the order they were queued. */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class VmLock {
  private readonly serial = new SerialLock();
  private current?: LockHeld;

  run<T>(fn: (held: LockHeld) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      // A fresh proof per holder, valid only until its function ends: a proof kept for later is refused.
      const held = Object.freeze({}) as LockHeld;
      this.current = held;
      try {
        return await fn(held);
      } finally {
        this.current = undefined;
      }
    });
  }

  /** Whether `held` is the proof of the function holding the lock right now. */
  holds(held: LockHeld): boolean {
    return this.current !== undefined && held === this.current;
  }
}
