// Conversion's fast path on real files (issue 17): chunks a raw image or a fully present VHDX
// block stores in one piece are scanned for zeros and copied by copy_file_range (the addon,
// required under CI=true), through a differencing leaf to its parent's blocks too; the rest (a
// leaf's partial block) is read through the engine. Each test runs with the addon and with
// VMHOST_NO_NATIVE_COPY=1: the same bytes are written (zero granules skipped either way) and
// every output equals its source (qemu-img compare; the engine's read for a chain).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, ftruncateSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostFile } from './host-file.ts';
import { holeMapStatus, nativeCopyStatus } from '../blockio/index.ts';
import { convertDisk, type ConvertOptions } from '../vhd/index.ts';
import { openDiskFile } from './open-disk.ts';
import { createDifferencingFile } from './disk-create.ts';
import { tempDir, run, pattern } from './test-support.ts';

const MiB = 1 << 20;
const SIZE = 16 * MiB;
const tmp = tempDir('convert-copy-');
after(() => tmp.cleanup());

/** Data at [0, 1 MiB), [2 MiB, +64 KiB), [8 MiB + 4 KiB, +8 KiB); written zeros at [4 MiB, 6 MiB); the rest a hole. */
function rawSource(path: string): void {
  const fd = openSync(path, 'wx+');
  try {
    ftruncateSync(fd, SIZE);
    for (const [o, b] of [[0, pattern(MiB, 1)], [2 * MiB, pattern(64 * 1024, 2)], [4 * MiB, new Uint8Array(2 * MiB)], [8 * MiB + 4096, pattern(8192, 3)]] as const) {
      writeSync(fd, b, 0, b.length, o);
    }
  } finally {
    closeSync(fd);
  }
}

async function convert(src: string, dst: string, opts: ConvertOptions): Promise<number> {
  const d = await openDiskFile(src, { readOnly: true });
  try {
    return (await convertDisk(d, HostFile.create(dst), opts)).bytesWritten;
  } finally {
    await d.close();
  }
}

async function compare(a: string, fa: string, b: string, fb: string): Promise<void> {
  const r = await run('qemu-img', ['compare', '-f', fa, '-F', fb, a, b]);
  assert.equal(r.code, 0, `${a} vs ${b}: ${r.stdout}${r.stderr}`);
}

for (const native of [true, false]) {
  const tag = native ? 'copy_file_range' : 'fallback: through buffers';
  test(`raw → dynamic VHDX → differencing child → raw keeps every byte and writes only data granules (${tag})`, async (t) => {
    if (native && !nativeCopyStatus()) {
      if (process.env.CI === 'true') assert.fail(`native addon not loaded: ${holeMapStatus().reason ?? ''}`);
      t.skip('native addon not loaded');
      return;
    }
    if (!native) process.env.VMHOST_NO_NATIVE_COPY = '1';
    try {
      const p = (n: string) => join(tmp.dir, `${native ? 'n' : 'f'}-${n}`);
      rawSource(p('src.img'));
      const written = await convert(p('src.img'), p('a.vhdx'), { format: 'VHDX', type: 'Dynamic', blockSize: MiB });
      // 1 MiB + one 64 KiB granule + the 8 KiB (the hole map bounds it); the written zeros are skipped.
      assert.equal(written, MiB + 64 * 1024 + 8192);
      await compare(p('src.img'), 'raw', p('a.vhdx'), 'vhdx');
      const a = await openDiskFile(p('a.vhdx'), { readOnly: true });
      try {
        assert.deepEqual((await a.blockStatus(0, SIZE)).filter((e) => !e.hole).map((e) => [e.offset, e.length]), [[0, MiB], [2 * MiB, MiB], [8 * MiB, MiB]]);
      } finally {
        await a.close();
      }

      // A child with a write inside the parent's block at 2 MiB (partially present: read through
      // the engine) and one into a new block (fully present in the child: copied).
      await createDifferencingFile(p('b.vhdx'), p('a.vhdx'), { format: 'VHDX', blockSize: MiB });
      const b = await openDiskFile(p('b.vhdx'));
      try {
        await b.write(pattern(4096, 4), 2 * MiB + 512 * 1024);
        await b.write(pattern(MiB, 5), 12 * MiB);
      } finally {
        await b.close();
      }
      assert.equal(await convert(p('b.vhdx'), p('c.img'), { format: 'RAW', type: 'Fixed', chunkSize: 256 * 1024, depth: 3 }), 2 * MiB + 3 * 64 * 1024);
      // qemu-img cannot open a differencing VHDX: the engine reads the chain instead.
      const chain = await openDiskFile(p('b.vhdx'), { readOnly: true });
      const want = new Uint8Array(SIZE);
      try {
        await chain.read(want, 0);
      } finally {
        await chain.close();
      }
      assert.ok(readFileSync(p('c.img')).equals(want), 'the raw copy of the chain');
      // Fully present source blocks into a new VHDX: file-to-file at both ends.
      assert.equal(await convert(p('a.vhdx'), p('d.vhdx'), { format: 'VHDX', type: 'Fixed', blockSize: 2 * MiB }), MiB + 2 * 64 * 1024);
      await compare(p('src.img'), 'raw', p('d.vhdx'), 'vhdx');
    } finally {
      delete process.env.VMHOST_NO_NATIVE_COPY;
    }
  });
}

test('a 32 MiB-block VHDX to raw and back: every byte kept, zero granules skipped, granules counted from where each copy starts', async (t) => {
  if (!nativeCopyStatus()) {
    if (process.env.CI === 'true') assert.fail(`native addon not loaded: ${holeMapStatus().reason ?? ''}`);
    t.skip('native addon not loaded');
    return;
  }
  const p = (n: string) => join(tmp.dir, `span-${n}`);
  // 40 MiB raw: 12 MiB of data with a zero granule inside, 10 MiB of written zeros, and a MiB
  // of data not aligned to a granule in the second block.
  const size = 40 * MiB;
  const fd = openSync(p('src.img'), 'wx+');
  try {
    ftruncateSync(fd, size);
    const data = pattern(12 * MiB, 6);
    data.fill(0, 3 * MiB, 3 * MiB + 64 * 1024);
    for (const [o, b] of [[2 * MiB, data], [14 * MiB, new Uint8Array(10 * MiB)], [33 * MiB - 4096, pattern(MiB, 7)]] as const) {
      writeSync(fd, b, 0, b.length, o);
    }
  } finally {
    closeSync(fd);
  }
  // The data less its zero granule, and the last MiB: from the raw file, granules counted from
  // where its data starts (16); from the VHDX block, from the block's start (17, not aligned).
  const data = 12 * MiB - 64 * 1024;
  assert.equal(await convert(p('src.img'), p('a.vhdx'), { format: 'VHDX', type: 'Dynamic', blockSize: 32 * MiB }), data + MiB);
  assert.equal(await convert(p('a.vhdx'), p('b.img'), { format: 'RAW', type: 'Fixed', durable: false }), data + MiB + 64 * 1024);
  await compare(p('src.img'), 'raw', p('b.img'), 'raw');
});
