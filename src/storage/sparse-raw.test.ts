// Holes end to end (issue 17): a sparse raw export reports its file holes to BLOCK_STATUS
// (qemu-img map over NBD shows them), reads of holes and of unallocated VHDX blocks are
// answered by OFFSET_HOLE chunks, and Convert-VHD of a sparse raw reads only its data yet
// stays `qemu-img compare`-equal (with the fallback too, which reads everything); NBD TRIM
// on a raw export punches a hole (st_blocks drops; the fallback writes zeros).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, ftruncateSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { holeMapStatus, NodeFile } from '../blockio/index.ts';
import { convertDisk } from '../vhd/index.ts';
import { BlockServer, openDiskFile } from './index.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { CMD_READ, CMD_FLAG_DF } from './nbd/protocol.ts';
import { tempDir, run, pattern, makeVhdx } from './test-support.ts';

const MiB = 1 << 20;
const SIZE = 64 * MiB;
const tmp = tempDir('sparse-raw-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

/** Data at [1 MiB, +64 KiB) and [40 MiB, +2 MiB); the rest of the 64 MiB file is a hole. */
const DATA: Array<[number, Uint8Array]> = [[MiB, pattern(64 * 1024, 1)], [40 * MiB, pattern(2 * MiB, 2)]];
function sparseRaw(name: string): string {
  const path = join(tmp.dir, name);
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, SIZE);
    for (const [o, b] of DATA) writeSync(fd, b, 0, b.length, o);
  } finally {
    closeSync(fd);
  }
  return path;
}

