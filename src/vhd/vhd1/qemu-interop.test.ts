// Interop with QEMU 7.2's vpc driver, the oracle for the bytes we read and write.
// Findings (QEMU 7.2):
//  - qemu-img create -f vpc without force_size rounds the size UP to a CHS geometry and
//    writes creator "qemu" with current size = that CHS size (64 MiB → 67125248 bytes);
//    with -o force_size=on it writes creator "qem2", the exact size and the maximum geometry.
//  - QEMU reads creator "qemu"/"vpc " disks by CHS and others by current size; our rule
//    matches, so both sides see the same size for every file here.
//  - A fixed VHD is probed as raw: always pass -f vpc.
//  - qemu-img check does not support vpc ("This image format does not support checks"), so
//    our files are verified with qemu-img compare against the raw data we wrote, and info.
//  - QEMU ignores sector bitmaps of dynamic disks; we keep unwritten sectors of a block zero
//    so both readers agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { NodeFile } from '../../blockio/index.ts';
import { createVhd, openVhd, checkVhd } from './index.ts';
import { DiskModel, firstMismatch, hasQemu, pattern, prng, qemuImg, tempDir } from './test-support.ts';

const MiB = 1024 * 1024;
const skip = !hasQemu() && 'qemu-img not installed';

function qemuIo(file: string, ...cmds: string[]): void {
  execFileSync('qemu-io', ['-f', 'vpc', ...cmds.flatMap((c) => ['-c', c]), file], { stdio: 'ignore' });
}

async function readsLikeQemu(dir: string, vhd: string): Promise<void> {
  const raw = join(dir, 'out.raw');
  qemuImg('convert', '-f', 'vpc', '-O', 'raw', vhd, raw);
  const expected = readFileSync(raw);
  const d = await openVhd(await NodeFile.open(vhd, { readOnly: true }));
  assert.equal(d.virtualSize, expected.length, `${vhd}: size`);
  assert.equal(await firstMismatch(d, (o, l) => expected.subarray(o, o + l)), -1, `${vhd}: contents`);
  assert.deepEqual(await checkVhd(d.file), []);
  await d.close();
}

test('QEMU-made VHDs read byte-identical to qemu-img convert -O raw', { skip }, async (t) => {
  const { dir, cleanup } = tempDir('vhd1-qemu');
  t.after(cleanup);
  for (const [name, opts] of [
    ['dyn.vhd', 'subformat=dynamic'], ['dyn-force.vhd', 'subformat=dynamic,force_size=on'],
    ['fixed.vhd', 'subformat=fixed'], ['fixed-force.vhd', 'subformat=fixed,force_size=on'],
  ] as const) {
    const f = join(dir, name);
    qemuImg('create', '-q', '-f', 'vpc', '-o', opts, f, '24M');
    qemuIo(f, 'write -P 0xab 0 1M', 'write -P 0x11 3M 4k', 'write -P 0xcd 7340032 2M', 'write -P 0x5a 23M 512');
    await readsLikeQemu(dir, f);
  }
  // qemu-img convert -O vpc of a raw file we wrote (random data, zero runs left sparse).
  const raw = join(dir, 'src.raw');
  const buf = new Uint8Array(20 * MiB);
  const r = prng(7);
  for (let i = 0; i < 30; i++) {
    const off = Math.floor(r() * (buf.length - 300000) / 512) * 512;
    buf.set(pattern(512 * (1 + Math.floor(r() * 500)), i), off);
  }
  writeFileSync(raw, buf);
  for (const sub of ['dynamic', 'fixed']) {
    const f = join(dir, `conv-${sub}.vhd`);
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', `subformat=${sub},force_size=on`, raw, f);
    await readsLikeQemu(dir, f);
    const d = await openVhd(await NodeFile.open(f, { readOnly: true }));
    assert.equal(await firstMismatch(d, (o, l) => buf.subarray(o, o + l)), -1);
    await d.close();
  }
});

