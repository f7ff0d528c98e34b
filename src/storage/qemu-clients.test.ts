// Real NBD clients against our exports (Mount-VHD's acceptance): qemu-img info/map/convert,
// nbdinfo --map/--json, qemu-io writes read back through our engine, trim and write-zeroes
// from qemu-io, a read-only export refusing writes, a 4096-byte-sector disk, nbdcopy with
// multi-conn writing a whole disk that qemu-img then compares and checks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlockServer, openDiskFile } from './index.ts';
import { tempDir, run, pattern, makeVhdx } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('nbd-qemu-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
const SIZE = 64 * MiB;
const written: Array<[number, Uint8Array]> = [[0, pattern(MiB, 1)], [5 * MiB + 4096, pattern(8192, 2)], [40 * MiB, pattern(2 * MiB, 3)]];

function expected(size: number, writes: Array<[number, Uint8Array]>): Buffer {
  const b = Buffer.alloc(size);
  for (const [o, d] of writes) b.set(d, o);
  return b;
}

before(async () => {
  await makeVhdx(join(tmp.dir, 'a.vhdx'), { size: SIZE }, written);
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

test('qemu-img info, qemu-img map and nbdinfo see size and holes of a dynamic VHDX', async () => {
  const s = await server.serve(join(tmp.dir, 'a.vhdx'), { exportName: 'a' });
  try {
    const info = await run('qemu-img', ['info', '--output=json', s.uri]);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout)['virtual-size'], SIZE);

    const map = await run('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri]);
    assert.equal(map.code, 0, map.stderr);
    const data = (JSON.parse(map.stdout) as Array<{ start: number; length: number; data: boolean; zero: boolean }>)
      .filter((e) => e.data).map((e) => [e.start, e.length]);
    // Allocation is per 1 MiB VHDX block.
    assert.deepEqual(data, [[0, MiB], [5 * MiB, MiB], [40 * MiB, 2 * MiB]]);

    const nm = await run('nbdinfo', ['--map', s.uri]);
    assert.equal(nm.code, 0, nm.stderr);
    const lines = nm.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    assert.deepEqual(lines[0]!.slice(0, 3), ['0', String(MiB), '0']);
    assert.deepEqual(lines[1]!.slice(0, 4), [String(MiB), String(4 * MiB), '3', 'hole,zero']);
    const nj = await run('nbdinfo', ['--json', s.uri]);
    assert.equal(nj.code, 0, nj.stderr);
    const ex = JSON.parse(nj.stdout).exports[0];
    assert.equal(ex['export-name'], 'a');
    assert.equal(ex['export-size'], SIZE);
    assert.deepEqual(ex.contexts, ['base:allocation']);
    assert.equal(ex.can_multi_conn, true);
    assert.equal(ex.block_size_minimum, 512);

    const out = join(tmp.dir, 'out.img');
    const cv = await run('qemu-img', ['convert', '-f', 'raw', s.uri, '-O', 'raw', out]);
    assert.equal(cv.code, 0, cv.stderr);
    assert.ok(readFileSync(out).equals(expected(SIZE, written)));
  } finally {
    await s.stop();
  }
});

test('qemu-io writes, write-zeroes and discards; our engine reads the result back', async () => {
  const path = join(tmp.dir, 'a.vhdx');
  const s = await server.serve(path, { exportName: 'w' });
  try {
    const io = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0x33 20M 64k', '-c', 'write -z -u 40M 1M', '-c', 'discard 41M 1M', '-c', 'write -z 5M 1M', '-c', 'flush', s.uri]);
    assert.equal(io.code, 0, io.stderr);
    assert.doesNotMatch(io.stdout + io.stderr, /error|fail/i);
    const rb = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', '-c', 'read -P 0 40M 2M', s.uri]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.doesNotMatch(rb.stdout, /Pattern verification failed/);
  } finally {
    await s.stop();
  }
  const d = await openDiskFile(path, { readOnly: true });
  try {
    const b = new Uint8Array(MiB);
    await d.read(b, 0);
    assert.ok(b.every((x) => x === 0x5a));
    const c = new Uint8Array(64 * 1024);
    await d.read(c, 20 * MiB);
    assert.ok(c.every((x) => x === 0x33));
    await d.read(b, 40 * MiB);
    assert.ok(b.every((x) => x === 0));
    await d.read(b, 41 * MiB);
    assert.ok(b.every((x) => x === 0));
    // write -z -u (may unmap) and discard free whole blocks; plain write -z (NO_HOLE) keeps them.
    const st = await d.blockStatus(40 * MiB, 2 * MiB);
    assert.ok(st.every((e) => e.zero && e.hole), JSON.stringify(st));
    await d.read(b, 5 * MiB);
    assert.ok(b.every((x) => x === 0));
    assert.deepEqual(await d.blockStatus(5 * MiB, MiB), [{ offset: 5 * MiB, length: MiB, hole: false, zero: false }]);
  } finally {
    await d.close();
  }
});

test('a read-only export refuses qemu-io writes and still reads', async () => {
  const s = await server.serve(join(tmp.dir, 'a.vhdx'), { exportName: 'ro', readOnly: true });
  try {
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', s.uri]);
    assert.ok(w.code !== 0 || /denied|not permitted|read-only|error/i.test(w.stdout + w.stderr), w.stdout + w.stderr);
    const r = await run('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x5a 0 4k', s.uri]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /verification failed/);
  } finally {
    await s.stop();
  }
});

test('a 4096-byte-sector VHDX (which qemu cannot open itself) converts through our export', async () => {
  const path = join(tmp.dir, 'k4.vhdx');
  const writes: Array<[number, Uint8Array]> = [[4096, pattern(12288, 4)], [3 * MiB, pattern(MiB, 5)]];
  await makeVhdx(path, { size: 8 * MiB, logicalSectorSize: 4096 }, writes);
  const s = await server.serve(path, { exportName: 'k4' });
  try {
    const nj = JSON.parse((await run('nbdinfo', ['--json', s.uri])).stdout).exports[0];
    assert.equal(nj.block_size_minimum, 4096);
    const out = join(tmp.dir, 'k4.img');
    const cv = await run('qemu-img', ['convert', '-f', 'raw', s.uri, '-O', 'raw', out]);
    assert.equal(cv.code, 0, cv.stderr);
    assert.ok(readFileSync(out).equals(expected(8 * MiB, writes)));
    const io = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 8192 4k', '-c', 'read -P 0x77 8192 4k', s.uri]);
    assert.equal(io.code, 0, io.stderr);
    assert.doesNotMatch(io.stdout, /verification failed/);
  } finally {
    await s.stop();
  }
});

test('nbdcopy over 4 connections writes a whole disk; it reads back equal and qemu-img check passes', async () => {
  const path = join(tmp.dir, 'copy.vhdx');
  await makeVhdx(path, { size: 32 * MiB });
  const src = join(tmp.dir, 'src.img');
  const data = Buffer.alloc(32 * MiB);
  for (let o = 0; o < data.length; o += MiB) if ((o / MiB) % 3 !== 1) data.set(pattern(MiB, o / MiB), o);
  writeFileSync(src, data);
  const s = await server.serve(path, { exportName: 'copy' });
  try {
    const up = await run('nbdcopy', ['-C', '4', src, s.uri]);
    assert.equal(up.code, 0, up.stderr);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, s.uri]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
  } finally {
    await s.stop();
  }
  const chk = await run('qemu-img', ['check', '-f', 'vhdx', path]);
  assert.equal(chk.code, 0, chk.stdout + chk.stderr);
});
