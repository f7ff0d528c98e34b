// The block server's small writes, served from a child process (test-serve.ts) to the repo's
// NBD client:
// - waves of 64 pipelined writes of 4–256 KiB, each overlapping others of its wave,
//   into a raw file and into a fully allocated dynamic VHDX (the overwrite path that runs
//   under the shared lock; one wave crosses a 1 MiB block boundary, where an overwrite spanning
//   two blocks once awaited its BAT lookups and was overtaken by a one-block write sent behind
//   it): afterwards the disk holds exactly what applying the writes in the order they were sent
//   gives, byte for byte — overlapping writes are never reordered;
// - a FLUSH sent right behind a burst of writes: every write acknowledged before the FLUSH's
//   reply is in the file after the server is SIGKILLed at that reply.
// (Writer threads for these writes were built and measured on a quiet machine: no gain over the
// event loop at 37 % more CPU per write, so they were taken out; see BENCHMARKS.md.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NbdTestClient } from './nbd/test-client.ts';
import { killChild, makeVhdx, pattern, prng, readAll, same, startChildServer, tempDir } from './test-support.ts';

const KiB = 1024;
const MiB = 1 << 20;
const SIZE = 8 * MiB;
/** The writes of a wave land in this much of the disk, so most of them overlap. */
const HOT = 256 * KiB;
const WAVES = 12;
const PER_WAVE = 64;
const tmp = tempDir('write-order-');
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

for (const format of ['raw', 'vhdx'] as const) {
  test(`${format}: overlapping pipelined writes land in the order they were sent`, async () => {
    const disk = join(tmp.dir, `order-${format}.${format === 'raw' ? 'img' : 'vhdx'}`);
    const start = pattern(SIZE, 99);
    if (format === 'raw') writeFileSync(disk, start);
    else await makeVhdx(disk, { size: SIZE }, [[0, start]]);
    const s = await startChildServer(disk, tmp.dir, `w${format}`, children);
    const expect = Buffer.from(start);
    const client = await NbdTestClient.connect(s.socketPath, `w${format}`);
    const rnd = prng(format === 'raw' ? 1 : 2);
    for (let w = 0; w < WAVES; w++) {
      // Each wave somewhere else, one of them across a 1 MiB VHDX block boundary.
      const base = w === 3 ? MiB - HOT / 2 : rnd(SIZE / HOT) * HOT;
      const sent: Promise<void>[] = [];
      for (let i = 0; i < PER_WAVE; i++) {
        // Every fourth covers the whole region (256 KiB, the largest synchronous write).
        const len = i % 4 === 0 ? HOT : (1 + rnd(16)) * 4 * KiB;
        const off = base + rnd((HOT - len) / (4 * KiB) + 1) * 4 * KiB;
        const data = pattern(len, w * PER_WAVE + i + 1);
        expect.set(data, off);
        sent.push(client.write(off, data));
      }
      await Promise.all(sent);
    }
    await client.flush();
    same(Buffer.from(await client.read(0, SIZE)), expect, 'read back over NBD');
    await client.disconnect();
    await killChild(s.child, 'SIGTERM');
    same(format === 'raw' ? readFileSync(disk) : await readAll(disk, SIZE), expect, 'the file');
  });
}

test("writes acknowledged before a FLUSH's reply are in the file when the server is killed at that reply", async () => {
  const disk = join(tmp.dir, 'flush.img');
  writeFileSync(disk, Buffer.alloc(SIZE));
  const s = await startChildServer(disk, tmp.dir, 'f', children);
  const client = await NbdTestClient.connect(s.socketPath, 'f');
  const acked: number[] = [];
  const slot = 16 * KiB;
  const writes = Array.from({ length: 128 }, (_, i) => client.write(i * slot, pattern(slot, 500 + i)).then(() => { acked.push(i); }));
  // Sent right behind the writes, before any of their replies.
  await client.flush();
  const seen = [...acked];
  await killChild(s.child);
  client.destroy();
  await Promise.allSettled(writes);
  assert.ok(seen.length > 0, 'some writes were acknowledged before the flush');
  const file = readFileSync(disk);
  for (const i of seen) same(file.subarray(i * slot, (i + 1) * slot), pattern(slot, 500 + i), `write ${i}, acknowledged before the flush`);
});
