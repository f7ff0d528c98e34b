// The mirror (storage live migration, mirror.ts) while real NBD clients write: the target must
// end as the disk the clients last wrote — checked against a model of every byte, by qemu-img
// compare and check and by our own Test-VHD — and the export must then serve it. Ordering comes
// from gates on the target, not clocks: target writes into two chosen chunks wait until the test
// opens them, which parks both walkers there, so chunks before them are copied (a write there
// goes to both) and chunks after are not (a write there goes to the source; the walker copies
// it later). A SIGKILL of the serving process at progress points leaves the source complete
// before the commit and the target complete after it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { BlockServer } from './block-server.ts';
import { COPY_CHUNK } from './chunk-walker.ts';
import { createDifferencingFile } from './disk-create.ts';
import { testDiskFile } from './disk-info.ts';
import { MIRROR_STAGE } from './mirror.ts';
import { createMirrorFile } from './mirror-file.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { openDiskFile } from './open-disk.ts';
import { tempDir, makeVhdx, pattern, run, prng, randomIoOutside, gated, readAll, same, startChildServer, killChild } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('mirror-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
const children = new Set<ChildProcess>();
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server.close();
  tmp.cleanup();
});

const is = (code: string) => (e: unknown) => isVmhostError(e) && e.code === code;

/** Read a whole export, 16 MiB per request (the server's maximum is 32 MiB). */
async function readExport(c: NbdTestClient, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let o = 0; o < size; o += 16 * MiB) out.set(await c.read(o, Math.min(16 * MiB, size - o)), o);
  return out;
}

/**
 * The target file is what the export served last: our read and Test-VHD, qemu-img check, and
 * qemu-img compare against the model (not for a differencing VHDX: qemu's vhdx driver cannot open one).
 */
