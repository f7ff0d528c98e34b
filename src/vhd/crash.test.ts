// Crash safety: run a workload (allocating writes, in-place writes, trims, resize with a BAT
// move and a shrink, user metadata, compaction, merge) on a CrashFile, then for every write
// boundary and three crash variants (only flushed writes; all written but the last torn; a
// random subset with the last torn) rebuild the file, reopen read-write (log replay), run
// checkVhdx, and check every sector: it must hold the value of the last completed flush or
// of a write issued after it. VMHOST_LONG=1 runs more seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { CrashFile, prng, type CrashVariant } from '../blockio/crash-file.ts';
import { createVhdx, openVhdx, resizeVhdx, compactVhdx, checkVhdx, setUserMetadata, mergeVhdx } from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB, GiB } from './format.ts';
import type { VhdxDisk } from './disk.ts';

const LONG = process.env.VMHOST_LONG === '1';
const SIZE = 8 * MiB;
const SECTOR = 512;

interface Change { offset: number; data: Uint8Array }
interface Step { start: number; changes: Change[] }

/** What the workload did, in CrashFile op numbers. */
class Journal {
  steps: Step[] = [];
  /** [opCount after a completed flush, model snapshot] */
  flushes: Array<[number, Uint8Array]> = [];
  model = new Uint8Array(SIZE);
  constructor(private crash: CrashFile, initial?: Uint8Array) {
    if (initial) this.model.set(initial);
    this.flushes.push([0, this.model.slice()]);
  }
  begin(): Step {
    const s = { start: this.crash.opCount, changes: [] };
    this.steps.push(s);
    return s;
  }
  change(s: Step, offset: number, data: Uint8Array): void {
    const inside = Math.max(0, Math.min(data.length, SIZE - offset));
    if (inside <= 0) return;
    const d = data.subarray(0, inside);
    s.changes.push({ offset, data: d.slice() });
    this.model.set(d, offset);
  }
  flushed(): void {
    this.flushes.push([this.crash.opCount, this.model.slice()]);
  }
}

async function verify(j: Journal, d: VhdxDisk, cut: number, label: string): Promise<void> {
  let base = j.flushes[0]![1];
  let baseAt = 0;
  for (const [at, snap] of j.flushes) if (at <= cut) { base = snap; baseAt = at; }
  const later = j.steps.filter((s) => s.start < cut && s.start >= baseAt - 1);
  const n = Math.min(SIZE, d.virtualSize);
  const got = new Uint8Array(n);
  await d.read(got, 0);
  if (Buffer.from(got).equals(Buffer.from(base.subarray(0, n)))) return;
  const gb = Buffer.from(got.buffer, got.byteOffset, got.length);
  const bb = Buffer.from(base.buffer, base.byteOffset, base.length);
  for (let s = 0; s < n; s += SECTOR) {
    if (gb.compare(bb, s, s + SECTOR, s, s + SECTOR) === 0) continue;
    let ok = false;
    for (const st of later) {
      for (const c of st.changes) {
        if (s >= c.offset && s + SECTOR <= c.offset + c.data.length) {
          const cb = Buffer.from(c.data.buffer, c.data.byteOffset, c.data.length);
          if (gb.compare(cb, s - c.offset, s - c.offset + SECTOR, s, s + SECTOR) === 0) ok = true;
        }
      }
    }
    assert.ok(ok, `${label}: sector ${s / SECTOR} holds neither the flushed value nor a later write`);
  }
}

async function checkCuts(crash: CrashFile, j: Journal, name: string, open: (f: MemoryFile) => Promise<VhdxDisk>, seeds: number): Promise<number> {
  let checked = 0;
  const cuts = crash.writeBoundaries();
  cuts.unshift(0);
  for (const cut of cuts) {
    const variants: CrashVariant[] = [{ kind: 'flushed-only' }];
    if (seeds === 0) {
      // Default run: one unflushed-tail variant per cut, alternating torn-last / random-subset.
      variants.push(cut % 2 === 0 ? { kind: 'torn-last', seed: cut } : { kind: 'random-subset', seed: cut + 100 });
    }
    for (let s = 0; s < seeds; s++) variants.push({ kind: 'torn-last', seed: s + 1 }, { kind: 'random-subset', seed: s + 101 });
    for (const v of variants) {
      const f = crash.stateAt(cut, v);
      const label = `${name} cut ${cut}/${crash.opCount} ${v.kind}${'seed' in v ? v.seed : ''}`;
      let d: VhdxDisk;
      try {
        d = await open(f);
      } catch (e) {
        assert.fail(`${label}: reopen failed: ${(e as Error).message}`);
      }
      await verify(j, d, cut, label);
      await d.close();
      const problems = await checkVhdx(keepOpen(f));
      assert.deepEqual(problems, [], label);
      checked++;
    }
  }
  return checked;
}

