// The real-world samples in ../shared/testdata/vhd (written by Hyper-V, QEMU 1.6, Disk2VHD):
// what the README says a correct reader sees. Decompressed into a temp dir, never copied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../blockio/node-file.ts';
import { openVhdx } from './index.ts';
import { isVmhostError } from '../common/errors.ts';
import { MiB, GiB } from './format.ts';
import type { VhdxDisk } from './disk.ts';
import { samplesDir, skipUnlessCi } from './shared-samples.ts';

const SAMPLES = samplesDir('iotest-dynamic-1G.vhdx.bz2');
const skip = skipUnlessCi(SAMPLES);

function unpack(name: string): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vhdx-s-'));
  const out = join(dir, name.replace(/\.bz2$/, ''));
  writeFileSync(out, execFileSync('bunzip2', ['-c', join(SAMPLES!, name)], { maxBuffer: 1 << 30 }));
  return { path: out, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function expectFill(d: VhdxDisk, from: number, to: number, byte: number): Promise<void> {
  const chunk = Buffer.alloc(4 * MiB);
  const want = Buffer.alloc(4 * MiB, byte);
  for (let o = from; o < to; o += chunk.length) {
    const n = Math.min(chunk.length, to - o);
    const b = chunk.subarray(0, n);
    await d.read(b, o);
    if (!b.equals(want.subarray(0, n))) {
      const bad = b.findIndex((v) => v !== byte);
      assert.fail(`byte at ${o + bad} is ${b[bad]}, expected ${byte}`);
    }
  }
}

test('Hyper-V dynamic 1G sample: contents, then a write keeps other regions', { skip }, async () => {
  const s = unpack('iotest-dynamic-1G.vhdx.bz2');
  try {
    let d = await openVhdx(await NodeFile.open(s.path, { readOnly: true }), { readOnly: true });
    assert.equal(d.virtualSize, GiB);
    assert.equal(d.blockSize, 32 * MiB);
    assert.equal(d.logicalSectorSize, 512);
    assert.equal(d.physicalSectorSize, 4096);
    await expectFill(d, 0, 33 * MiB, 0xa5);
    await expectFill(d, 33 * MiB, 66 * MiB, 0x96);
    await expectFill(d, 66 * MiB, GiB, 0);
    await d.close();
    d = await openVhdx(await NodeFile.open(s.path));
    await d.write(new Uint8Array(58 * MiB).fill(0xc3), 99 * MiB);
    await d.close();
    d = await openVhdx(await NodeFile.open(s.path, { readOnly: true }));
    await expectFill(d, 0, 33 * MiB, 0xa5);
    await expectFill(d, 33 * MiB, 66 * MiB, 0x96);
    await expectFill(d, 66 * MiB, 99 * MiB, 0);
    await expectFill(d, 99 * MiB, 157 * MiB, 0xc3);
    await expectFill(d, 157 * MiB, GiB, 0);
    await d.close();
    execFileSync('qemu-img', ['check', '-q', '-f', 'vhdx', s.path]);
  } finally {
    s.cleanup();
  }
});

test('QEMU dirty-log sample: read-only refuses, read-write replays, then 0–18 MiB is 0xA5', { skip }, async () => {
  const s = unpack('iotest-dirtylog-10G-4M.vhdx.bz2');
  try {
    const ro = await NodeFile.open(s.path, { readOnly: true });
    await assert.rejects(openVhdx(ro), (e: unknown) => isVmhostError(e, 'VHDX_LOG_REPLAY_NEEDED'));
    await ro.close();
    let d = await openVhdx(await NodeFile.open(s.path));
    assert.equal(d.virtualSize, 10 * GiB);
    await expectFill(d, 0, 18 * MiB, 0xa5);
    await d.close();
    d = await openVhdx(await NodeFile.open(s.path, { readOnly: true }));
    await expectFill(d, 0, 18 * MiB, 0xa5);
    await d.close();
    execFileSync('qemu-img', ['check', '-q', '-f', 'vhdx', s.path]);
  } finally {
    s.cleanup();
  }
});

test('Disk2VHD sample: equal header sequence numbers, metadata listed before BAT', { skip }, async () => {
  const s = unpack('test-disk2vhd.vhdx.bz2');
  try {
    const d = await openVhdx(await NodeFile.open(s.path, { readOnly: true }));
    assert.equal(d.virtualSize, 256 * MiB);
    assert.equal(d.blockSize, 2 * MiB);
    const raw = execFileSync('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', s.path, s.path + '.raw']);
    void raw;
    const want = readFileSync(s.path + '.raw');
    const buf = new Uint8Array(d.virtualSize);
    await d.read(buf, 0);
    assert.ok(Buffer.from(buf).equals(want));
    await d.close();
    // Writing updates the non-current of two equal headers; qemu and we still agree afterwards.
    const w = await openVhdx(await NodeFile.open(s.path));
    await w.write(new Uint8Array(MiB).fill(0x5a), 100 * MiB);
    await w.close();
    want.fill(0x5a, 100 * MiB, 101 * MiB);
    execFileSync('qemu-img', ['check', '-q', '-f', 'vhdx', s.path]);
    execFileSync('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', s.path, s.path + '.raw2']);
    assert.ok(readFileSync(s.path + '.raw2').equals(want));
  } finally {
    s.cleanup();
  }
});
