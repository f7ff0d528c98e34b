// Test-only helpers shared by the vhd1 *.test.ts files: an in-memory model of a disk,
// seeded random data, temp dirs, and running qemu-img. Not exported from index.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { prng } from '../../blockio/index.ts';
import type { VirtualDisk } from '../../blockio/index.ts';

export { prng };

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `vmhost-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasQemu(): boolean {
  try {
    qemuImg('--version');
    return true;
  } catch {
    return false;
  }
}

export function pattern(length: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const x = (r() * 2 ** 32) >>> 0;
    b[i] = x & 0xff; b[i + 1] = (x >> 8) & 0xff; b[i + 2] = (x >> 16) & 0xff; b[i + 3] = x >>> 24;
  }
  return b;
}

/** Sparse model of a disk's contents: sector number → 512 bytes (absent = zeros). */
export class DiskModel {
  readonly sectors = new Map<number, Uint8Array>();
  constructor(public size: number, private below?: DiskModel) {}
  write(buf: Uint8Array, offset: number): void {
    for (let i = 0; i < buf.length; i += 512) this.sectors.set((offset + i) / 512, buf.slice(i, i + 512));
  }
  zero(offset: number, length: number): void {
    for (let i = 0; i < length; i += 512) this.sectors.set((offset + i) / 512, new Uint8Array(512));
  }
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 512) {
      const s = (offset + i) / 512;
      const own = this.sectors.get(s);
      if (own) out.set(own, i);
      else if (this.below && offset + i < this.below.size) out.set(this.below.read(offset + i, 512), i);
    }
    return out;
  }
}

/** Reads the whole disk in 1 MiB pieces and compares with `expect(offset, length)`; returns first mismatch offset or -1. */
export async function firstMismatch(disk: VirtualDisk, expect: (offset: number, length: number) => Uint8Array, chunk = 1024 * 1024): Promise<number> {
  for (let p = 0; p < disk.virtualSize; p += chunk) {
    const n = Math.min(chunk, disk.virtualSize - p);
    const got = new Uint8Array(n);
    await disk.read(got, p);
    const want = expect(p, n);
    if (sameBytes(got, want)) continue;
    for (let i = 0; i < n; i++) if (got[i] !== want[i]) return p + i;
  }
  return -1;
}

export function allBytes(buf: Uint8Array, value: number): boolean {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.length).equals(Buffer.alloc(buf.length, value));
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
