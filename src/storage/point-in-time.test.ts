// Point-in-time copies of served disks while real NBD clients write (point-in-time.ts). The
// target must hold the disk as it was when the copy started — checked against a model of every
// byte, against qemu-img's own read of the export taken at that moment (qemu-img compare) and by
// qemu-img check — never what was written after. Ordering comes from gates on the target, not
// clocks: target writes into two chosen chunks wait until the test opens them, which parks
// both background walkers there, so every write the client sends meanwhile to a later chunk
// must copy that chunk first (copy before write).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import type { VirtualDisk } from '../blockio/virtual-disk.ts';
import { isVmhostError } from '../common/index.ts';
import { checkVhdx } from '../vhd/index.ts';
import { BlockServer } from './block-server.ts';
import { openDiskFile } from './open-disk.ts';
import { createDifferencingFile } from './disk-create.ts';
import { POINT_IN_TIME_STAGE, type CopyBeforeWriteStage } from './point-in-time.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { tempDir, makeVhdx, pattern, run, prng, randomIoOutside, gated, readAll, same } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('pit-copy-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

type WithOwnRanges = VirtualDisk & { ownRanges(): Promise<Array<{ offset: number; length: number; zero: boolean }>> };

const PARKED_SIZE = 16 * MiB;

const stageOf = (name: string) => server.pipeline(name).get<CopyBeforeWriteStage>(POINT_IN_TIME_STAGE);

