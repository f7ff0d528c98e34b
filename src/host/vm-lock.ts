// One state-changing operation per VM at a time; a second one waits its turn instead of
// racing the first on the same QEMU process.
export class VmLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
