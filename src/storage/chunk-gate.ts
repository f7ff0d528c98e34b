// Exclusion between a background copy that walks a disk one chunk at a time and the guest's
// writes: a chunk being copied holds off writes that touch it, a chunk being written holds
// off its copy, reads are never held. Writes among themselves are not ordered (the guest
// orders its own overlapping writes). Several chunks may be copied at once, one copy per
// chunk. Used by the live merge (served-merge.ts) and the mirror (mirror.ts).
export class ChunkGate {
  /** Writes in flight per chunk. */
  private readonly writing = new Map<number, number>();
  /** Copies under way, by chunk. */
  private readonly copying = new Map<number, Promise<void>>();
  /** A copy waiting for its chunk's writes to drain, by chunk. */
  private readonly writesDrained = new Map<number, () => void>();

  constructor(readonly chunkSize: number) {}

  /** Run a write over [offset, offset + length) once no copy holds a chunk of it. */
  async write<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    const first = Math.floor(offset / this.chunkSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.chunkSize);
    for (let held = this.copyIn(first, last); held; held = this.copyIn(first, last)) await held;
    for (let c = first; c <= last; c++) this.writing.set(c, (this.writing.get(c) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (let c = first; c <= last; c++) {
        const n = this.writing.get(c)! - 1;
        if (n > 0) this.writing.set(c, n);
        else {
          this.writing.delete(c);
          this.writesDrained.get(c)?.();
        }
      }
    }
  }

  private copyIn(first: number, last: number): Promise<void> | undefined {
    if (this.copying.size === 0) return undefined;
    for (let c = first; c <= last; c++) {
      const p = this.copying.get(c);
      if (p) return p;
    }
    return undefined;
  }

  /** Run `fn` (the copy of chunk `chunk`) with no write to that chunk in flight or started meanwhile. */
  async copy(chunk: number, fn: () => Promise<void>): Promise<void> {
    for (let held = this.copying.get(chunk); held; held = this.copying.get(chunk)) await held;
    let release!: () => void;
    this.copying.set(chunk, new Promise<void>((r) => (release = r)));
    try {
      while (this.writing.has(chunk)) await new Promise<void>((r) => this.writesDrained.set(chunk, r));
      await fn();
    } finally {
      this.writesDrained.delete(chunk);
      this.copying.delete(chunk);
      release();
    }
  }
}
