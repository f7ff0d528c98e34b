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

  run<T>(fn: (held: LockHeld) => Promise<T>): Promise<T> {
    // The proof is only a marker: what matters is that only this function hands it out.
    const held = Object.freeze({}) as LockHeld;
    return this.serial.run(() => fn(held));
  }
}
