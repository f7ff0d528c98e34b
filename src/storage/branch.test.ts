// A checkpoint under connected clients (BlockServer.branch → Pipeline.swapDisk → branchDisk):
// writes in flight when it starts all succeed, each lands whole in the old leaf or the new
// one, the chain reads back the model (ours and qemu-img), both files pass qemu-img check,
// the chain reopens from scratch, and the old leaf is never free for another process to
// write. qemu-img bench writing through the branch finishes without an error. A branch that
// cannot happen leaves the export serving its old leaf.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import { isVmhostError } from '../common/index.ts';
import { checkVhdx } from '../vhd/index.ts';
import { BlockServer } from './block-server.ts';
import { openDiskFile } from './open-disk.ts';
import { chainFiles } from './disk-info.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { tempDir, makeVhdx, pattern, run } from './test-support.ts';

const MiB = 1 << 20;
const SIZE = 32 * MiB;
const tmp = tempDir('nbd-branch-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

const locked = (path: string): boolean => {
  try {
    execFileSync('flock', ['-n', '-x', path, 'true']);
    return false;
  } catch {
    return true;
  }
};

test('writes racing a branch all succeed; the chain holds the model; old leaf is the clean parent', async () => {
  const leaf = join(tmp.dir, 'a.vhdx');
  await makeVhdx(leaf, { size: SIZE, blockSize: MiB });
  const served = await server.serve(leaf, { exportName: 'a' });
  const c = await NbdTestClient.connect(served.socketPath, 'a');
  const model = new Uint8Array(SIZE);
  const write = async (offset: number, seed: number, length = 64 * 1024) => {
    const data = pattern(length, seed);
    model.set(data, offset);
    await c.write(offset, data);
  };
  // Before: A writes in the first 8 MiB. During: 64 writes in 8–16 MiB sent together with the branch. After: 16–24 MiB.
  await Promise.all(Array.from({ length: 32 }, (_, i) => write(i * 256 * 1024, i + 1)));
  const during = Array.from({ length: 64 }, (_, i) => write(8 * MiB + i * 128 * 1024, 100 + i));
  const branched = await server.branch('a', 'a_8F0D.avhdx');
  await Promise.all(during);
  await Promise.all(Array.from({ length: 32 }, (_, i) => write(16 * MiB + i * 256 * 1024, 200 + i)));

  assert.equal(branched, join(tmp.dir, 'a_8F0D.avhdx'));
  assert.equal(server.get('a')!.path, branched);
  assert.deepEqual(chainFiles(server.get('a')!.disk), [branched, leaf]);
  assert.ok(Buffer.from(model).equals(await c.read(0, SIZE)), 'the client reads the model through the new chain');
  assert.ok(locked(leaf) && locked(branched), 'another process can lock neither file for writing');
  await c.disconnect();
  await server.stop('a');

  // The old leaf by itself: everything written before, nothing after, each racing write whole in one file.
  const parent = await openDiskFile(leaf, { readOnly: true });
  const old = new Uint8Array(SIZE);
  await parent.read(old, 0);
  await parent.close();
  assert.ok(Buffer.from(old.subarray(0, 8 * MiB)).equals(Buffer.from(model.subarray(0, 8 * MiB))), 'writes acknowledged before the branch are in the old leaf');
  assert.ok(old.subarray(16 * MiB).every((b) => b === 0), 'writes after the branch are not');
  for (let i = 0; i < 64; i++) {
    const at = 8 * MiB + i * 128 * 1024;
    const got = Buffer.from(old.subarray(at, at + 64 * 1024));
    assert.ok(got.equals(Buffer.from(pattern(64 * 1024, 100 + i))) || got.every((b) => b === 0), `racing write ${i} is whole in one file`);
  }
  // The chain from scratch (its parent linkage checked again), and qemu-img's opinion.
  const reopened = await openDiskFile(branched, { readOnly: true });
  const all = new Uint8Array(SIZE);
  await reopened.read(all, 0);
  await reopened.close();
  assert.ok(Buffer.from(all).equals(Buffer.from(model)));
  // QEMU's vhdx driver opens no differencing VHDX: it checks the old leaf, our engine the child,
  // and qemu-img compares the model with the chain as our server serves it again.
  assert.equal((await run('qemu-img', ['check', '-f', 'vhdx', leaf])).code, 0, 'qemu-img check of the old leaf');
  const cf = await NodeFile.open(branched, { readOnly: true });
  assert.deepEqual(await checkVhdx(cf), []);
  await cf.close();
  writeFileSync(join(tmp.dir, 'model.raw'), model);
  const again = await server.serve(branched, { exportName: 'a2', readOnly: true });
  const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', join(tmp.dir, 'model.raw'), again.uri]);
  assert.match(cmp.stdout, /Images are identical/, cmp.stdout + cmp.stderr);
  await server.stop('a2');
});

test('qemu-img bench writing through a branch finishes without an I/O error; a second branch stacks on the first', async () => {
  const leaf = join(tmp.dir, 'q.vhdx');
  await makeVhdx(leaf, { size: SIZE, blockSize: MiB });
  const served = await server.serve(leaf, { exportName: 'q' });
  const COUNT = 4096; // 16 MiB of 4 KiB writes
  const bench = run('qemu-img', ['bench', '-f', 'raw', '-w', '-t', 'none', '-s', '4k', '-d', '8', '-c', String(COUNT), '--pattern=0x5a', served.uri], 120_000);
  let finished = false;
  void bench.then(() => (finished = true));
  // Branch on progress, not on a clock: once 2 MiB of blocks are allocated, then again at 2 MiB more in the child.
  const base = statSync(leaf).size;
  while (!finished && statSync(leaf).size < base + 2 * MiB) await new Promise((r) => setTimeout(r, 2));
  const first = await server.branch('q', 'q_1.avhdx');
  const childBase = statSync(first).size;
  while (!finished && statSync(first).size < childBase + 2 * MiB) await new Promise((r) => setTimeout(r, 2));
  const second = await server.branch('q', 'q_2.avhdx');
  assert.equal(finished, false, 'both branches came while the bench was writing');
  const res = await bench;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /Run completed/);
  await server.stop('q');
  const chain = await openDiskFile(second, { readOnly: true });
  assert.deepEqual(chainFiles(chain), [second, first, leaf]);
  const b = new Uint8Array(COUNT * 4096);
  await chain.read(b, 0);
  await chain.close();
  assert.ok(b.every((x) => x === 0x5a), 'every byte the bench wrote reads back through the three files');
});

