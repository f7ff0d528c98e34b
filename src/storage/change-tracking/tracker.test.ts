// Change tracking on a served disk: every written, trimmed or zeroed block is in the next take
// of each consumer and nothing else is; a take that fails is restored; the dirty set survives a
// clean reopen, a checkpoint's swap and a live merge (the virtual disk's, not the file's); QD32
// writes into the same blocks cost one journal sync per batch of new blocks; a disk written
// outside the block server (its DataWriteGuid unknown to the file) makes every consumer full.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NodeFile } from '../../blockio/index.ts';
import { openVhdx } from '../../vhd/index.ts';
import { BlockServer } from '../block-server.ts';
import { NbdTestClient } from '../nbd/test-client.ts';
import { tempDir, makeVhdx, pattern } from '../test-support.ts';
import { TRACKING_BLOCK, type TakenChanges } from './index.ts';
import { Journal, newConsumer } from './journal.ts';

const MiB = 1 << 20;
const SIZE = 32 * MiB;
const B = TRACKING_BLOCK;
const tmp = tempDir('cbt-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

const blocksOf = (t: TakenChanges): number[] => t.extents.flatMap((e) => Array.from({ length: Math.ceil(e.length / B) }, (_, i) => e.offset / B + i));

async function serveTracked(name: string, disk: string): Promise<{ c: NbdTestClient; cbt: string }> {
  const served = await server.serve(disk, { exportName: name });
  const cbt = join(tmp.dir, `${name}.cbt`);
  await server.trackChanges(name, cbt);
  return { c: await NbdTestClient.connect(served.socketPath, name), cbt };
}

test('writes, trims and write-zeroes are taken per consumer; restore gives a failed take back; the set survives a reopen', async () => {
  const disk = join(tmp.dir, 'a.vhdx');
  await makeVhdx(disk, { size: SIZE });
  const { c, cbt } = await serveTracked('a', disk);
  const t = server.tracker('a')!;
  await t.addConsumer('backup:one');
  await t.addConsumer('replica');
  const first = await t.take('backup:one');
  assert.equal(first.full, true);
  assert.equal(first.bytes, SIZE);
  await t.commit('backup:one');

  await c.write(3 * B + 512, pattern(4096, 1)); // block 3
  await c.write(10 * B - 512, pattern(1024, 2)); // blocks 9 and 10
  await c.trim(20 * B, 2 * B); // 20, 21
  await c.writeZeroes(SIZE - 4096, 4096); // the last block
  await c.read(0, 1 << 20); // reads mark nothing
  const taken = await t.take('backup:one');
  assert.equal(taken.full, false);
  assert.deepEqual(blocksOf(taken), [3, 9, 10, 20, 21, SIZE / B - 1]);
  await t.restore('backup:one');
  await c.write(30 * B, pattern(512, 3));
  const again = await t.take('backup:one');
  assert.deepEqual(blocksOf(again), [3, 9, 10, 20, 21, 30, SIZE / B - 1], 'the restored take and the new write');
  await t.commit('backup:one');
  assert.deepEqual(blocksOf(await t.take('backup:one')), [], 'committed: nothing left');
  await t.commit('backup:one');

  // The other consumer still has its first, full take pending.
  const replica = t.consumers().find((x) => x.name === 'replica')!;
  assert.equal(replica.full, true);

  await c.write(5 * B, pattern(4096, 4));
  await c.disconnect();
  await server.stop('a');
  const again2 = await serveTracked('a', disk);
  assert.equal(again2.cbt, cbt);
  const t2 = server.tracker('a')!;
  assert.equal(t2.invalidation, undefined, 'our own writes keep the identity');
  assert.deepEqual(blocksOf(await t2.take('backup:one')), [5]);
  await again2.c.disconnect();
  await server.stop('a');
});

test('QD32 writes into the same new blocks cost one journal sync per batch, not one per write', async () => {
  const disk = join(tmp.dir, 'q.vhdx');
  await makeVhdx(disk, { size: SIZE });
  const { c } = await serveTracked('q', disk);
  const t = server.tracker('q')!;
  await t.addConsumer('backup:q');
  await t.take('backup:q');
  await t.commit('backup:q');
  const before = t.syncs;
  // 32 writes of 4 KiB at once, all inside blocks 0 and 1; then 32 more into the same blocks.
  await Promise.all(Array.from({ length: 32 }, (_, i) => c.write((i % 32) * 4096, pattern(4096, i))));
  const firstWave = t.syncs - before;
  await Promise.all(Array.from({ length: 32 }, (_, i) => c.write((i % 32) * 4096, pattern(4096, 100 + i))));
  console.log(`cbt: 64 writes at QD32 into 2 new blocks: ${t.syncs - before} journal syncs`);
  assert.ok(firstWave >= 1 && firstWave <= 2, `${firstWave} syncs for 32 writes into 2 blocks`);
  assert.equal(t.syncs - before, firstWave, 'blocks already dirty cost no sync');
  assert.deepEqual(blocksOf(await t.take('backup:q')), [0, 1]);
  await c.disconnect();
  await server.stop('q');
});

test('a disk written outside the block server makes every consumer full, saying why', async () => {
  const disk = join(tmp.dir, 'o.vhdx');
  await makeVhdx(disk, { size: SIZE });
  const { c } = await serveTracked('o', disk);
  const t = server.tracker('o')!;
  await t.addConsumer('replica');
  await t.take('replica');
  await t.commit('replica');
  await c.write(0, pattern(4096, 1));
  await c.disconnect();
  await server.stop('o');
  // Another writer: our engine opened directly, as any tool would.
  const f = await NodeFile.open(disk);
  const d = await openVhdx(f);
  await d.write(pattern(4096, 9), 7 * MiB);
  await d.close();
  const again = await serveTracked('o', disk);
  const t2 = server.tracker('o')!;
  assert.match(t2.invalidation ?? '', /written outside the block server/);
  const taken = await t2.take('replica');
  assert.equal(taken.full, true);
  assert.match(taken.reason ?? '', /DataWriteGuid/);
  await again.c.disconnect();
  await server.stop('o');
});

test('a checkpoint and a live merge keep the dirty set of the virtual disk', async () => {
  const disk = join(tmp.dir, 'm.vhdx');
  await makeVhdx(disk, { size: SIZE });
  const { c } = await serveTracked('m', disk);
  const t = server.tracker('m')!;
  await t.addConsumer('backup:m');
  await t.take('backup:m');
  await t.commit('backup:m');
  await c.write(1 * B, pattern(4096, 1));
  const child = await server.branch('m', 'm_1.avhdx');
  await c.write(2 * B, pattern(4096, 2));
  await server.merge('m', { child, target: disk, commit: () => Promise.resolve() });
  await c.write(4 * B, pattern(4096, 3));
  assert.deepEqual(blocksOf(await t.take('backup:m')), [1, 2, 4]);
  await t.commit('backup:m');
  await c.write(6 * B, pattern(4096, 4));
  await c.disconnect();
  await server.stop('m');
  // The merged file the tracker recorded at the swap: no invalidation.
  const again = await serveTracked('m', disk);
  const t2 = server.tracker('m')!;
  assert.equal(t2.invalidation, undefined);
  assert.deepEqual(blocksOf(await t2.take('backup:m')), [6]);
  await again.c.disconnect();
  await server.stop('m');
});

test('the journal grows past its zero-filled room and replays every record, stopping at the zeros', async () => {
  const path = join(tmp.dir, 'grow.cbt');
  const blocks = 1 << 20;
  const j = await Journal.create(path, { blockSize: B, blocks, guids: [], consumers: new Map([['c', newConsumer(blocks)]]) });
  await j.append([{ t: 'c' }, { k: 'c' }]);
  // ~1.5 MiB of runs in one record, then one more: the file grows by zeros and both are read back.
  const runs: Array<[number, number]> = Array.from({ length: 100_000 }, (_, i) => [i * 4, 1]);
  await j.append([{ m: runs }]);
  await j.append([{ m: [[blocks - 1, 1]] }]);
  await j.close();
  const s = await Journal.read(path, B, blocks);
  const c = s!.consumers.get('c')!;
  assert.equal(c.full, false);
  assert.equal(c.dirty.count(), 100_001);
  assert.ok(c.dirty.has(399_996) && c.dirty.has(blocks - 1) && !c.dirty.has(1));
});
