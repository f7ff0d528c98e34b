// A one-at-a-time queue for operations that change metadata (block allocation, BAT and
// bitmap updates, resize). Reads do not queue: they only ever see a BAT entry after the
// block behind it is complete (see allocate.ts).

export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