test('crash at every write boundary of a dynamic-disk workload', async () => {
  const base = new MemoryFile('crash.vhdx');
  await createVhdx(keepOpen(base), { type: 'Dynamic', virtualSize: SIZE, blockSize: 1 * MiB });
  const crash = new CrashFile(base, 'crash.vhdx');
  const j = new Journal(crash);
  const d = await openVhdx(crash);
  const rnd = prng(42);
  const write = async (off: number, len: number, seed: number) => {
    const st = j.begin();
    const p = pattern(len, seed);
    j.change(st, off, p);
    await d.write(p, off);
  };
  const trim = async (off: number, len: number) => {
    const st = j.begin();
    j.change(st, off, new Uint8Array(len));
    await d.trim(off, len);
  };
  await write(0, 4096, 1);
  await write(MiB + 512, 2 * MiB, 2);
  await d.flush(); j.flushed();
  await write(512, 1024, 3); // in place
  await write(5 * MiB, 8192, 4);
  await trim(MiB, MiB); // whole block
  await d.flush(); j.flushed();
  await trim(5 * MiB, 1024); // partial
  const st = j.begin();
  await setUserMetadata(d, 'c0ffee00-1111-2222-3333-444455556666', new Uint8Array(100).fill(9));
  void st;
  await d.flush(); j.flushed();
  for (let i = 0; i < 6; i++) {
    const off = Math.floor(rnd() * (SIZE / SECTOR - 64)) * SECTOR;
    await write(off, SECTOR * (1 + Math.floor(rnd() * 63)), 10 + i);
    if (i % 2 === 1) { await d.flush(); j.flushed(); }
  }
  j.begin();
  await resizeVhdx(d, 128 * GiB + SIZE); // moves the BAT
  await write(3 * MiB, 4096, 30);
  await d.flush(); j.flushed();
  j.begin();
  await resizeVhdx(d, SIZE);
  await trim(6 * MiB, 2 * MiB);
  await d.flush(); j.flushed();
  j.begin();
  await compactVhdx(d);
  await write(7 * MiB, 4096, 31);
  await d.flush(); j.flushed();
  await d.close();
  const checked = await checkCuts(crash, j, 'dynamic', (f) => openVhdx(keepOpen(f)), LONG ? 4 : 0);
  console.log(`crash points checked (dynamic workload): ${checked} (${crash.writeBoundaries().length} write boundaries)`);
  assert.ok(checked > 90);
});

test('crash at every write boundary of a differencing write + merge', async () => {
  const parentBase = new MemoryFile('parent.vhdx');
  await createVhdx(keepOpen(parentBase), { type: 'Dynamic', virtualSize: SIZE, blockSize: 1 * MiB });
  const p = await openVhdx(keepOpen(parentBase));
  const initial = pattern(SIZE, 77);
  await p.write(initial.subarray(0, 3 * MiB), 0);
  initial.fill(0, 3 * MiB);
  const guid = p.dataWriteGuid;
  await p.close();
  const child = new MemoryFile('child.vhdx');
  await createVhdx(keepOpen(child), { type: 'Differencing', blockSize: 1 * MiB, parent: { dataWriteGuid: guid, virtualSize: SIZE, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: 'parent' } });
  // Child writes, then merge into a parent whose file is recorded.
  const crash = new CrashFile(parentBase, 'parent.vhdx');
  const j = new Journal(crash, initial);
  const c = await openVhdx(keepOpen(child), { openParent: async () => crash });
  const st = j.begin();
  for (const [off, len, seed] of [[512, 2048, 1], [2 * MiB - 512, 4096, 2], [6 * MiB, MiB, 3]] as const) {
    const data = pattern(len, seed);
    await c.write(data, off);
    j.change(st, off, data);
  }
  await c.trim(4 * MiB, MiB);
  j.change(st, 4 * MiB, new Uint8Array(MiB));
  // The parent file sees nothing until the merge: restart the step at the merge.
  st.start = crash.opCount;
  const target = await mergeVhdx(c, 1);
  j.flushed();
  await target.close();
  const checked = await checkCuts(crash, j, 'merge', (f) => openVhdx(keepOpen(f)), LONG ? 4 : 0);
  console.log(`crash points checked (merge into parent): ${checked} (${crash.writeBoundaries().length} write boundaries)`);
  assert.ok(checked > 20);
});

test('crash at every write boundary of writes to a differencing child', async () => {
  const parent = new MemoryFile('parent.vhdx');
  await createVhdx(keepOpen(parent), { type: 'Dynamic', virtualSize: SIZE, blockSize: 1 * MiB });
  const p = await openVhdx(keepOpen(parent));
  const initial = pattern(SIZE, 91);
  await p.write(initial, 0);
  const guid = p.dataWriteGuid;
  await p.close();
  const childBase = new MemoryFile('child.vhdx');
  await createVhdx(keepOpen(childBase), { type: 'Differencing', blockSize: 1 * MiB, parent: { dataWriteGuid: guid, virtualSize: SIZE, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: 'parent' } });
  const crash = new CrashFile(childBase, 'child.vhdx');
  const j = new Journal(crash, initial);
  const openParent = async () => keepOpen(parent.clone({ readOnly: true }));
  const c = await openVhdx(crash, { openParent });
  const rnd = prng(7);
  for (let i = 0; i < 10; i++) {
    const st = j.begin();
    const off = Math.floor(rnd() * (SIZE / SECTOR - 300)) * SECTOR;
    const len = SECTOR * (1 + Math.floor(rnd() * 255));
    if (i % 4 === 3) {
      j.change(st, off, new Uint8Array(len));
      await c.trim(off, len);
    } else {
      const data = pattern(len, 200 + i);
      j.change(st, off, data);
      await c.write(data, off);
    }
    if (i % 3 === 2) { await c.flush(); j.flushed(); }
  }
  const st = j.begin();
  j.change(st, 2 * MiB, new Uint8Array(MiB));
  await c.trim(2 * MiB, MiB);
  await c.flush(); j.flushed();
  await c.close();
  const checked = await checkCuts(crash, j, 'differencing', (f) => openVhdx(keepOpen(f), { openParent }), LONG ? 4 : 0);
  console.log(`crash points checked (differencing child): ${checked} (${crash.writeBoundaries().length} write boundaries)`);
  assert.ok(checked > 40);
});
