// "A daemon crash is not a power loss": a child process serves a dynamic VHDX (and a VHD) while our
// client writes (queue depth 4, fresh blocks and rewrites, flushes and FUA now and then);
// the child is SIGKILLed at a random moment. Then the file is reopened (log replay), must
// pass checkVhdx, and must hold every write the server acknowledged. Several rounds on the
// same file; VMHOST_LONG=1 runs 20.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { NodeFile, prng } from '../blockio/index.ts';
import { checkVhdx } from '../vhd/index.ts';
import { checkVhd, createVhd } from '../vhd/vhd1/index.ts';
import { openDiskFile } from './index.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { tempDir, makeVhdx, pattern, startChildServer, killChild } from './test-support.ts';

const MiB = 1 << 20;
const SLOT = 64 * 1024;
const SIZE = 64 * MiB;
const ROUNDS = process.env.VMHOST_LONG ? 20 : 4;
const tmp = tempDir('nbd-crash-');
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

async function check(path: string): Promise<string[]> {
  const f = await NodeFile.open(path, { readOnly: true });
  try {
    return await checkVhdx(f);
  } finally {
    await f.close().catch(() => undefined);
  }
}

async function checkVhdFile(path: string): Promise<string[]> {
  const f = await NodeFile.open(path, { readOnly: true });
  try {
    return (await checkVhd(f)).filter((p) => p.severity === 'error').map((p) => `${p.code}: ${p.message}`);
  } finally {
    await f.close().catch(() => undefined);
  }
}

test(`VHDX: SIGKILL of the serving process loses no acknowledged write (${ROUNDS} rounds)`, async () => {
  const disk = join(tmp.dir, 'c.vhdx');
  await makeVhdx(disk, { size: SIZE, blockSize: MiB });
  await crashRounds(disk, ROUNDS, check);
});

test('VHD (dynamic): SIGKILL of the serving process loses no acknowledged write (2 rounds)', async () => {
  const disk = join(tmp.dir, 'c.vhd');
  const f = await NodeFile.open(disk, { create: true, overwrite: true });
  await createVhd(f, { type: 'Dynamic', size: SIZE, blockSize: 512 * 1024 });
  await f.close();
  await crashRounds(disk, 2, checkVhdFile);
});

async function crashRounds(disk: string, rounds: number, check: (path: string) => Promise<string[]>): Promise<void> {
  /** slot → seed of the last acknowledged write there (0: never). */
  const acked = new Map<number, number>();
  /** slot → every write issued there: [seed, round, acknowledged]. */
  const history = new Map<number, Array<[number, number, boolean]>>();
  const rnd = prng(4242);
  let replays = 0;
  let seed = 1;
  for (let round = 0; round < rounds; round++) {
    const { child, socketPath } = await startChildServer(disk, join(tmp.dir, 'sock'), 'crash', children);
    const c = await NbdTestClient.connect(socketPath, 'crash');
    const busy = new Set<number>();
    let roundAcks = 0;
    let stop = false;
    const writer = async () => {
      while (!stop) {
        const slot = Math.floor(rnd() * (SIZE / SLOT));
        if (busy.has(slot)) continue;
        busy.add(slot);
        const s = seed++;
        const r = rnd();
        const h: [number, number, boolean] = [s, round, false];
        history.set(slot, [...(history.get(slot) ?? []), h]);
        try {
          await c.write(slot * SLOT, pattern(SLOT, s), { fua: r < 0.05 });
          if (!stop) {
            roundAcks++;
            acked.set(slot, s);
            h[2] = true;
          }
          if (r > 0.9) await c.flush();
        } catch {
          return;
        } finally {
          busy.delete(slot);
        }
      }
    };
    const writers = [writer(), writer(), writer(), writer()];
    // Kill at a random moment once the round is under way (a loaded machine starts slowly).
    for (let i = 0; i < 400 && roundAcks < 8; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, rnd() * 500));
    // Replies that arrive after this point are not counted as acknowledged.
    const killed = killChild(child);
    stop = true;
    await killed;
    c.destroy();
    await Promise.all(writers);

    const before = await check(disk);
    assert.ok(before.length === 0 || before.every((p) => p.startsWith('VHDX_LOG_REPLAY_NEEDED')), before.join('; '));
    // A read-only open never writes the file: a pending log is replayed by a read-write open.
    if (before.length) replays++;
    const d = await openDiskFile(disk, { readOnly: before.length === 0 });
    try {
      const buf = new Uint8Array(SLOT);
      for (const [slot, s] of acked) {
        await d.read(buf, slot * SLOT);
        // The last acknowledged write, or a later one whose reply never came (it may have
        // landed, sector by sector), is there.
        const later = (history.get(slot) ?? []).filter(([x, , ok]) => x > s && !ok).map(([x]) => pattern(SLOT, x));
        const ok = [pattern(SLOT, s), ...later];
        for (let o = 0; o < SLOT; o += 512) {
          const sector = Buffer.from(buf.subarray(o, o + 512));
          if (!ok.some((p) => sector.equals(Buffer.from(p.subarray(o, o + 512))))) {
            assert.fail(`round ${round}: acknowledged write ${s} at slot ${slot}+${o} is missing; history ${JSON.stringify(history.get(slot))}`);
          }
        }
      }
    } finally {
      await d.close();
    }
    const problems = await check(disk);
    assert.deepEqual(problems, [], `round ${round}`);
  }
  assert.ok(acked.size >= rounds * 8, `only ${acked.size} writes were acknowledged`);
  console.log(`crash: ${disk.split('.').pop()}: ${rounds} kills, ${acked.size} slots acknowledged, ${replays} reopenings replayed a log`);
}
