// Reads of unallocated VHDX blocks (from the cached BAT) and of raw file holes (SEEK_DATA on the
// event loop) answered at once (Pipeline.readZeroNow): no promise, an OFFSET_HOLE chunk, still
// counted by metering; a stage without the hooks, a QoS limit or a block that gets written
// sends them the ordinary way again. A probe stage with both hooks tells which way each read went.
// A raw read of data maps its range once: readSparse reads by the answer readsZeroNow found; the
// hole a map found is remembered (one SEEK_DATA per hole, not per read) until a write touches it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, ftruncateSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { holeMapStatus } from '../blockio/index.ts';
import { BlockServer, RawDisk, type Stage, type IoRequest } from './index.ts';
import { HostFile } from './host-file.ts';
import { tempDir, makeVhdx, pattern } from './test-support.ts';
import { NbdTestClient } from './nbd/test-client.ts';

const MiB = 1 << 20;
const tmp = tempDir('nbd-zero-reads-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

/** Counts reads that went through `handle` and reads that skipped it. */
function probe(name: string, passes = true): Stage & { handled: number; skipped: number } {
  return {
    name, handled: 0, skipped: 0,
    handle(req: IoRequest, next) {
      if (req.kind === 'read') this.handled++;
      return next(req);
    },
    passesNow: () => passes,
    passedNow() {
      this.skipped++;
    },
  };
}

/** Serves `path` as `name` with a probe stage last and a connected client, for `body`. */
async function withExport(path: string, name: string, body: (c: NbdTestClient, p: ReturnType<typeof probe>) => Promise<void>): Promise<void> {
  const s = await server.serve(path, { exportName: name });
  const c = await NbdTestClient.connect(s.socketPath, name);
  try {
    const p = probe('probe');
    server.addStage(name, p);
    await body(c, p);
  } finally {
    await c.disconnect();
    await s.stop();
  }
}

test('unallocated reads skip the stage chain, are counted, and take the ordinary path when a stage or a limit needs it', async () => {
  const path = join(tmp.dir, 'z.vhdx');
  // Block 0 (of 32 MiB) holds data, block 1 is unallocated.
  await makeVhdx(path, { size: 64 * MiB, blockSize: 32 * MiB }, [[0, pattern(MiB, 7)]]);
  await withExport(path, 'z', async (c, p) => {
    const zeros = Buffer.alloc(4096);
    // The first read loads the BAT page (the ordinary path); 32 pipelined zero reads after it
    // are answered from the cached page, the data read is not.
    assert.deepEqual(await c.read(32 * MiB, 4096), zeros);
    assert.deepEqual({ handled: p.handled, skipped: p.skipped }, { handled: 1, skipped: 0 });
    const reads = await Promise.all(Array.from({ length: 32 }, (_, i) => c.read(32 * MiB + i * 4096, 4096)));
    for (const r of reads) assert.deepEqual(r, zeros);
    assert.deepEqual(await c.read(0, 4096), Buffer.from(pattern(MiB, 7).subarray(0, 4096)));
    assert.deepEqual({ handled: p.handled, skipped: p.skipped }, { handled: 2, skipped: 32 }, 'zero reads skipped the chain, the data read did not');
    assert.equal(c.holeChunks, 33);
    const m = server.counters('z');
    assert.equal(m.operations.read, 34, 'metering counts the skipped reads');
    assert.equal(m.bytesRead, 34 * 4096);
    assert.equal(m.inFlight, 0);

    // A QoS limit paces every read: the zero reads go through handle().
    server.setQos('z', { maximumIops: 100_000 });
    assert.deepEqual(await c.read(40 * MiB, 4096), zeros);
    assert.equal(p.handled, 3);
    server.setQos('z', { maximumIops: 0 });
    assert.deepEqual(await c.read(40 * MiB, 4096), zeros);
    assert.equal(p.skipped, 33);

    // A stage that does not let reads skip it (no hooks, like a mirror) sees them all.
    const plain: Stage & { reads: number } = { name: 'plain', reads: 0, handle(req, next) { if (req.kind === 'read') this.reads++; return next(req); } };
    server.addStage('z', plain);
    assert.deepEqual(await c.read(40 * MiB, 4096), zeros);
    assert.equal(plain.reads, 1);
    assert.equal(p.handled, 4);
    server.pipeline('z').remove('plain');

    // Once written, the block is data: the read goes to the disk.
    await c.write(48 * MiB, pattern(4096, 9));
    assert.deepEqual(await c.read(48 * MiB, 4096), Buffer.from(pattern(4096, 9)));
    assert.equal(p.handled, 5);
    assert.equal(server.counters('z').operations.read, 38);
  });
});

test('holes of a raw export are answered at once; its data, and a hole once written, are read', async (t) => {
  if (!holeMapStatus().native) {
    if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${holeMapStatus().reason ?? ''}`);
    t.skip('hole-map addon not loaded');
    return;
  }
  const path = join(tmp.dir, 'r.img');
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, 16 * MiB);
    writeSync(fd, pattern(MiB, 3), 0, MiB, 4 * MiB);
  } finally {
    closeSync(fd);
  }
  await withExport(path, 'r', async (c, p) => {
    const zeros = Buffer.alloc(8192);
    const reads = await Promise.all(Array.from({ length: 8 }, (_, i) => c.read(8 * MiB + i * 8192, 8192)));
    for (const r of reads) assert.deepEqual(r, zeros);
    assert.deepEqual(await c.read(4 * MiB, 8192), Buffer.from(pattern(MiB, 3).subarray(0, 8192)));
    assert.deepEqual({ handled: p.handled, skipped: p.skipped }, { handled: 1, skipped: 8 });
    await c.write(12 * MiB, pattern(8192, 4));
    assert.deepEqual(await c.read(12 * MiB, 8192), Buffer.from(pattern(8192, 4)));
    assert.equal(p.handled, 2);
    assert.equal(server.counters('r').operations.read, 10);
  });
});

test('a raw read of data maps its range once (readsZeroNow\'s answer is the one readSparse reads by), holes and other ranges as before', async (t) => {
  if (!holeMapStatus().native) {
    if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${holeMapStatus().reason ?? ''}`);
    t.skip('hole-map addon not loaded');
    return;
  }
  const path = join(tmp.dir, 'maps.img');
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, 16 * MiB);
    writeSync(fd, pattern(2 * MiB, 5), 0, 2 * MiB, 4 * MiB);
  } finally {
    closeSync(fd);
  }
  const file = HostFile.open(path);
  let maps = 0;
  const mapData = file.mapData.bind(file), firstDataNow = file.firstDataNow.bind(file);
  file.mapData = (o, l) => { maps++; return mapData(o, l); };
  file.firstDataNow = (o, l) => { maps++; return firstDataNow(o, l); };
  const disk = await RawDisk.open(file);
  const sparse = async (offset: number, length: number) => {
    const buf = new Uint8Array(length);
    const got = await disk.readSparse(offset, length, () => buf);
    return { got, buf };
  };
  try {
    // Data: asked once at once, read without a second map.
    assert.equal(disk.readsZeroNow(4 * MiB, 8192), false);
    let r = await sparse(4 * MiB, 8192);
    assert.equal(r.got, 'data');
    assert.deepEqual(r.buf, pattern(2 * MiB, 5).subarray(0, 8192));
    assert.equal(maps, 1);
    // A hole is answered at once.
    assert.equal(disk.readsZeroNow(8 * MiB, 8192), true);
    assert.equal(maps, 2);
    // A range readsZeroNow was not asked about (or was, about another range) is mapped as before,
    // except inside the hole the last map found (to the end of the file here): that is remembered.
    assert.equal(disk.readsZeroNow(5 * MiB, 4096), false);
    assert.equal((await sparse(9 * MiB, 4096)).got, 'zero');
    assert.equal(maps, 3);
    assert.equal((await sparse(5 * MiB, 4096)).got, 'data');
    assert.equal((await sparse(3 * MiB, 4096)).got, 'zero');
    assert.equal(maps, 5);
    // Data seen, then trimmed before the read: read as data, and its bytes are the zeros.
    assert.equal(disk.readsZeroNow(6 * MiB - 8192, 8192), false);
    await disk.trim(6 * MiB - 8192, 8192);
    r = await sparse(6 * MiB - 8192, 8192);
    assert.equal(r.got, 'data');
    assert.deepEqual(r.buf, new Uint8Array(8192));
  } finally {
    await disk.close();
  }
});

