// The block server's small writes on the writer threads (write-pool.ts, native/vmhost-pwrite.c)
// and on the event loop (VMHOST_WRITE_THREADS=0, the fallback), each served from a child
// process (test-serve.ts) to the repo's NBD client:
// - waves of 64 pipelined writes of 4–256 KiB, each overlapping others of its wave,
//   into a raw file and into a fully allocated dynamic VHDX (the overwrite path that runs
//   under the shared lock): afterwards the disk holds exactly what applying the writes in the
//   order they were sent gives, byte for byte — overlapping writes are never reordered;
// - a FLUSH sent right behind a burst of writes: every write acknowledged before the FLUSH's
//   reply is in the file after the server is SIGKILLed at that reply.
// Under CI=true the addon must be built (scripts/build-pwrite.sh): a missing one fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NbdTestClient } from './nbd/test-client.ts';
import { writePoolStatus } from './write-pool.ts';
import { killChild, makeVhdx, pattern, prng, readAll, same, startChildServer, tempDir } from './test-support.ts';

const KiB = 1024;
const MiB = 1 << 20;
const SIZE = 8 * MiB;
/** The writes of a wave land in this much of the disk, so most of them overlap. */
const HOT = 256 * KiB;
const WAVES = 12;
const PER_WAVE = 64;
const tmp = tempDir('write-threads-');
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const threaded = writePoolStatus();
if (process.env.CI === 'true') assert.ok(threaded.threads > 0, `the writer-thread addon is needed under CI: ${threaded.reason}`);

/** A server for `disk` in a child whose environment has `env`; it prints how many writer threads it runs. */
async function serveWith(disk: string, name: string, env: Record<string, string | undefined>): Promise<{ child: ChildProcess; socketPath: string; threads: number }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  let threads = -1;
  try {
    const s = await startChildServer(disk, tmp.dir, name, children, { onLine: (l) => { const m = /^write threads (\d+)/.exec(l); if (m) threads = Number(m[1]); } });
    return { ...s, threads };
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

/** `skip`: the addon is not built here (a failure under CI, above). */
const MODES = [
  { label: 'writer threads', env: { VMHOST_WRITE_THREADS: undefined, VMHOST_NO_PWRITE_ADDON: undefined }, threads: threaded.threads, skip: threaded.threads > 0 ? false : threaded.reason ?? true },
  { label: 'event loop (VMHOST_WRITE_THREADS=0)', env: { VMHOST_WRITE_THREADS: '0' }, threads: 0, skip: false },
];

for (const mode of MODES) {
  for (const format of ['raw', 'vhdx'] as const) {
    test(`${mode.label}, ${format}: overlapping pipelined writes land in the order they were sent`, { skip: mode.skip }, async () => {
      const disk = join(tmp.dir, `order-${mode.threads}-${format}.${format === 'raw' ? 'img' : 'vhdx'}`);
      const start = pattern(SIZE, 99);
      if (format === 'raw') writeFileSync(disk, start);
      else await makeVhdx(disk, { size: SIZE }, [[0, start]]);
      const s = await serveWith(disk, `w${mode.threads}${format}`, mode.env);
      assert.equal(s.threads, mode.threads, 'the server runs the mode under test');
      const expect = Buffer.from(start);
      const client = await NbdTestClient.connect(s.socketPath, `w${mode.threads}${format}`);
      const rnd = prng(mode.threads * 10 + (format === 'raw' ? 1 : 2));
      for (let w = 0; w < WAVES; w++) {
        // Each wave somewhere else, one of them across a 1 MiB VHDX block boundary.
        const base = w === 3 ? MiB - HOT / 2 : rnd(SIZE / HOT) * HOT;
        const sent: Promise<void>[] = [];
        for (let i = 0; i < PER_WAVE; i++) {
          // Every fourth covers the whole region (256 KiB, the largest threaded write): a thread
          // busy with it would finish after another thread's small write sent behind it.
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

  test(`${mode.label}: writes acknowledged before a FLUSH's reply are in the file when the server is killed at that reply`, { skip: mode.skip }, async () => {
    const disk = join(tmp.dir, `flush-${mode.threads}.img`);
    writeFileSync(disk, Buffer.alloc(SIZE));
    const s = await serveWith(disk, `f${mode.threads}`, mode.env);
    assert.equal(s.threads, mode.threads, 'the server runs the mode under test');
    const client = await NbdTestClient.connect(s.socketPath, `f${mode.threads}`);
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
}
