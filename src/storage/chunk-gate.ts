// Exclusion between a background copy that walks a disk one chunk at a time and the guest's
// writes: a chunk being copied holds off writes that touch it, a chunk being written holds
// off its copy, reads are never held. Writes among themselves are not ordered (the guest
// orders its own overlapping writes). Used by the live merge (served-merge.ts).
export class ChunkGate {
  /** Writes in flight per chunk. */
  private readonly writing = new Map<number, number>();
  private copying: { chunk: number; done: Promise<void> } | undefined;
  private writesDrained: (() => void) | undefined;

  constructor(readonly chunkSize: number) {}

  /** Run a write over [offset, offset + length) once no copy holds a chunk of it. */
  async write<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    const first = Math.floor(offset / this.chunkSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.chunkSize);
    while (this.copying && this.copying.chunk >= first && this.copying.chunk <= last) await this.copying.done;
    for (let c = first; c <= last; c++) this.writing.set(c, (this.writing.get(c) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (let c = first; c <= last; c++) {
        const n = this.writing.get(c)! - 1;
        if (n > 0) this.writing.set(c, n);
        else {
          this.writing.delete(c);
          if (this.copying?.chunk === c) this.writesDrained?.();
        }
      }
    }
  }

  /** Run `fn` (the copy of chunk `chunk`) with no write to that chunk in flight or started meanwhile. One copy at a time. */
  async copy(chunk: number, fn: () => Promise<void>): Promise<void> {
    let release!: () => void;
    this.copying = { chunk, done: new Promise<void>((r) => (release = r)) };
    try {
      while (this.writing.has(chunk)) await new Promise<void>((r) => (this.writesDrained = r));
      await fn();
    } finally {
      this.writesDrained = undefined;
      this.copying = undefined;
      release();
    }
  }
}
