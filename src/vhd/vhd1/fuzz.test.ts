// A small seeded fuzzer: mutate the footer, footer copy, dynamic header, BAT and parent
// locator data of valid images (and truncate/extend them), then open, read, write, trim,
// block-status and check. Anything thrown must be a VmhostError; no single file read may
// ask for more than 16 MiB (no allocation driven by a hostile size field); each case must
// finish quickly. 400 cases by default; VMHOST_LONG=1 runs 20000.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../../blockio/index.ts';
import type { BlockFile } from '../../blockio/index.ts';
import { isVmhostError } from '../../common/errors.ts';
import { createVhd, openVhd, checkVhd } from './index.ts';
import { pattern, prng } from './test-support.ts';

const MiB = 1024 * 1024;
const CASES = process.env.VMHOST_LONG === '1' ? 20000 : 400;
const MAX_READ = 16 * MiB;

/** Passes I/O through and fails the test on any oversized read. */
class GuardFile implements BlockFile {
  readonly name: string;
  readonly readOnly = false;
  biggest = 0;
  constructor(private f: MemoryFile) { this.name = f.name; }
  async read(buf: Uint8Array, offset: number) { this.biggest = Math.max(this.biggest, buf.length); return this.f.read(buf, offset); }
  write(buf: Uint8Array, offset: number) { return this.f.write(buf, offset); }
  flush() { return this.f.flush(); }
  size() { return this.f.size(); }
  truncate(n: number) { return this.f.truncate(n); }
  close() { return this.f.close(); }
}

async function seeds(): Promise<{ name: string; file: MemoryFile; parent?: MemoryFile }[]> {
  const dyn = new MemoryFile('/f/dyn.vhd');
  await createVhd(dyn, { type: 'Dynamic', size: 6 * MiB, blockSize: 512 * 1024 });
  const d = await openVhd(dyn);
  for (const o of [0, 1, 3, 7, 11]) await d.write(pattern(8192, o), o * 512 * 1024 + 4096);
  const fixed = new MemoryFile('/f/fixed.vhd');
  await createVhd(fixed, { type: 'Fixed', size: 1 * MiB });
  const child = new MemoryFile('/f/child.vhd');
  await createVhd(child, { type: 'Differencing', parent: { disk: await openVhd(dyn.clone()), path: dyn.name }, blockSize: 1 * MiB });
  const c = await openVhd(child, { openParent: async () => dyn.clone({ readOnly: true }) });
  await c.write(pattern(4096, 9), 2 * MiB);
  return [{ name: 'dynamic', file: dyn }, { name: 'fixed', file: fixed }, { name: 'differencing', file: child, parent: dyn }];
}

const INTERESTING = [0, 1, 0x1ff, 0x200, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 0x200000, 0x600, 0x2000];

async function mutate(src: MemoryFile, r: () => number): Promise<MemoryFile> {
  const f = src.clone({ readOnly: false });
  const size = await f.size();
  const regions = [[0, 512], [512, 1536], [1536, 4096], [size - 512, size], [0, size]] as const;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const [a, b] = regions[Math.floor(r() * regions.length)]!;
    const at = a + Math.floor(r() * (b - a));
    const k = r();
    if (k < 0.45) f.writeSync(new Uint8Array([Math.floor(r() * 256)]), at);
    else if (k < 0.85) {
      const v = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
      f.writeSync(new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]), at & ~3);
    } else if (k < 0.93) f.truncateSync(Math.floor(r() * size));
    else f.writeSync(new Uint8Array(512).fill(0xff), Math.floor(r() * size / 512) * 512);
  }
  // Often fix up checksums so that the mutation reaches past the checksum test.
  if (r() < 0.6) await fixChecksums(f);
  return f;
}

async function fixChecksums(f: MemoryFile): Promise<void> {
  const { vhdChecksum } = await import('./checksum.ts');
  const size = await f.size();
  for (const [off, len, ck] of [[0, 512, 64], [Math.max(0, size - 512), 512, 64], [512, 1024, 36]] as const) {
    const b = new Uint8Array(len);
    f.readSync(b, off);
    new DataView(b.buffer).setUint32(ck, vhdChecksum(b, ck));
    f.writeSync(b, off);
  }
}

test(`fuzzed images: open/read/write/check throw only VmhostError (${CASES} cases)`, async () => {
  const bases = await seeds();
  const r = prng(20261127);
  let opened = 0;
  const codes = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const base = bases[i % bases.length]!;
    const mutated = await mutate(base.file, r);
    const guard = new GuardFile(mutated);
    const started = Date.now();
    try {
      await checkVhd(guard);
      const disk = await openVhd(guard, { openParent: async () => base.parent!.clone({ readOnly: true }) });
      opened++;
      const vs = disk.virtualSize;
      const buf = new Uint8Array(64 * 1024);
      for (let k = 0; k < 4; k++) {
        const off = Math.floor((r() * Math.max(0, vs - buf.length)) / 512) * 512;
        await disk.read(buf.subarray(0, Math.min(buf.length, vs - off)), off);
      }
      await disk.blockStatus(0, Math.min(vs, 64 * MiB));
      const w = Math.floor((r() * Math.max(0, vs - 4096)) / 512) * 512;
      await disk.write(pattern(Math.min(4096, vs - w), i), w);
      await disk.trim(0, Math.min(vs, 1024 * 1024));
      await disk.flush();
    } catch (e) {
      if (!isVmhostError(e)) assert.fail(`case ${i} (${base.name}): non-VmhostError ${String((e as Error)?.stack ?? e)}`);
      codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    }
    assert.ok(guard.biggest <= MAX_READ, `case ${i}: read of ${guard.biggest} bytes`);
    assert.ok(Date.now() - started < 5000, `case ${i} took ${Date.now() - started} ms`);
  }
  assert.ok(opened > CASES / 10, `only ${opened} mutated images opened: the fuzzer is not reaching the data path`);
  assert.ok((codes.get('VHD_CORRUPT') ?? 0) > 0);
});
