// HostFile's write paths: small writes (on the writer threads when the addon is built, else
// synchronous, also when many are started at once) and large ones (libuv's pool) must all
// land, a resolved write is visible to the next read, and overlapping writes, reads behind
// them and close keep call order whichever path each took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { HostFile } from './host-file.ts';
import { writePoolStatus } from './write-pool.ts';
import { tempDir } from './test-support.ts';

const KiB = 1024;
// Two writer threads whatever the default, so the threaded path is the one under test when built.
process.env.VMHOST_WRITE_THREADS = '2';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

test('bursts of small writes, single awaited writes and large writes all land where they were sent', async () => {
  const { dir, cleanup } = tempDir('host-file-');
  try {
    const path = join(dir, 'f.img');
    const size = 4 * 1024 * KiB;
    writeFileSync(path, Buffer.alloc(size));
    const f = HostFile.open(path);
    const expect = Buffer.alloc(size);
    // A burst: 64 writes of 4 KiB started in one turn of the loop, scattered over the file.
    const burst = Array.from({ length: 64 }, (_, i) => {
      const off = ((i * 37) % 1000) * 4 * KiB;
      const b = pattern(4 * KiB, i);
      b.copy(expect, off);
      return f.write(b, off);
    });
    await Promise.all(burst);
    // Lone writes, each awaited: the next read sees it.
    for (let i = 0; i < 8; i++) {
      const off = (1000 + i) * 4 * KiB;
      const b = pattern(4 * KiB, 100 + i);
      await f.write(b, off);
      b.copy(expect, off);
      const back = Buffer.alloc(4 * KiB);
      await f.read(back, off);
      assert.deepEqual(back, b);
    }
    // Large writes (beyond the synchronous limit) next to small ones in one turn.
    const big = pattern(512 * KiB, 200);
    const small = pattern(4 * KiB, 201);
    big.copy(expect, 3 * 1024 * KiB);
    small.copy(expect, 2 * 1024 * KiB);
    await Promise.all([f.write(big, 3 * 1024 * KiB), f.write(small, 2 * 1024 * KiB)]);
    await f.flush();
    await f.close();
    assert.ok(readFileSync(path).equals(expect));
  } finally {
    cleanup();
  }
});

test('a read-only file refuses writes with STORAGE_READ_ONLY; a writable one takes a burst', async () => {
  const { dir, cleanup } = tempDir('host-file-');
  try {
    const path = join(dir, 'ro.img');
    writeFileSync(path, Buffer.alloc(64 * KiB));
    const ro = HostFile.open(path, { readOnly: true });
    await assert.rejects(ro.write(Buffer.alloc(4 * KiB), 0), { code: 'STORAGE_READ_ONLY' });
    await ro.close();
    const f = HostFile.open(path);
    await Promise.all([0, 1, 2, 3].map((i) => f.write(pattern(4 * KiB, i), i * 4 * KiB)));
    await f.close();
    assert.ok(readFileSync(path).subarray(12 * KiB, 16 * KiB).equals(pattern(4 * KiB, 3)));
  } finally {
    cleanup();
  }
});

test('overlapping writes started in one turn land in call order; a read behind them sees the last; close waits for them', async () => {
  const { dir, cleanup } = tempDir('host-file-');
  try {
    const path = join(dir, 'order.img');
    writeFileSync(path, Buffer.alloc(1024 * KiB));
    const f = HostFile.open(path);
    const expect = Buffer.alloc(1024 * KiB);
    const started: Promise<void>[] = [];
    // Each round: a 256 KiB write (a thread busy with it would finish last), then small writes
    // into it (another thread's, or the loop's share), then a 1 MiB one over everything (libuv's
    // pool), then small ones again; one read behind each round.
    const reads: Promise<void>[] = [];
    for (let round = 0; round < 8; round++) {
      const seq: [number, Buffer][] = [[0, pattern(256 * KiB, round * 10)]];
      for (let i = 1; i < 6; i++) seq.push([i * 8 * KiB, pattern(4 * KiB, round * 10 + i)]);
      if (round % 2 === 1) seq.push([0, pattern(1024 * KiB, round * 10 + 7)], [12 * KiB, pattern(8 * KiB, round * 10 + 8)]);
      for (const [off, b] of seq) {
        b.copy(expect, off);
        started.push(f.write(b, off));
      }
      const back = Buffer.alloc(256 * KiB);
      const want = Buffer.from(expect.subarray(0, 256 * KiB));
      reads.push(f.read(back, 0).then(() => assert.ok(back.equals(want), `round ${round}: the read sees every write started before it`)));
    }
    await Promise.all(reads);
    // Not awaited: close itself must wait for every write started.
    void Promise.all(started);
    await f.close();
    assert.ok(readFileSync(path).equals(expect));
    if (process.env.CI === 'true') assert.ok(writePoolStatus().threads > 0, `writer threads under CI: ${writePoolStatus().reason}`);
  } finally {
    cleanup();
  }
});
