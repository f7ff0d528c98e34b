// The hole map on a real sparse file: the addon (SEEK_DATA/SEEK_HOLE) finds the written
// ranges and the holes between them, and the first data byte of a range; VMHOST_NO_HOLE_MAP=1
// forces the fallback, which calls everything data. Under CI=true the addon must have loaded
// (scripts/build.sh builds it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, writeSync, ftruncateSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile, MemoryFile, holeMapStatus, mapFileData, firstDataFd } from './index.ts';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'file-map-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 16 MiB sparse file with data at [1 MiB, +64 KiB) and [8 MiB, +1 MiB). */
function sparseFile(): string {
  const path = join(dir, `sparse-${Math.random().toString(16).slice(2)}.img`);
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, 16 * MiB);
    writeSync(fd, Buffer.alloc(64 * 1024, 1), 0, 64 * 1024, MiB);
    writeSync(fd, Buffer.alloc(MiB, 2), 0, MiB, 8 * MiB);
  } finally {
    closeSync(fd);
  }
  return path;
}

test('the addon maps the data and holes of a sparse file (range clipped, past EOF a hole)', async (t) => {
  const status = holeMapStatus();
  if (!status.native) {
    if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${status.reason}`);
    t.skip(`hole-map addon not loaded: ${status.reason}`);
    return;
  }
  const f = await NodeFile.open(sparseFile(), { readOnly: true });
  try {
    assert.deepEqual(await f.mapData(0, 16 * MiB), [
      { offset: 0, length: MiB, data: false },
      { offset: MiB, length: 64 * 1024, data: true },
      { offset: MiB + 64 * 1024, length: 7 * MiB - 64 * 1024, data: false },
      { offset: 8 * MiB, length: MiB, data: true },
      { offset: 9 * MiB, length: 7 * MiB, data: false },
    ]);
    // A window inside a data run and one that crosses the end of the file.
    assert.deepEqual(await f.mapData(8 * MiB + 4096, 8192), [{ offset: 8 * MiB + 4096, length: 8192, data: true }]);
    assert.deepEqual(await f.mapData(15 * MiB, 2 * MiB), [{ offset: 15 * MiB, length: 2 * MiB, data: false }]);
    assert.deepEqual(await f.mapData(0, 0), []);
    // The first data byte of a range (one SEEK_DATA), -1 when it is all hole.
    assert.equal(firstDataFd(f.fd, 0, 16 * MiB), MiB);
    assert.equal(firstDataFd(f.fd, MiB + 4096, 4096), MiB + 4096);
    assert.equal(firstDataFd(f.fd, 2 * MiB, 6 * MiB + 1), 8 * MiB);
    assert.equal(firstDataFd(f.fd, 2 * MiB, 6 * MiB), -1);
    assert.equal(firstDataFd(f.fd, 15 * MiB, 2 * MiB), -1);
    assert.equal(firstDataFd(f.fd, MiB, 0), -1);
  } finally {
    await f.close();
  }
});

test('VMHOST_NO_HOLE_MAP=1 forces the fallback: the whole range is data', async () => {
  const f = await NodeFile.open(sparseFile(), { readOnly: true });
  process.env.VMHOST_NO_HOLE_MAP = '1';
  try {
    assert.deepEqual(holeMapStatus(), { native: false, reason: 'VMHOST_NO_HOLE_MAP=1' });
    assert.deepEqual(await f.mapData(0, 16 * MiB), [{ offset: 0, length: 16 * MiB, data: true }]);
    assert.equal(firstDataFd(f.fd, 2 * MiB, 4096), 2 * MiB);
  } finally {
    delete process.env.VMHOST_NO_HOLE_MAP;
    await f.close();
  }
});

test('a file without mapData (in memory) is all data', async () => {
  const m = new MemoryFile();
  assert.deepEqual(await mapFileData(m, 4096, MiB), [{ offset: 4096, length: MiB, data: true }]);
});