test('a raw disk remembers the hole its last SEEK_DATA found: reads inside ask the file no more, a write into it (or a resize) forgets it, reads over hole and data return the file\'s bytes', async (t) => {
  if (!holeMapStatus().native) {
    if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${holeMapStatus().reason ?? ''}`);
    t.skip('hole-map addon not loaded');
    return;
  }
  const path = join(tmp.dir, 'remember.img');
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, 16 * MiB);
    writeSync(fd, pattern(MiB, 11), 0, MiB, 8 * MiB);
  } finally {
    closeSync(fd);
  }
  const file = HostFile.open(path);
  let maps = 0;
  const firstDataNow = file.firstDataNow.bind(file);
  file.firstDataNow = (o, l) => { maps++; return firstDataNow(o, l); };
  const disk = await RawDisk.open(file);
  const expect = Buffer.alloc(16 * MiB);
  Buffer.from(pattern(MiB, 11)).copy(expect, 8 * MiB);
  const readBack = async (offset: number, length: number) => {
    const buf = new Uint8Array(length);
    const got = await disk.readSparse(offset, length, () => buf);
    return got === 'zero' ? Buffer.alloc(length) : Buffer.from(buf);
  };
  try {
    // The hole before the data, read in order 4 KiB at a time: one map for all of them.
    for (let o = 0; o < 8 * MiB; o += 64 * 1024) assert.equal(disk.readsZeroNow(o, 4096), true);
    assert.equal(maps, 1);
    // A read that ends in the data is not answered by the hole (nor is one that starts in it).
    assert.equal(disk.readsZeroNow(8 * MiB - 4096, 8192), false);
    assert.deepEqual(await readBack(8 * MiB - 4096, 8192), expect.subarray(8 * MiB - 4096, 8 * MiB + 4096));
    assert.deepEqual(await readBack(9 * MiB - 4096, 8192), expect.subarray(9 * MiB - 4096, 9 * MiB + 4096));
    // A write into the remembered hole forgets it: the bytes read back are the written ones.
    assert.equal(disk.readsZeroNow(2 * MiB, 4096), true);
    const before = maps;
    await disk.write(pattern(4096, 12), 3 * MiB);
    Buffer.from(pattern(4096, 12)).copy(expect, 3 * MiB);
    assert.equal(disk.readsZeroNow(3 * MiB, 4096), false);
    assert.ok(maps > before, 'the write made the disk ask the file again');
    assert.deepEqual(await readBack(3 * MiB, 4096), expect.subarray(3 * MiB, 3 * MiB + 4096));
    assert.deepEqual(await readBack(3 * MiB - 4096, 12288), expect.subarray(3 * MiB - 4096, 3 * MiB + 8192));
    // The hole after the data, to the end of the file; a resize forgets it.
    assert.equal(disk.readsZeroNow(12 * MiB, 4096), true);
    const atResize = maps;
    await disk.resize(8 * MiB);
    await disk.resize(16 * MiB);
    assert.equal(disk.readsZeroNow(12 * MiB, 4096), true);
    assert.equal(maps, atResize + 1);
    expect.fill(0, 8 * MiB);
    // Every byte of the disk, read in 1 MiB pieces across holes and data, is the file's.
    for (let o = 0; o < 16 * MiB; o += MiB) assert.deepEqual(await readBack(o, MiB), expect.subarray(o, o + MiB), `at ${o}`);
  } finally {
    await disk.close();
  }
});
