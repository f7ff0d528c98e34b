// A crash-simulating BlockFile: it records every write, flush and truncate made through it
// (on top of a starting image) and can rebuild the file as a power loss at any point would
// have left it. Only what a completed flush covered is guaranteed; writes issued after the
// last flush before the cut may be lost, partly applied, or (the last one) torn.
import type { BlockFile } from './block-file.ts';
import { MemoryFile } from './memory-file.ts';
import { seededRandom } from '../common/prng.ts';

export type CrashOp =
  | { kind: 'write'; offset: number; data: Uint8Array }
  | { kind: 'flush' }
  | { kind: 'truncate'; size: number };

/** How the unflushed tail (ops after the last flush before the cut) is treated. */
export type CrashVariant =
  | { kind: 'flushed-only' }
  /** Every unflushed op is applied (nothing lost), except the last write which is torn. */
  | { kind: 'torn-last'; seed: number }
  /** A seeded random subset of the unflushed ops is applied, in order; the last lands whole, torn or not at all. */
  | { kind: 'random-subset'; seed: number };

export class CrashFile implements BlockFile {
  readonly name: string;
  readonly readOnly = false;
  readonly ops: CrashOp[] = [];
  private live: MemoryFile;
  private base: MemoryFile;

  constructor(base: MemoryFile, name = 'crash') {
    this.name = name;
    this.base = base.clone({ readOnly: false });
    this.live = base.clone({ readOnly: false });
  }

  /** Number of recorded ops; a cut point is any integer 0..opCount. */
  get opCount(): number {
    return this.ops.length;
  }

  /** Cut points just after each write (the interesting places to crash). */
  writeBoundaries(): number[] {
    const out: number[] = [];
    this.ops.forEach((op, i) => {
      if (op.kind !== 'flush') out.push(i + 1);
    });
    return out;
  }

  /** Index of the first op after the last flush in ops[0..cut). */
  durablePrefix(cut: number): number {
    for (let i = cut - 1; i >= 0; i--) if (this.ops[i]!.kind === 'flush') return i + 1;
    return 0;
  }

  /** The file as a crash after `cut` ops would leave it. */
  stateAt(cut: number, variant: CrashVariant = { kind: 'flushed-only' }): MemoryFile {
    const f = this.base.clone({ name: `${this.name}@${cut}` });
    const durable = this.durablePrefix(cut);
    for (let i = 0; i < durable; i++) apply(f, this.ops[i]!);
    if (variant.kind === 'flushed-only') return f;
    const rnd = prng(variant.seed * 7919 + cut);
    for (let i = durable; i < cut; i++) {
      const op = this.ops[i]!;
      const last = i === cut - 1;
      if (variant.kind === 'random-subset' && !last && rnd() < 0.5) continue;
      if (last && op.kind === 'write') {
        // random-subset: the last write may also land whole or not at all (writes reorder).
        if (variant.kind === 'random-subset') {
          const r = rnd();
          if (r < 1 / 3) continue;
          if (r < 2 / 3) {
            apply(f, op);
            continue;
          }
        }
        // Torn: a random subset of its 512-byte sectors lands.
        for (let s = 0; s < op.data.length; s += 512) {
          if (rnd() < 0.5) f.writeSync(op.data.subarray(s, Math.min(op.data.length, s + 512)), op.offset + s);
        }
        continue;
      }
      apply(f, op);
    }
    return f;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    this.live.readSync(buf, offset);
  }
  async write(buf: Uint8Array, offset: number): Promise<void> {
    this.ops.push({ kind: 'write', offset, data: buf.slice() });
    this.live.writeSync(buf, offset);
  }
  async flush(): Promise<void> {
    this.ops.push({ kind: 'flush' });
  }
  async size(): Promise<number> {
    return this.live.size();
  }
  async truncate(size: number): Promise<void> {
    this.ops.push({ kind: 'truncate', size });
    this.live.truncateSync(size);
  }
  async close(): Promise<void> {}
}

function apply(f: MemoryFile, op: CrashOp): void {
  if (op.kind === 'write') f.writeSync(op.data, op.offset);
  else if (op.kind === 'truncate') f.truncateSync(op.size);
}

/** Small seeded PRNG (mulberry32) returning [0,1). */
export const prng = seededRandom;
