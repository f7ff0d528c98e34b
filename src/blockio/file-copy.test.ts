// File-to-file copies (file-copy.ts) on real files: copy_file_range through the addon (required
// under CI=true) and the buffer fallback (VMHOST_NO_NATIVE_COPY=1, or a file without a
// descriptor) copy the same bytes, zero-fill past the source's end; the zero scan finds the
// granules holding data, merged, with a short last granule. Into a file with an O_DIRECT twin
// (a durable conversion's destination) aligned copies go direct, unaligned ones do not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, writeSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile, MemoryFile, copySlice, nonZeroRuns, nativeCopyStatus, holeMapStatus, openDirect } from './index.ts';
import { loadNativeAddon } from './file-map.ts';

const KiB = 1024;
const dir = mkdtempSync(join(tmpdir(), 'file-copy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 200 KiB: data at [0, 4 KiB), zeros, one non-zero byte at the end of the second 64 KiB granule, zeros, data at [192 KiB, 200 KiB). */
const content = (() => {
  const b = new Uint8Array(200 * KiB);
  b.fill(7, 0, 4 * KiB);
  b[128 * KiB - 1] = 1;
  b.fill(9, 192 * KiB);
  return b;
})();
function sourceFile(name: string): string {
  const path = join(dir, name);
  const fd = openSync(path, 'wx+');
  writeSync(fd, content);
  closeSync(fd);
  return path;
}

function both(name: string, fn: (tag: string) => Promise<void>): void {
  test(`${name} (copy_file_range)`, async (t) => {
    if (!nativeCopyStatus()) {
      if (process.env.CI === 'true') assert.fail(`native addon not loaded: ${holeMapStatus().reason ?? ''}`);
      t.skip('native addon not loaded');
      return;
    }
    await fn('n');
  });
  test(`${name} (buffer fallback)`, async () => {
    process.env.VMHOST_NO_NATIVE_COPY = '1';
    try {
      await fn('f');
    } finally {
      delete process.env.VMHOST_NO_NATIVE_COPY;
    }
  });
}

both('copySlice copies a range and writes zeros for what lies past the source', async (tag) => {
  const src = await NodeFile.open(sourceFile(`src-${tag}`), { readOnly: true });
  const dstPath = join(dir, `dst-${tag}`);
  const dst = await NodeFile.open(dstPath, { create: true });
  try {
    await dst.write(new Uint8Array(300 * KiB).fill(0xee), 0);
    await copySlice({ file: src, offset: 100 * KiB }, 150 * KiB, dst, 10 * KiB);
  } finally {
    await src.close();
    await dst.close();
  }
  const want = new Uint8Array(300 * KiB).fill(0xee);
  want.set(content.subarray(100 * KiB), 10 * KiB);
  want.fill(0, 110 * KiB, 160 * KiB);
  assert.ok(Buffer.from(readFileSync(dstPath)).equals(Buffer.from(want)));
});

test('copySlice between files without a descriptor goes through a buffer', async () => {
  const src = new MemoryFile('m');
  await src.write(content, 0);
  const dst = new MemoryFile('n');
  await copySlice({ file: src, offset: 0 }, content.length, dst, 4096);
  const got = new Uint8Array(content.length);
  await dst.read(got, 4096);
  assert.ok(Buffer.from(got).equals(Buffer.from(content)));
});

both('nonZeroRuns finds the data granules (merged, a short last one); undefined without the addon or a descriptor', async (tag) => {
  const f = await NodeFile.open(sourceFile(`scan-${tag}`), { readOnly: true });
  try {
    const runs = await nonZeroRuns(f, 0, content.length, 64 * KiB);
    if (tag === 'f') assert.equal(runs, undefined);
    else {
      assert.deepEqual(runs, [[0, 128 * KiB], [192 * KiB, 200 * KiB]]);
      // A window: offsets stay absolute; past the end of the file reads as zeros.
      assert.deepEqual(await nonZeroRuns(f, 64 * KiB, 256 * KiB, 32 * KiB), [[96 * KiB, 128 * KiB], [192 * KiB, 224 * KiB]]);
    }
  } finally {
    await f.close();
  }
  assert.equal(await nonZeroRuns(new MemoryFile('m'), 0, 4096, 4096), undefined);
});

test('copySlice into a file with an O_DIRECT twin: aligned ranges go direct, the rest through the page cache; same bytes', async (t) => {
  if (!nativeCopyStatus()) {
    if (process.env.CI === 'true') assert.fail(`native addon not loaded: ${holeMapStatus().reason ?? ''}`);
    t.skip('native addon not loaded');
    return;
  }
  const src = await NodeFile.open(sourceFile('src-direct'), { readOnly: true });
  const dstPath = join(dir, 'dst-direct');
  const dst = await NodeFile.open(dstPath, { create: true });
  const direct = await openDirect(dst);
  assert.ok(direct, 'the temp dir takes O_DIRECT');
  try {
    await dst.truncate(256 * KiB);
    const twin = Object.assign(Object.create(dst) as NodeFile, { directFd: direct.fd });
    // Aligned, past the source's end (zeros written), then unaligned (the page cache).
    await copySlice({ file: src, offset: 100 * KiB }, 128 * KiB, twin, 64 * KiB);
    await copySlice({ file: src, offset: 0 }, 5000, twin, 512);
    assert.throws(() => loadNativeAddon()!.copyDirect(src.fd, 0, direct.fd, 512, 4096), TypeError);
  } finally {
    await direct.close();
    await src.close();
    await dst.close();
  }
  const want = new Uint8Array(256 * KiB);
  want.set(content.subarray(100 * KiB), 64 * KiB);
  want.set(content.subarray(0, 5000), 512);
  assert.ok(Buffer.from(readFileSync(dstPath)).equals(Buffer.from(want)));
});