function needAddon(t: { skip(msg: string): void }): boolean {
  const s = holeMapStatus();
  if (s.native) return true;
  if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${s.reason}`);
  t.skip(`hole-map addon not loaded: ${s.reason}`);
  return false;
}

test('qemu-img map over NBD shows the holes of a sparse raw export; hole reads come back as OFFSET_HOLE', async (t) => {
  if (!needAddon(t)) return;
  const path = sparseRaw('map.img');
  const s = await server.serve(path, { exportName: 'raw' });
  try {
    const map = await run('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri]);
    assert.equal(map.code, 0, map.stderr);
    const data = (JSON.parse(map.stdout) as Array<{ start: number; length: number; data: boolean }>)
      .filter((e) => e.data).map((e) => [e.start, e.length]);
    assert.deepEqual(data, [[MiB, 64 * 1024], [40 * MiB, 2 * MiB]]);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', s.uri, path]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);

    const c = await NbdTestClient.connect(s.socketPath, 'raw');
    try {
      assert.ok((await c.read(8 * MiB, 4096)).every((x) => x === 0));
      assert.equal(c.holeChunks, 1);
      // DF (don't fragment) gets one data chunk of zeros instead of a hole chunk.
      const df = (await c.raw(CMD_READ, CMD_FLAG_DF, 8 * MiB, 4096)) as { data: Buffer };
      assert.ok(df.data.length === 4096 && df.data.every((x) => x === 0));
      assert.equal(c.holeChunks, 1);
      assert.ok((await c.read(MiB, 64 * 1024)).equals(DATA[0]![1]));
      // A read that covers data and hole comes back as data.
      const mixed = await c.read(40 * MiB - 4096, 8192);
      assert.ok(mixed.subarray(0, 4096).every((x) => x === 0));
      assert.ok(mixed.subarray(4096).equals(DATA[1]![1].subarray(0, 4096)));
      assert.equal(c.holeChunks, 1);
    } finally {
      await c.disconnect();
    }
  } finally {
    await s.stop();
  }
});

test('reads of unallocated VHDX blocks are OFFSET_HOLE chunks; allocated ones are data', async () => {
  const path = join(tmp.dir, 'u.vhdx');
  await makeVhdx(path, { size: SIZE }, [[3 * MiB, pattern(MiB, 3)]]);
  const s = await server.serve(path, { exportName: 'v' });
  try {
    const c = await NbdTestClient.connect(s.socketPath, 'v');
    try {
      const reads = await Promise.all([0, 4096, 10 * MiB, 63 * MiB].map((o) => c.read(o, 4096)));
      assert.ok(reads.every((b) => b.every((x) => x === 0)));
      assert.equal(c.holeChunks, 4);
      assert.ok((await c.read(3 * MiB, MiB)).equals(Buffer.from(pattern(MiB, 3))));
      assert.equal(c.holeChunks, 4);
    } finally {
      await c.disconnect();
    }
    // qemu's client (structured replies, hole chunks) and the simple-reply path agree with the file.
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', s.uri, path]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    const out = join(tmp.dir, 'u-copy.img');
    const cp = await run('nbdcopy', ['--request-size=4096', s.uri, out]);
    assert.equal(cp.code, 0, cp.stderr);
    const cmp2 = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', out, path]);
    assert.equal(cmp2.code, 0, cmp2.stdout + cmp2.stderr);
  } finally {
    await s.stop();
  }
});

for (const fallback of [false, true]) {
  test(`Convert-VHD of a sparse raw to a dynamic VHDX is qemu-img compare-equal (${fallback ? 'fallback: reads everything' : 'addon: reads only data'})`, async (t) => {
    if (!fallback && !needAddon(t)) return;
    const src = sparseRaw(`conv-${fallback}.img`);
    const dst = join(tmp.dir, `conv-${fallback}.vhdx`);
    if (fallback) process.env.VMHOST_NO_HOLE_MAP = '1';
    const d = await openDiskFile(src, { readOnly: true });
    try {
      const r = await convertDisk(d, await NodeFile.open(dst, { create: true }), { format: 'VHDX', type: 'Dynamic', blockSize: MiB });
      assert.equal(r.bytesRead, fallback ? SIZE : 2 * MiB + 64 * 1024, 'bytes read from the source');
    } finally {
      delete process.env.VMHOST_NO_HOLE_MAP;
      await d.close();
    }
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', src, dst]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    // Zero granules are never written either way: only the blocks holding data are allocated.
    const out = await openDiskFile(dst, { readOnly: true });
    try {
      const data = (await out.blockStatus(0, SIZE)).filter((e) => !e.hole).map((e) => [e.offset, e.length]);
      assert.deepEqual(data, [[MiB, MiB], [40 * MiB, 2 * MiB]]);
    } finally {
      await out.close();
    }
  });
}

for (const fallback of [false, true]) {
  test(`NBD TRIM on a raw export ${fallback ? 'writes zeros (fallback: VMHOST_NO_HOLE_MAP=1)' : 'punches a hole: the file\'s allocated blocks drop'}`, async (t) => {
    if (!fallback && !needAddon(t)) return;
    const path = join(tmp.dir, `trim-${fallback}.img`);
    const fd = openSync(path, 'wx+');
    try {
      writeSync(fd, pattern(8 * MiB, 7));
    } finally {
      closeSync(fd);
    }
    const before = statSync(path).blocks;
    const s = await server.serve(path, { exportName: `trim-${fallback}` });
    if (fallback) process.env.VMHOST_NO_HOLE_MAP = '1';
    try {
      const c = await NbdTestClient.connect(s.socketPath, `trim-${fallback}`);
      try {
        await c.trim(2 * MiB, 4 * MiB);
        await c.flush();
        assert.ok((await c.read(2 * MiB, 4 * MiB)).every((x) => x === 0), 'the trimmed range reads as zeros');
        assert.ok((await c.read(6 * MiB, MiB)).equals(Buffer.from(pattern(8 * MiB, 7).subarray(6 * MiB, 7 * MiB))), 'the rest is kept');
      } finally {
        await c.disconnect();
      }
    } finally {
      delete process.env.VMHOST_NO_HOLE_MAP;
      await s.stop();
    }
    const st = statSync(path);
    assert.equal(st.size, 8 * MiB, 'the size is unchanged');
    // st_blocks counts 512-byte units: the 4 MiB hole frees 8192 of them (the fallback none).
    if (fallback) assert.equal(st.blocks, before);
    else assert.equal(before - st.blocks, (4 * MiB) / 512);
  });
}