async function verifyFile(path: string, model: Uint8Array, what: string, qemuReads = true): Promise<void> {
  same(await readAll(path, model.length), model, what);
  assert.deepEqual(await testDiskFile(path), [], `${what}: Test-VHD`);
  if (!qemuReads) return;
  const raw = join(tmp.dir, `model-${Math.random().toString(16).slice(2)}.raw`);
  writeFileSync(raw, model);
  const cmp = await run('qemu-img', ['compare', '-f', 'raw', raw, path]);
  assert.equal(cmp.code, 0, `${what}: qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
  const check = await run('qemu-img', ['check', path]);
  assert.equal(check.code, 0, `${what}: qemu-img check: ${check.stdout}${check.stderr}`);
}

test("'all': qemu-io writes before, into and after the copied chunks; the export ends on a target holding every byte", async () => {
  const SIZE = 48 * MiB;
  const src = join(tmp.dir, 'all.vhdx');
  const initial: Array<[number, Uint8Array]> = [];
  for (let c = 0; c < 48; c++) if (c % 5 !== 0) initial.push([c * MiB + (c % 4) * 64 * 1024, pattern(512 * 1024, c)]);
  await makeVhdx(src, { size: SIZE, blockSize: MiB }, initial);
  const model = new Uint8Array(SIZE);
  for (const [o, b] of initial) model.set(b, o);
  const served = await server.serve(src, { exportName: 'all' });

  const targetPath = join(tmp.dir, 'moved', 'all.vhdx');
  mkdirSync(join(tmp.dir, 'moved'));
  const file = await createMirrorFile(served.disk, targetPath);
  const { disk, gate } = gated(file.disk, [8, 9]);
  let commits = 0;
  const mirror = await server.mirror('all', { target: { ...file, disk }, commit: () => { commits++; return Promise.resolve(); } });
  assert.ok(server.pipeline('all').get(MIRROR_STAGE), 'the stage is in while the mirror runs');
  while (gate.held < 2) await new Promise((r) => setTimeout(r, 5));

  // 300 operations outside chunks 8–9, in order: before them the target is current (write to both), after them not yet.
  const cmds = randomIoOutside(prng(11), 300, SIZE, [8 * MiB, 10 * MiB], model, 'kept'); // trims are dropped while the mirror runs
  const io = await run('qemu-io', ['-f', 'raw', '-d', 'unmap', ...cmds, served.uri], 120_000);
  assert.equal(io.code, 0, io.stdout + io.stderr);
  assert.equal(commits, 0, 'no commit before the copy ends');
  gate.open();
  await mirror.done;
  assert.equal(commits, 1);
  assert.equal(server.get('all')!.path, targetPath, 'the export serves the target');
  assert.equal(server.pipeline('all').get(MIRROR_STAGE), undefined, 'the stage left');
  const p = mirror.progress();
  assert.equal(p.copiedBytes, p.totalBytes);

  // The export goes on with the target; the source is the caller's to delete, untouched since the switch.
  const c = await NbdTestClient.connect(served.socketPath, 'all');
  await c.write(8 * MiB, pattern(8192, 200));
  model.set(pattern(8192, 200), 8 * MiB);
  same(await readExport(c, SIZE), model, 'the export after the switch');
  await c.disconnect();
  await server.stop('all');
  await verifyFile(targetPath, model, 'the target');
});

test("'own': a differencing leaf mirrored over a copy of its parent, a writer running; the chain at the destination reads as the export", async () => {
  const SIZE = 32 * MiB;
  const base = join(tmp.dir, 'own-base.vhdx');
  await makeVhdx(base, { size: SIZE, blockSize: MiB }, Array.from({ length: 32 }, (_, c) => [c * MiB, pattern(256 * 1024, c + 50)] as [number, Uint8Array]));
  const leaf = join(tmp.dir, 'own-leaf.avhdx');
  await createDifferencingFile(leaf, base, { format: 'VHDX' });
  const model = await readAll(base, SIZE);
  const served = await server.serve(leaf, { exportName: 'own' });
  const c = await NbdTestClient.connect(served.socketPath, 'own');
  for (let k = 0; k < 8; k++) {
    const b = pattern(64 * 1024, 100 + k);
    await c.write(k * 4 * MiB + 128 * 1024, b);
    model.set(b, k * 4 * MiB + 128 * 1024);
  }

  const destBase = join(tmp.dir, 'own-dest-base.vhdx');
  copyFileSync(base, destBase);
  const file = await createMirrorFile(served.disk, join(tmp.dir, 'own-dest-leaf.avhdx'), destBase);
  // The walkers park in the leaf's own chunks 4 and 8 while the writer runs over every chunk.
  const { disk, gate } = gated(file.disk, [4, 8]);
  const mirror = await server.mirror('own', { target: { ...file, disk }, ranges: 'own', commit: () => Promise.resolve() });
  while (gate.held < 2) await new Promise((r) => setTimeout(r, 5));
  const rnd = prng(12);
  for (let k = 0; k < 200; k++) {
    const length = (1 + rnd(16)) * 4096;
    let offset = rnd((SIZE - length) / 4096) * 4096;
    const hit = (ch: number) => offset < (ch + 1) * COPY_CHUNK && offset + length > ch * COPY_CHUNK;
    if (hit(4) || hit(8)) offset = 12 * MiB + offset % (16 * MiB);
    const b = pattern(length, 300 + k);
    if (k % 7 === 6) {
      await c.writeZeroes(offset, length);
      model.fill(0, offset, offset + length);
    } else {
      await c.write(offset, b);
      model.set(b, offset);
    }
  }
  gate.open();
  await mirror.done;
  assert.equal(server.get('own')!.path, file.path);
  same(await readExport(c, SIZE), model, 'the export after the switch');
  await c.disconnect();
  await server.stop('own');
  await verifyFile(file.path!, model, 'the destination chain', false);
  const desc = await openDiskFile(file.path!, { readOnly: true });
  assert.equal(desc.type, 'Differencing', 'the leaf is still a differencing disk over the moved parent');
  await desc.close();
});

/** A 16 MiB disk full of data, a mirror to a new file whose writes into chunks 0 and 1 (the parked walkers) are held, and a client. */
async function parkedMirror(name: string) {
  const src = join(tmp.dir, `${name}.vhdx`);
  await makeVhdx(src, { size: 16 * MiB, blockSize: MiB }, Array.from({ length: 16 }, (_, c) => [c * MiB, pattern(MiB, c)] as [number, Uint8Array]));
  const served = await server.serve(src, { exportName: name });
  const file = await createMirrorFile(served.disk, join(tmp.dir, `${name}-target.vhdx`));
  const { disk, gate } = gated(file.disk, [0, 1]);
  const mirror = await server.mirror(name, { target: { ...file, disk }, commit: () => Promise.resolve() });
  while (gate.held < 2) await new Promise((r) => setTimeout(r, 5));
  const c = await NbdTestClient.connect(served.socketPath, name);
  return { src, served, target: file.path!, gate, mirror, c };
}

test('a failing target fails the mirror, never a guest write; the source stays served and the target is removed', async () => {
  const { src, target, gate, mirror, c } = await parkedMirror('fail');
  let written = false;
  // Chunk 0 is being copied: the write waits for it. Chunk 5 is not copied yet: the write goes to the source at once.
  const waiting = c.write(4096, pattern(4096, 99)).then(() => { written = true; });
  await c.write(5 * MiB, pattern(4096, 98));
  assert.ok((await c.read(0, 8192)).equals(Buffer.from(pattern(MiB, 0).subarray(0, 8192))), 'reads never wait');
  assert.equal(written, false, 'the write to the chunk being copied waits');
  const eio = Object.assign(new Error('EIO: target device gone'), { code: 'EIO' });
  gate.open(eio);
  await waiting;
  await assert.rejects(mirror.done, (e: unknown) => isVmhostError(e, 'STORAGE_MIRROR_FAILED') && e.context['side'] === 'target');
  assert.equal(server.get('fail')!.path, src, 'the source is still served');
  assert.equal(existsSync(target), false, 'the partial target is removed');
  assert.equal(server.pipeline('fail').get(MIRROR_STAGE), undefined);
  const now = await c.read(0, 16 * MiB);
  assert.ok(now.subarray(4096, 8192).equals(Buffer.from(pattern(4096, 99))));
  assert.ok(now.subarray(5 * MiB, 5 * MiB + 4096).equals(Buffer.from(pattern(4096, 98))));
  // A commit that throws fails it the same way.
  const again = await createMirrorFile(server.get('fail')!.disk, target);
  const m2 = await server.mirror('fail', { target: again, commit: () => Promise.reject(new Error('config not writable')) });
  await assert.rejects(m2.done, (e: unknown) => isVmhostError(e, 'STORAGE_MIRROR_FAILED') && /config not writable/.test(e.message));
  assert.equal(existsSync(target), false);
  assert.ok((await c.read(0, 16 * MiB)).equals(now), 'the source still serves the same bytes');
  await c.disconnect();
  await server.stop('fail');
});

test('cancel leaves the source serving and removes the target; swaps, merges, resizes, copies and a second mirror are refused meanwhile; stop cancels', async () => {
  const { src, served, target, gate, mirror, c } = await parkedMirror('cancel');
  await assert.rejects(server.branch('cancel', 'cancel_1.avhdx'), is('STORAGE_COPY_RUNNING'));
  await assert.rejects(server.resize('cancel', 32 * MiB), is('STORAGE_COPY_RUNNING'));
  await assert.rejects(server.merge('cancel', { child: src, target: src, commit: () => Promise.resolve() }), is('STORAGE_COPY_RUNNING'));
  const other = await createMirrorFile(served.disk, join(tmp.dir, 'cancel-other.vhdx'));
  await assert.rejects(server.mirror('cancel', { target: other, commit: () => Promise.resolve() }), is('STORAGE_COPY_RUNNING'));
  await assert.rejects(server.startPointInTimeCopy([{ exportName: 'cancel', target: other.disk }]), is('STORAGE_COPY_RUNNING'));
  await other.discard();
  const cancelled = mirror.cancel('by the test');
  gate.open();
  await cancelled;
  await assert.rejects(mirror.done, (e: unknown) => isVmhostError(e, 'STORAGE_MIRROR_CANCELLED') && /by the test/.test(e.message));
  assert.equal(existsSync(target), false);
  assert.equal(server.get('cancel')!.path, src);
  await c.write(3 * MiB, pattern(4096, 7));
  assert.ok((await c.read(3 * MiB, 4096)).equals(Buffer.from(pattern(4096, 7))));
  await c.disconnect();

  // Stopping the export cancels a running mirror.
  const file = await createMirrorFile(served.disk, target);
  const { disk, gate: g2 } = gated(file.disk, [0, 1]);
  const m2 = await server.mirror('cancel', { target: { ...file, disk }, commit: () => Promise.resolve() });
  const stopping = server.stop('cancel');
  g2.open();
  await stopping;
  await assert.rejects(m2.done, (e: unknown) => isVmhostError(e, 'STORAGE_MIRROR_CANCELLED') && /stopped/.test(e.message));
  assert.equal(existsSync(target), false);
});

test('bad targets are refused before anything pauses', async () => {
  const src = join(tmp.dir, 'bad.vhdx');
  await makeVhdx(src, { size: 8 * MiB, blockSize: MiB });
  const served = await server.serve(src, { exportName: 'bad' });
  const small = join(tmp.dir, 'bad-small.vhdx');
  await makeVhdx(small, { size: 4 * MiB, blockSize: MiB });
  const d = await openDiskFile(small);
  const discard = () => d.close();
  await assert.rejects(server.mirror('bad', { target: { disk: d, discard }, commit: () => Promise.resolve() }), is('STORAGE_INVALID_ARGUMENT'));
  await assert.rejects(server.mirror('bad', { target: { disk: served.disk, discard }, commit: () => Promise.resolve() }), is('STORAGE_INVALID_ARGUMENT'));
  await assert.rejects(server.mirror('nope', { target: { disk: d, discard }, commit: () => Promise.resolve() }), is('STORAGE_NO_SUCH_EXPORT'));
  await d.close();
  const ro = await openDiskFile(src.replace('bad.vhdx', 'bad-small.vhdx'), { readOnly: true });
  await assert.rejects(server.mirror('bad', { target: { disk: ro, discard }, commit: () => Promise.resolve() }), is('STORAGE_READ_ONLY'));
  await ro.close();
  assert.deepEqual(server.pipeline('bad').names, ['metering', 'qos']);
  await server.stop('bad');
});

test('SIGKILL of the serving process mid-copy or after the commit: acknowledged writes are in the source before the commit, in the target after', async () => {
  const SIZE = 32 * MiB;
  for (const [k, point] of [[0, 0.3], [1, 0.7], [2, 'committed']] as const) {
    const dir = join(tmp.dir, `kill-${k}`);
    const src = join(dir, 'src.vhdx');
      mkdirSync(dir);
    await makeVhdx(src, { size: SIZE, blockSize: MiB }, Array.from({ length: 32 }, (_, c) => [c * MiB, pattern(MiB, c)] as [number, Uint8Array]));
    const model = await readAll(src, SIZE);
    const dest = join(dir, 'dest.vhdx');
    let progress = 0, committed = false;
    let reached!: () => void;
    const at = new Promise<void>((r) => { reached = r; });
    const child = await startChildServer(src, join(dir, 'sock'), 'k', children, {
      args: ['--mirror', dest],
      onLine: (line) => {
        const m = /^progress (\d+) (\d+)$/.exec(line);
        if (m) progress = Number(m[1]) / Number(m[2]);
        if (line === 'committed') committed = true;
        if (point === 'committed' ? committed : progress >= point) reached();
      },
    });
    // A writer of 4 KiB records, each at its own offset: acknowledged ones must survive, others may or may not.
    const c = await NbdTestClient.connect(child.socketPath, 'k');
    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < SIZE / (64 * 1024); i++) {
        const off = ((i * 37) % (SIZE / (64 * 1024))) * 64 * 1024 + 4096;
        try {
          await c.write(off, pattern(4096, 1000 + i));
        } catch {
          return;
        }
        acked.push(i);
      }
    })();
    child.child.stdin!.write('go\n');
    await at;
    await killChild(child.child);
    stop = true;
    await writer;
    await c.disconnect().catch(() => undefined);
    for (const i of acked) model.set(pattern(4096, 1000 + i), ((i * 37) % (SIZE / (64 * 1024))) * 64 * 1024 + 4096);
    const committedFile = join(dir, 'sock', 'committed');
    const authoritative = existsSync(committedFile) ? readFileSync(committedFile, 'utf8') : src;
    assert.equal(authoritative === dest, point === 'committed', `kill ${k}: the commit decides which file holds the disk`);
    // What a daemon's start does: a read-write open replays the log the kill left.
    await (await openDiskFile(authoritative)).close();
    // Writes in flight at the kill are either; compare only what is known.
    const got = await readAll(authoritative, SIZE);
    const unknown = acked.length === 0 ? 0 : acked[acked.length - 1]! + 1;
    const mask = (b: Uint8Array) => { const x = b.slice(); const off = ((unknown * 37) % (SIZE / (64 * 1024))) * 64 * 1024 + 4096; x.fill(0, off, off + 4096); return x; };
    same(mask(got), mask(model), `kill ${k}: the ${authoritative === dest ? 'target' : 'source'} after the kill`);
    const check = await run('qemu-img', ['check', authoritative]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.deepEqual(await testDiskFile(authoritative), []);
  }
});
