// The disk lock: reads and overwrites of fully present blocks run side by side; allocating
// writes, trims and flushes run alone, in arrival order, after everything queued before them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import type { BlockFile } from '../blockio/block-file.ts';
import { createVhdx, openVhdx } from './index.ts';
import { pattern } from './testing.ts';
import { MiB } from './format.ts';

/** A slow BlockFile over `m` that logs every operation and tracks how many reads/writes overlap. */
function slowFile(m: MemoryFile) {
  const s = { log: [] as string[], inflight: 0, maxReads: 0, maxWrites: 0 };
  const slow = () => new Promise((r) => setTimeout(r, 2));
  const f: BlockFile = {
    name: 'slow', readOnly: false,
    read: async (b, o) => { s.inflight++; s.maxReads = Math.max(s.maxReads, s.inflight); await slow(); await m.read(b, o); s.inflight--; },
    write: async (b, o) => { s.inflight++; s.maxWrites = Math.max(s.maxWrites, s.inflight); await slow(); await m.write(b, o); s.inflight--; s.log.push(`w${o}`); },
    flush: async () => { s.log.push(`flush@${s.inflight}`); },
    size: () => m.size(), truncate: (n) => m.truncate(n), close: async () => {},
  };
  return { f, s };
}

test('reads and overwrites of present blocks overlap; allocations keep their order; flush waits for earlier writes', async () => {
  const m = new MemoryFile('d.vhdx');
  await createVhdx(m, { type: 'Dynamic', virtualSize: 16 * MiB, blockSize: 1 * MiB });
  const { f, s } = slowFile(m);
  const d = await openVhdx(f);
  const model = new Uint8Array(16 * MiB);
  // Three writes into unallocated blocks 0..2, queued at once: exclusive, so blocks are allocated in order.
  const first = [0, 1, 2].map((b) => pattern(64 * 1024, b + 1));
  await Promise.all(first.map((p, b) => { model.set(p, b * MiB); return d.write(p, b * MiB); }));
  const offsets = await Promise.all([0, 1, 2].map(async (b) => (await d.bat.payload(b)).offset));
  assert.ok(offsets[0]! < offsets[1]! && offsets[1]! < offsets[2]!, `allocated in order: ${offsets}`);
  // Overwrites of present blocks and reads run side by side.
  s.maxWrites = 0;
  const writes = Array.from({ length: 8 }, (_, i) => {
    const p = pattern(4096, 100 + i);
    const off = (i % 3) * MiB + 8192 * (i + 1);
    model.set(p, off);
    return d.write(p, off);
  });
  const flushed = d.flush();
  await Promise.all([...writes, flushed]);
  assert.ok(s.maxWrites > 1, `overwrites overlapped (max ${s.maxWrites})`);
  assert.equal(s.log[s.log.length - 1], 'flush@0', 'the flush ran after the writes queued before it');
  s.maxReads = 0;
  const bufs = [0, 1, 2].map(() => new Uint8Array(MiB));
  await Promise.all(bufs.map((b, i) => d.read(b, i * MiB)));
  assert.ok(s.maxReads > 1, `reads overlapped (max ${s.maxReads})`);
  bufs.forEach((b, i) => assert.ok(Buffer.from(b).equals(Buffer.from(model.subarray(i * MiB, (i + 1) * MiB))), `block ${i}`));
  // A trim queued between overwrites: the overwrite queued after it waits and allocates anew.
  const p2 = pattern(4096, 999);
  await Promise.all([d.trim(0, MiB), d.write(p2, 4096)]);
  model.fill(0, 0, MiB);
  model.set(p2, 4096);
  const all = new Uint8Array(16 * MiB);
  await d.read(all, 0);
  assert.ok(Buffer.from(all).equals(Buffer.from(model)), 'contents match the model');
  await d.close();
});