test("'all': qemu-io writes, trims and zeroes during the copy; the target is the moment, sparse, and qemu-img agrees", async () => {
  const SIZE = 64 * MiB;
  const src = join(tmp.dir, 'all.vhdx');
  // Data in two of every three chunks (chunks 8 and 9 included: the gate holds the walkers there), holes elsewhere.
  const initial: Array<[number, Uint8Array]> = [];
  for (let c = 0; c < 64; c++) if (c % 3 !== 0) initial.push([c * MiB + (c % 4) * 64 * 1024, pattern(256 * 1024, c)]);
  await makeVhdx(src, { size: SIZE, blockSize: MiB }, initial);
  const moment = new Uint8Array(SIZE);
  for (const [o, b] of initial) moment.set(b, o);
  const served = await server.serve(src, { exportName: 'all' });
  // The old way, while nothing writes: qemu-img reads the whole export.
  const snap = join(tmp.dir, 'all-snap.raw');
  const conv = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', served.uri, snap]);
  assert.equal(conv.code, 0, conv.stderr);

  const targetPath = join(tmp.dir, 'all-target.vhdx');
  await makeVhdx(targetPath, { size: SIZE, blockSize: MiB });
  const target = await openDiskFile(targetPath);
  const { disk, gate } = gated(target, [8, 9]);
  const copy = await server.startPointInTimeCopy([{ exportName: 'all', target: disk }]);
  const stage = stageOf('all')!;
  assert.ok(stage, 'the stage is in the pipeline while the copy runs');

  // 300 operations outside chunks 8–9, in order (qemu-io runs its commands one after the other).
  const final = moment.slice();
  const cmds = randomIoOutside(prng(10), 300, SIZE, [8 * MiB, 10 * MiB], final, 'zeros');
  const io = await run('qemu-io', ['-f', 'raw', '-d', 'unmap', ...cmds, served.uri], 120_000);
  assert.equal(io.code, 0, io.stdout + io.stderr);
  assert.doesNotMatch(io.stdout + io.stderr, /error|failed/i);
  assert.ok(gate.held > 0 && copy.progress().copiedBytes < SIZE, 'the copy was still running when the writes ended');
  assert.ok(stage.copiedBeforeWrite > 0, 'writes came before the walker and copied first');
  gate.open();
  await copy.done;
  assert.deepEqual(copy.progress(), { copiedBytes: SIZE, totalBytes: SIZE });
  assert.equal(server.pipeline('all').get(POINT_IN_TIME_STAGE), undefined, 'the stage removed itself');
  await target.close();

  const c = await NbdTestClient.connect(served.socketPath, 'all');
  same(new Uint8Array(Buffer.concat([await c.read(0, SIZE / 2), await c.read(SIZE / 2, SIZE / 2)])), final, 'the served disk holds every write');
  await c.disconnect();
  same(await readAll(targetPath, SIZE), moment, 'the target holds the moment');
  const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', snap, targetPath]);
  assert.match(cmp.stdout, /Images are identical/, cmp.stdout + cmp.stderr);
  const check = await run('qemu-img', ['check', '-f', 'vhdx', targetPath]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  // Sparse: chunks that were holes at the moment are holes in the target.
  const t = await openDiskFile(targetPath, { readOnly: true });
  for (let ch = 0; ch < 64; ch += 3) {
    assert.deepEqual((await t.blockStatus(ch * MiB, MiB)).map((x) => x.hole), [true], `chunk ${ch} stays unallocated`);
  }
  await t.close();
});

test("'own' copies only the differencing leaf's ranges; over a copy of the parent it reads as the moment", async () => {
  const SIZE = 32 * MiB;
  const parent = join(tmp.dir, 'base.vhdx');
  await makeVhdx(parent, { size: SIZE, blockSize: MiB }, Array.from({ length: 32 }, (_, c) => [c * MiB, pattern(MiB, 50 + c)] as [number, Uint8Array]));
  const leaf = join(tmp.dir, 'leaf.avhdx');
  await createDifferencingFile(leaf, parent, { format: 'VHDX', blockSize: MiB });
  const served = await server.serve(leaf, { exportName: 'own' });
  const c = await NbdTestClient.connect(served.socketPath, 'own');
  // The leaf's own ranges: whole blocks, sectors inside blocks, and two blocks trimmed (zero, hiding the parent).
  for (const ch of [2, 5, 8, 9, 20]) await c.write(ch * MiB, pattern(MiB, 90 + ch));
  for (const ch of [3, 12, 21]) await c.write(ch * MiB + 8192, pattern(12 * 1024, 70 + ch));
  await c.trim(14 * MiB, MiB);
  await c.trim(25 * MiB, MiB);
  const moment = new Uint8Array(await c.read(0, SIZE));
  const leafDisk = server.get('own')!.disk as WithOwnRanges;
  const ownAtMoment = await leafDisk.ownRanges();

  // The caller copies the frozen parent as a file and puts a differencing target on the copy.
  const parentCopy = join(tmp.dir, 'base-copy.vhdx');
  copyFileSync(parent, parentCopy);
  const targetPath = join(tmp.dir, 'own-target.avhdx');
  await createDifferencingFile(targetPath, parentCopy, { format: 'VHDX', blockSize: MiB });
  const target = await openDiskFile(targetPath);
  const { disk, gate } = gated(target, [8, 9]);
  const copy = await server.startPointInTimeCopy([{ exportName: 'own', target: disk, ranges: 'own' }]);
  const stage = stageOf('own')!;
  // Writes over own ranges (copied first), over the parent's (nothing to copy), partly both.
  await Promise.all([
    c.write(20 * MiB + 4096, pattern(64 * 1024, 1)),
    c.write(12 * MiB, pattern(MiB, 2)),
    c.write(21 * MiB, pattern(32 * 1024, 3)),
    c.writeZeroes(25 * MiB, 8192, { noHole: true }),
    c.trim(3 * MiB, MiB),
    c.write(30 * MiB, pattern(MiB, 4)),
  ]);
  assert.ok(stage.copiedBeforeWrite > 0 && gate.held > 0, 'writes came while the walkers were held');
  gate.open();
  await copy.done;
  const own = ownAtMoment.reduce((n, r) => n + r.length, 0);
  assert.deepEqual(copy.progress(), { copiedBytes: own, totalBytes: own });
  await c.disconnect();
  await target.close();

  same(await readAll(targetPath, SIZE), moment, 'the flattened target holds the moment');
  const t = await openDiskFile(targetPath, { readOnly: true }) as WithOwnRanges;
  assert.deepEqual(await t.ownRanges(), ownAtMoment, 'the target defines exactly the ranges the leaf defined');
  await t.close();
  const f = await NodeFile.open(targetPath, { readOnly: true });
  assert.deepEqual(await checkVhdx(f), []);
  await f.close();
  await server.stop('own');
});

test('two exports copied at one moment: a writer that alternates between them is cut between two of its writes', async () => {
  // One record per chunk: a record written after the moment lands in a hole, so its copy before
  // write costs no target write and the writer runs on through the copy.
  const SIZE = 256 * MiB, SLOT = MiB, REC = 4096;
  const names = ['vm-a', 'vm-b'];
  const clients: NbdTestClient[] = [];
  for (const n of names) {
    const p = join(tmp.dir, `${n}.vhdx`);
    await makeVhdx(p, { size: SIZE, blockSize: MiB });
    clients.push(await NbdTestClient.connect((await server.serve(p, { exportName: n })).socketPath, n));
  }
  // Record k goes to A, then (acknowledged) to B: at any one moment B holds k or k-1 records if A holds k.
  let k = 0, stop = false;
  let started!: () => void;
  const twenty = new Promise<void>((r) => { started = r; });
  const writer = (async () => {
    while (!stop && (k + 1) * SLOT < SIZE) {
      k++;
      for (const cl of clients) await cl.write(k * SLOT, pattern(REC, k));
      if (k === 20) started();
    }
  })();
  await twenty;
  const targets = await Promise.all(names.map(async (n) => {
    const p = join(tmp.dir, `${n}-target.vhdx`);
    await makeVhdx(p, { size: SIZE, blockSize: MiB });
    return { path: p, disk: await openDiskFile(p) };
  }));
  const copy = await server.startPointInTimeCopy(names.map((n, i) => ({ exportName: n, target: targets[i]!.disk })));
  const atStart = k;
  await copy.done;
  stop = true;
  await writer;
  const counts: number[] = [];
  for (const t of targets) {
    await t.disk.close();
    const d = await openDiskFile(t.path, { readOnly: true });
    const rec = async (i: number) => {
      const b = new Uint8Array(REC);
      await d.read(b, i * SLOT);
      return b;
    };
    let n = 0;
    while (n + 1 < SIZE / SLOT && Buffer.from(await rec(n + 1)).equals(Buffer.from(pattern(REC, n + 1)))) n++;
    for (let i = n + 1; i < SIZE / SLOT; i++) assert.ok((await rec(i)).every((x) => x === 0), `${t.path}: records 1..${n} and nothing after`);
    await d.close();
    counts.push(n);
  }
  const [a, b] = counts as [number, number];
  assert.ok(a >= 20 && a <= atStart + 1, `A's moment (${a} records) lies between the 20th record and the start's return (${atStart})`);
  assert.ok(b === a || b === a - 1, `A holds ${a} records and B ${b}: one moment for both`);
  for (const cl of clients) await cl.disconnect();
  for (const n of names) await server.stop(n);
});

/**
 * A 16 MiB disk full of data served as `name`, a copy of it started to a new VHDX whose writes
 * into chunks 0 and 1 (where the two walkers park) and 5 (for a guest write to wait on) are
 * held, and a client connected.
 */
async function parkedCopy(name: string) {
  const src = join(tmp.dir, `${name}.vhdx`);
  await makeVhdx(src, { size: PARKED_SIZE, blockSize: MiB }, Array.from({ length: 16 }, (_, c) => [c * MiB, pattern(MiB, c)] as [number, Uint8Array]));
  const served = await server.serve(src, { exportName: name });
  const targetPath = join(tmp.dir, `${name}-target.vhdx`);
  await makeVhdx(targetPath, { size: PARKED_SIZE, blockSize: MiB });
  const target = await openDiskFile(targetPath);
  const { disk, gate } = gated(target, [0, 1, 5]);
  const copy = await server.startPointInTimeCopy([{ exportName: name, target: disk }]);
  const c = await NbdTestClient.connect(served.socketPath, name);
  return { src, targetPath, target, disk, gate, copy, c };
}

test('a failing target fails the copy, never a guest write; a waiting write goes on, reads never wait', async () => {
  const { target, gate, copy, c } = await parkedCopy('fail');
  let written = false;
  const waiting = c.write(5 * MiB + 4096, pattern(4096, 99)).then(() => { written = true; });
  // A read of the same chunk is answered while the write waits on the chunk's copy.
  assert.ok((await c.read(5 * MiB, 8192)).equals(Buffer.from(pattern(MiB, 5).subarray(0, 8192))), 'the read sees the old data');
  assert.equal(written, false, 'the write waits for the chunk to be copied');
  const eio = Object.assign(new Error('EIO: target device gone'), { code: 'EIO' });
  gate.open(eio);
  await waiting;
  await assert.rejects(copy.done, (e: unknown) => isVmhostError(e, 'STORAGE_COPY_FAILED') && e.context['side'] === 'target' && e.cause === eio);
  assert.equal(server.pipeline('fail').get(POINT_IN_TIME_STAGE), undefined, 'the stages left');
  // Writes after the failure go straight to the disk.
  await c.write(10 * MiB, pattern(8192, 98));
  const now = new Uint8Array(await c.read(0, PARKED_SIZE));
  assert.ok(Buffer.from(now.subarray(5 * MiB + 4096, 5 * MiB + 8192)).equals(Buffer.from(pattern(4096, 99))));
  assert.ok(Buffer.from(now.subarray(10 * MiB, 10 * MiB + 8192)).equals(Buffer.from(pattern(8192, 98))));

  // The export is free again: a new copy to a good target completes with today's content.
  await target.close();
  const againPath = join(tmp.dir, 'fail-again.vhdx');
  await makeVhdx(againPath, { size: PARKED_SIZE, blockSize: MiB });
  const again = await openDiskFile(againPath);
  await (await server.startPointInTimeCopy([{ exportName: 'fail', target: again }])).done;
  await again.close();
  same(await readAll(againPath, PARKED_SIZE), now, 'the second copy');
  await c.disconnect();
  await server.stop('fail');
});

test('cancel lets waiting writes go and ends after the copies under way; swaps, resizes and second copies are refused meanwhile; stop cancels', async () => {
  const { src, targetPath, target, disk, gate, copy, c } = await parkedCopy('cancel');

  const refused = (code: string) => (e: unknown) => isVmhostError(e) && e.code === code;
  await assert.rejects(server.branch('cancel', 'cancel_1.avhdx'), refused('STORAGE_COPY_RUNNING'));
  await assert.rejects(server.resize('cancel', 2 * PARKED_SIZE), refused('STORAGE_COPY_RUNNING'));
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'cancel', target: disk }]), refused('STORAGE_COPY_RUNNING'));
  assert.equal(server.get('cancel')!.path, src, 'no checkpoint was taken');

  const waiting = c.write(5 * MiB, pattern(4096, 77));
  while (gate.held < 3) await c.read(0, 512); // both walkers and the write's copy are at the gate
  let cancelled = false;
  const cancelling = copy.cancel().then(() => { cancelled = true; });
  await waiting; // let go at once, with the gate still shut
  await c.write(7 * MiB, pattern(4096, 78));
  assert.equal(server.pipeline('cancel').get(POINT_IN_TIME_STAGE), undefined, 'the stage left at once');
  await c.read(0, 512);
  assert.equal(cancelled, false, 'cancel waits for the copies under way (nothing may touch the target after it)');
  gate.open();
  await cancelling;
  await assert.rejects(copy.done, refused('STORAGE_COPY_CANCELLED'));
  await target.close();

  // Stopping an export cancels its copy (with the reason in the error).
  const t2 = await openDiskFile(targetPath);
  const second = gated(t2, [0, 1]);
  const copy2 = await server.startPointInTimeCopy([{ exportName: 'cancel', target: second.disk }]);
  await c.disconnect();
  const stopping = server.stop('cancel');
  second.gate.open();
  await stopping;
  await assert.rejects(copy2.done, (e: unknown) => isVmhostError(e, 'STORAGE_COPY_CANCELLED') && /stopped/.test(e.message));
  await t2.close();
});

