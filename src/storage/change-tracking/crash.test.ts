// Change tracking survives a SIGKILL of the serving process: a child serves a dynamic VHDX with
// tracking while our client writes at queue depth 32 (fresh blocks and rewrites, trims now and
// then); the child is killed once a planned number of writes has been acknowledged (counted,
// never timed). Reopened, the tracker knows the disk (no full copy) and its consumer's take
// holds the block of every acknowledged write and trim. Several rounds on the same files, each
// round's take committed; VMHOST_LONG=1 runs 12. Writes the journal made durable but whose
// reply never came may add blocks: that is the safe side.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { prng } from '../../blockio/index.ts';
import { BlockServer } from '../block-server.ts';
import { NbdTestClient } from '../nbd/test-client.ts';
import { tempDir, makeVhdx, pattern, startChildServer, killChild } from '../test-support.ts';
import { TRACKING_BLOCK } from './index.ts';

const MiB = 1 << 20;
const SIZE = 64 * MiB;
const B = TRACKING_BLOCK;
const ROUNDS = process.env.VMHOST_LONG ? 12 : 3;
const tmp = tempDir('cbt-crash-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

test(`change tracking: SIGKILL of the serving process loses no acknowledged write's block (${ROUNDS} rounds)`, async () => {
  const disk = join(tmp.dir, 'c.vhdx');
  const cbt = join(tmp.dir, 'c.cbt');
  await makeVhdx(disk, { size: SIZE, blockSize: MiB });
  const rnd = prng(1313);
  let totalAcks = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { child, socketPath } = await startChildServer(disk, join(tmp.dir, 'sock'), 'crash', children, { args: ['--track', cbt] });
    const c = await NbdTestClient.connect(socketPath, 'crash');
    /** Blocks of acknowledged writes and trims this round. */
    const acked = new Set<number>();
    // Kill after a planned count of acknowledgements: somewhere in the first 200–600.
    const killAt = 200 + Math.floor(rnd() * 400);
    let acks = 0;
    let stop = false;
    let killed: Promise<void> | undefined;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        // Half the writes go to 64 hot blocks (rewrites: no sync), half anywhere (new blocks: a sync each batch).
        const block = rnd() < 0.5 ? Math.floor(rnd() * 64) : Math.floor(rnd() * (SIZE / B));
        const offset = block * B + Math.floor(rnd() * (B / 4096)) * 4096;
        try {
          if (rnd() < 0.05) await c.trim(offset, 4096);
          else await c.write(offset, pattern(4096, w * 100_000 + i));
        } catch {
          return;
        }
        if (stop) return;
        acked.add(block);
        if (++acks === killAt) {
          // Replies after this point are not counted as acknowledged.
          stop = true;
          killed = killChild(child);
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, (_, w) => writer(w)));
    await killed;
    c.destroy();
    assert.equal(acks, killAt);

    const server = new BlockServer({ socketDir: join(tmp.dir, 'check') });
    try {
      await server.serve(disk, { exportName: 'check' });
      const t = await server.trackChanges('check', cbt);
      assert.equal(t.invalidation, undefined, `round ${round}: the tracker no longer knows the disk after the kill`);
      const taken = await t.take('crash');
      assert.equal(taken.full, false);
      const dirty = new Set(taken.extents.flatMap((e) => Array.from({ length: e.length / B }, (_, k) => e.offset / B + k)));
      const missing = [...acked].filter((b) => !dirty.has(b));
      assert.deepEqual(missing, [], `round ${round}: acknowledged blocks missing from the take`);
      console.log(`cbt crash round ${round}: killed after ${killAt} acknowledgements; ${acked.size} blocks acknowledged, ${dirty.size} in the take`);
      await t.commit('crash');
      totalAcks += acks;
    } finally {
      await server.close();
    }
  }
  assert.ok(totalAcks >= ROUNDS * 200);
});
