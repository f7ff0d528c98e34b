// Fuzzing the parsers: seeded mutations of headers (with and without a fixed-up checksum),
// region tables, metadata, BAT and log of valid files (clean, differencing, pending log).
// Opening, reading, writing and checking must either work or throw VmhostError — never
// another exception, a hang, or a huge allocation. VMHOST_LONG=1 runs many more cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { CrashFile, prng } from '../blockio/crash-file.ts';
import { createVhdx, openVhdx, checkVhdx, describeVhdx } from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB, checksum, put32, u32 } from './format.ts';
import { isVmhostError } from '../common/errors.ts';

const LONG = process.env.VMHOST_LONG === '1';

async function seeds(): Promise<Array<{ name: string; file: MemoryFile; parent?: MemoryFile }>> {
  const clean = new MemoryFile('clean');
  await createVhdx(keepOpen(clean), { type: 'Dynamic', virtualSize: 6 * MiB, blockSize: 1 * MiB });
  let d = await openVhdx(keepOpen(clean));
  await d.write(pattern(2 * MiB, 1), 512 * 1024);
  const guid = d.dataWriteGuid;
  await d.close();
  const diff = new MemoryFile('diff');
  await createVhdx(keepOpen(diff), { type: 'Differencing', blockSize: 1 * MiB, parent: { dataWriteGuid: guid, virtualSize: 6 * MiB, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: 'clean' } });
  d = await openVhdx(keepOpen(diff), { openParent: async () => keepOpen(clean.clone()) });
  await d.write(pattern(4096, 2), 3 * MiB + 512);
  await d.close();
  // A file with a log entry that still has to be replayed: cut just after the entry's flush.
  const base = new MemoryFile('dirty');
  await createVhdx(keepOpen(base), { type: 'Dynamic', virtualSize: 6 * MiB, blockSize: 1 * MiB });
  const crash = new CrashFile(base);
  d = await openVhdx(crash);
  await d.write(pattern(8192, 3), MiB);
  await d.close();
  // ops: ... entry write, flush, apply, flush — find the last write into the log area (1–2 MiB).
  let cut = 0;
  crash.ops.forEach((op, i) => {
    if (op.kind === 'write' && op.offset >= MiB && op.offset < 2 * MiB) cut = i + 2;
  });
  const dirty = crash.stateAt(cut);
  return [{ name: 'clean', file: clean }, { name: 'diff', file: diff, parent: clean }, { name: 'dirty', file: dirty }];
}

const AREAS: Array<{ name: string; start: number; len: number; crcAt?: number; crcLen?: number }> = [
  { name: 'file id', start: 0, len: 16 },
  { name: 'header1', start: 64 * 1024, len: 80, crcAt: 64 * 1024 + 4, crcLen: 4096 },
  { name: 'header2', start: 128 * 1024, len: 80, crcAt: 128 * 1024 + 4, crcLen: 4096 },
  { name: 'region1', start: 192 * 1024, len: 96, crcAt: 192 * 1024 + 4, crcLen: 65536 },
  { name: 'region2', start: 256 * 1024, len: 96, crcAt: 256 * 1024 + 4, crcLen: 65536 },
  { name: 'log', start: MiB, len: 8192 },
  { name: 'metadata table', start: 2 * MiB, len: 256 },
  { name: 'metadata items', start: 2 * MiB + 65536, len: 4096 * 6 },
  { name: 'bat', start: 3 * MiB, len: 64 },
  { name: 'bat page', start: 3 * MiB, len: 4096 },
  { name: 'log data', start: MiB + 4096, len: 8192 },
];

async function mutate(src: MemoryFile, rnd: () => number): Promise<{ f: MemoryFile; what: string }> {
  const f = src.clone();
  if (rnd() < 0.05) {
    const size = await f.size();
    const to = Math.floor(rnd() * size);
    await f.truncate(to);
    return { f, what: `truncated to ${to}` };
  }
  const area = AREAS[Math.floor(rnd() * AREAS.length)]!;
  const n = 1 + Math.floor(rnd() * 4);
  const what: string[] = [area.name];
  for (let i = 0; i < n; i++) {
    const off = area.start + Math.floor(rnd() * area.len);
    const b = new Uint8Array(1 + Math.floor(rnd() * 8));
    const mode = rnd();
    for (let k = 0; k < b.length; k++) b[k] = mode < 0.3 ? 0xff : mode < 0.5 ? 0 : Math.floor(rnd() * 256);
    await f.write(b, off);
    what.push(`@${off}+${b.length}`);
  }
  if (area.crcAt !== undefined && rnd() < 0.7) {
    // Fix the checksum so the semantic checks are reached.
    const s = new Uint8Array(area.crcLen!);
    await f.read(s, area.crcAt - 4);
    put32(s, 4, checksum(s, 4));
    await f.write(s, area.crcAt - 4);
    what.push('crc fixed');
  }
  if (area.name === 'log' && rnd() < 0.7) {
    const h = new Uint8Array(64);
    await f.read(h, MiB);
    const len = u32(h, 8);
    if (len > 0 && len <= MiB && len % 4096 === 0) {
      const e = new Uint8Array(len);
      await f.read(e, MiB);
      put32(e, 4, checksum(e, 4));
      await f.write(e, MiB);
      what.push('log crc fixed');
    }
  }
  return { f, what: what.join(' ') };
}

async function exercise(f: MemoryFile, parent: MemoryFile | undefined, readOnly: boolean): Promise<void> {
  const openParent = async () => keepOpen(parent ? parent.clone({ readOnly: true }) : new MemoryFile('none'));
  const d = await openVhdx(keepOpen(f), { readOnly, openParent });
  try {
    const ls = d.logicalSectorSize;
    const n = Math.min(d.virtualSize, 4 * MiB);
    await d.read(new Uint8Array(n - (n % ls)), 0);
    await d.read(new Uint8Array(ls), d.virtualSize - ls);
    await d.blockStatus(0, Math.min(d.virtualSize, 64 * MiB));
    await describeVhdx(d);
    if (!readOnly) {
      await d.write(new Uint8Array(ls * 3).fill(1), ls);
      await d.write(new Uint8Array(ls).fill(2), d.virtualSize - ls);
      await d.trim(0, Math.min(d.virtualSize - (d.virtualSize % ls), 2 * MiB));
    }
  } finally {
    await d.close();
  }
  await checkVhdx(keepOpen(f), { openParent });
}

test('fuzzed VHDX structures only ever fail with VmhostError', async () => {
  const bases = await seeds();
  const cases = LONG ? 6000 : 450;
  const rnd = prng(1234);
  const codes = new Map<string, number>();
  let opened = 0;
  for (let i = 0; i < cases; i++) {
    const base = bases[i % bases.length]!;
    const { f, what } = await mutate(base.file, rnd);
    for (const ro of [true, false]) {
      const g = ro ? f.clone() : f;
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('hang')), 10_000); });
      try {
        await Promise.race([exercise(g, base.parent, ro), hang]);
        opened++;
      } catch (e) {
        if (!isVmhostError(e)) assert.fail(`case ${i} (${base.name}: ${what}, ${ro ? 'ro' : 'rw'}): ${(e as Error).stack}`);
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      } finally {
        clearTimeout(timer);
      }
    }
  }
  console.log(`fuzz: ${cases} mutated files × ro/rw; ${opened} exercised fully; errors by code: ${JSON.stringify(Object.fromEntries(codes))}`);
});
