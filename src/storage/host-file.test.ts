// HostFile's write paths: small writes (synchronous, also when many are started at once) and
// large ones (the thread pool) must all land, and a resolved write is visible to the next read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { HostFile } from './host-file.ts';
import { tempDir } from './test-support.ts';

const KiB = 1024;

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