test('bad targets are refused before anything pauses', async () => {
  const src = join(tmp.dir, 'bad.vhdx');
  await makeVhdx(src, { size: 8 * MiB, blockSize: MiB });
  await server.serve(src, { exportName: 'bad' });
  const small = join(tmp.dir, 'small.vhdx');
  await makeVhdx(small, { size: 4 * MiB, blockSize: MiB });
  const s = await openDiskFile(small);
  const is = (code: string) => (e: unknown) => isVmhostError(e) && e.code === code;
  await assert.rejects(server.startPointInTimeCopy([]), is('STORAGE_INVALID_ARGUMENT'));
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'nope', target: s }]), is('STORAGE_NO_SUCH_EXPORT'));
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'bad', target: s }]), is('STORAGE_INVALID_ARGUMENT'));
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'bad', target: server.get('bad')!.disk }]), is('STORAGE_INVALID_ARGUMENT'));
  await s.close();
  const same8 = join(tmp.dir, 'same8.vhdx');
  await makeVhdx(same8, { size: 8 * MiB, blockSize: MiB });
  const r = await openDiskFile(same8, { readOnly: true });
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'bad', target: r }]), is('STORAGE_READ_ONLY'));
  await r.close();
  const w = await openDiskFile(same8);
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'bad', target: w }, { exportName: 'bad', target: w }]), (e: unknown) => is('STORAGE_INVALID_ARGUMENT')(e) && /twice/.test((e as Error).message));
  const other = join(tmp.dir, 'bad2.vhdx');
  await makeVhdx(other, { size: 8 * MiB, blockSize: MiB });
  await server.serve(other, { exportName: 'bad2' });
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'bad', target: w }, { exportName: 'bad2', target: w }]), (e: unknown) => is('STORAGE_INVALID_ARGUMENT')(e) && /target too/.test((e as Error).message));
  await server.stop('bad2');
  await w.close();
  assert.deepEqual(server.pipeline('bad').names, ['metering', 'qos'], 'no stage was left behind');
  await server.stop('bad');
});