test('a branch that cannot happen leaves the export on its old leaf, writable', async () => {
  const leaf = join(tmp.dir, 'f.vhdx');
  await makeVhdx(leaf, { size: SIZE, blockSize: MiB });
  const served = await server.serve(leaf, { exportName: 'f' });
  writeFileSync(join(tmp.dir, 'taken.avhdx'), 'not a disk');
  await assert.rejects(server.branch('f', 'taken.avhdx'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EEXIST' || isVmhostError(e));
  assert.equal(server.get('f')!.path, leaf);
  const c = await NbdTestClient.connect(served.socketPath, 'f');
  await c.write(0, pattern(4096, 9));
  assert.ok((await c.read(0, 4096)).equals(Buffer.from(pattern(4096, 9))));
  await c.disconnect();
  assert.ok(locked(leaf), 'the reopened leaf is locked again');

  const raw = join(tmp.dir, 'r.img');
  writeFileSync(raw, Buffer.alloc(MiB));
  await server.serve(raw, { exportName: 'r' });
  await assert.rejects(server.branch('r', 'r_1.avhdx'), (e: unknown) => isVmhostError(e, 'STORAGE_UNSUPPORTED'));
  assert.equal(existsSync(join(tmp.dir, 'r_1.avhdx')), false);
  assert.equal(server.get('r')!.path, raw);
});
