// A dirty-block bitmap: one bit per block of the virtual disk, and its conversions to and from
// runs of blocks ([first, count]), the form the journal stores and consumers read. Pure.

/** [first block, block count] */
export type Run = [number, number];

export class Bitmap {
  readonly bits: Uint8Array;

  constructor(readonly blocks: number) {
    this.bits = new Uint8Array(Math.ceil(blocks / 8));
  }

  has(b: number): boolean {
    return (this.bits[b >> 3]! & (1 << (b & 7))) !== 0;
  }

  set(b: number): void {
    this.bits[b >> 3]! |= 1 << (b & 7);
  }

  setRun(first: number, count: number): void {
    for (let b = first; b < first + count && b < this.blocks; b++) this.set(b);
  }

  setRuns(runs: readonly Run[]): void {
    for (const [f, c] of runs) this.setRun(f, c);
  }

  /** Every block of [first, last] set. */
  covers(first: number, last: number): boolean {
    for (let b = first; b <= last; b++) if (!this.has(b)) return false;
    return true;
  }

  clear(): void {
    this.bits.fill(0);
  }

  fill(): void {
    this.bits.fill(0xff);
  }

  or(other: Bitmap): void {
    for (let i = 0; i < this.bits.length; i++) this.bits[i]! |= other.bits[i]!;
  }

  /** this = this AND other. */
  and(other: Bitmap): void {
    for (let i = 0; i < this.bits.length; i++) this.bits[i]! &= other.bits[i]!;
  }

  copy(): Bitmap {
    const b = new Bitmap(this.blocks);
    b.bits.set(this.bits);
    return b;
  }

  count(): number {
    let n = 0;
    for (const [, c] of this.runs()) n += c;
    return n;
  }

  /** The set blocks as runs, in order; whole zero bytes are skipped at once. */
  runs(): Run[] {
    const out: Run[] = [];
    let start = -1;
    for (let i = 0; i < this.bits.length; i++) {
      const byte = this.bits[i]!;
      if (byte === 0 && start < 0) continue;
      if (byte === 0xff && start >= 0 && i * 8 + 8 <= this.blocks) continue;
      for (let k = 0; k < 8; k++) {
        const b = i * 8 + k;
        if (b >= this.blocks) break;
        if (byte & (1 << k)) {
          if (start < 0) start = b;
        } else if (start >= 0) {
          out.push([start, b - start]);
          start = -1;
        }
      }
    }
    if (start >= 0) out.push([start, this.blocks - start]);
    return out;
  }
}