test('VHDs we create and write are read identically by QEMU (compare, info)', { skip }, async (t) => {
  const { dir, cleanup } = tempDir('vhd1-ours');
  t.after(cleanup);
  for (const type of ['Dynamic', 'Fixed'] as const) {
    const size = 30 * MiB + 7 * 512; // not a CHS size: the exact size must survive
    const path = join(dir, `${type}.vhd`);
    const file = await NodeFile.open(path, { create: true });
    await createVhd(file, { type, size });
    const d = await openVhd(file);
    const model = new DiskModel(size);
    const r = prng(type.length);
    for (let i = 0; i < 60; i++) {
      const n = 1 + Math.floor(r() * 3000);
      const off = Math.floor(r() * (size / 512 - n)) * 512;
      const data = pattern(n * 512, i);
      await d.write(data, off);
      model.write(data, off);
      if (i % 10 === 9) {
        const tlen = 512 * Math.floor(1 + r() * 5000);
        const toff = Math.floor(r() * (size - tlen) / 512) * 512;
        await d.trim(toff, tlen);
        model.zero(toff, tlen);
      }
    }
    await d.write(pattern(512, 99), size - 512);
    model.write(pattern(512, 99), size - 512);
    await d.close();
    const rawPath = join(dir, `${type}.raw`);
    const fd = openSync(rawPath, 'w');
    ftruncateSync(fd, size);
    for (const [s, b] of model.sectors) writeSync(fd, b, 0, 512, s * 512);
    closeSync(fd);
    const info = JSON.parse(qemuImg('info', '-f', 'vpc', '--output', 'json', path)) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], size, `${type}: qemu sees the exact size`);
    assert.match(qemuImg('compare', '-f', 'vpc', '-F', 'raw', path, rawPath), /Images are identical/);
  }
  // Our writes into a QEMU-made dynamic disk, read back by QEMU.
  const q = join(dir, 'q.vhd');
  qemuImg('create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', q, '16M');
  qemuIo(q, 'write -P 0x77 1M 3M');
  const d = await openVhd(await NodeFile.open(q));
  await d.write(pattern(8192, 1), 2 * MiB - 4096);
  await d.write(pattern(4096, 2), 9 * MiB);
  await d.close();
  const raw = join(dir, 'q.raw');
  qemuImg('convert', '-f', 'vpc', '-O', 'raw', q, raw);
  const got = readFileSync(raw);
  const want = new Uint8Array(got.length);
  want.fill(0x77, MiB, 4 * MiB);
  want.set(pattern(8192, 1), 2 * MiB - 4096);
  want.set(pattern(4096, 2), 9 * MiB);
  assert.ok(Buffer.from(want).equals(got));
});

test('QEMU sees our 2040 GiB dynamic disk and its last sector', { skip }, async (t) => {
  const { dir, cleanup } = tempDir('vhd1-max');
  t.after(cleanup);
  const max = 2040 * 1024 * MiB;
  const path = join(dir, 'max.vhd');
  const file = await NodeFile.open(path, { create: true });
  await createVhd(file, { type: 'Dynamic', size: max });
  const d = await openVhd(file);
  await d.write(new Uint8Array(512).fill(0xab), max - 512);
  await d.close();
  const info = JSON.parse(qemuImg('info', '-f', 'vpc', '--output', 'json', path)) as { 'virtual-size': number };
  assert.equal(info['virtual-size'], max);
  const out = execFileSync('qemu-io', ['-f', 'vpc', '-r', '-c', `read -P 0xab ${max - 512} 512`, '-c', `read -P 0 ${max - 1024} 512`, path], { encoding: 'utf8' });
  assert.doesNotMatch(out, /verification failed/i);
  assert.match(out, /read 512\/512 bytes/);
});

test('QEMU reads what we grew: fixed with a moved footer, dynamic with a relocated BAT', { skip }, async (t) => {
  const { resizeVhd } = await import('./index.ts');
  const { dir, cleanup } = tempDir('vhd1-grow');
  t.after(cleanup);
  for (const type of ['Fixed', 'Dynamic'] as const) {
    const path = join(dir, `${type}.vhd`);
    const file = await NodeFile.open(path, { create: true });
    await createVhd(file, { type, size: 4 * MiB });
    const d = await openVhd(file);
    await d.write(new Uint8Array(4096).fill(0x31), 4 * MiB - 4096);
    const to = type === 'Fixed' ? 9 * MiB : 1024 * MiB;
    await resizeVhd(d, to);
    await d.write(new Uint8Array(4096).fill(0x32), to - 4096);
    await d.close();
    const info = JSON.parse(qemuImg('info', '-f', 'vpc', '--output', 'json', path)) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], to);
    const out = execFileSync('qemu-io', ['-f', 'vpc', '-r', '-c', `read -P 0x31 ${4 * MiB - 4096} 4096`, '-c', `read -P 0 ${4 * MiB} 4096`,
      '-c', `read -P 0x32 ${to - 4096} 4096`, path], { encoding: 'utf8' });
    assert.doesNotMatch(out, /verification failed/i, `${type}: ${out}`);
  }
});
