// Cross-validation with qemu-img/qemu-io (the oracle): files qemu writes read identically
// through our engine, and files we write pass `qemu-img check` and `qemu-img compare`.
// Test-only code: uses node:fs and child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../blockio/node-file.ts';
import { createVhdx, openVhdx } from './index.ts';
import { pattern } from './testing.ts';
import { MiB } from './format.ts';

const hasQemu = (() => {
  try {
    execFileSync('qemu-img', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

for (const sub of ['dynamic', 'fixed'] as const) {
  for (const bsMiB of [1, 8, 32]) {
    test(`qemu-written ${sub} VHDX, ${bsMiB} MiB blocks, reads identical`, { skip: !hasQemu }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vhdx-q-'));
      try {
        const img = join(dir, 'q.vhdx');
        const size = 48 * MiB;
        run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', `subformat=${sub},block_size=${bsMiB}M`, img, String(size)]);
        run('qemu-io', ['-f', 'vhdx', '-c', 'write -P 0x11 0 4096', '-c', 'write -P 0x22 1M 3M', '-c', `write -P 0x33 ${size - 8192} 8192`,
          '-c', 'write -P 0x44 33554432 512', '-c', 'write -z 1M 4096', img]);
        run('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', img, join(dir, 'q.raw')]);
        const raw = readFileSync(join(dir, 'q.raw'));
        const f = await NodeFile.open(img, { readOnly: true });
        const d = await openVhdx(f, { readOnly: true });
        assert.equal(d.virtualSize, size);
        assert.equal(d.blockSize, bsMiB * MiB);
        const buf = new Uint8Array(size);
        await d.read(buf, 0);
        assert.ok(Buffer.from(buf).equals(raw), 'contents differ from qemu-img convert');
        await d.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

for (const type of ['Dynamic', 'Fixed'] as const) {
  for (const bsMiB of [1, 8, 32]) {
    for (const pss of [512, 4096] as const) {
      test(`our ${type} VHDX (${bsMiB} MiB blocks, physical ${pss}) passes qemu-img check and compare`, { skip: !hasQemu }, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'vhdx-o-'));
        try {
          const img = join(dir, 'o.vhdx');
          const size = 40 * MiB + 512 * 3;
          const f = await NodeFile.open(img, { create: true });
          await createVhdx(f, { type, virtualSize: size, blockSize: bsMiB * MiB, physicalSectorSize: pss });
          const d = await openVhdx(f);
          const raw = new Uint8Array(size);
          const writes: Array<[number, number]> = [[0, 4096], [MiB - 512, 2 * MiB + 1024], [33 * MiB, 512], [size - 1536, 1536], [9 * MiB + 512, 17 * MiB]];
          let seed = 1;
          for (const [off, len] of writes) {
            const p = pattern(len, seed++);
            await d.write(p, off);
            raw.set(p, off);
          }
          await d.trim(9 * MiB + 512, 4 * MiB);
          raw.fill(0, 9 * MiB + 512, 13 * MiB + 512);
          await d.flush();
          await d.close();
          writeFileSync(join(dir, 'o.raw'), raw);
          run('qemu-img', ['check', '-q', '-f', 'vhdx', img]);
          run('qemu-img', ['compare', '-q', '-f', 'vhdx', '-F', 'raw', img, join(dir, 'o.raw')]);
          const info = JSON.parse(run('qemu-img', ['info', '--output=json', '-f', 'vhdx', img])) as { 'virtual-size': number };
          assert.equal(info['virtual-size'], size);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
}

test('a log we leave pending is replayed by qemu, and our writes to a qemu file pass its check', { skip: !hasQemu }, async () => {
  const { MemoryFile } = await import('../blockio/memory-file.ts');
  const { CrashFile } = await import('../blockio/crash-file.ts');
  const { keepOpen } = await import('./testing.ts');
  const dir = mkdtempSync(join(tmpdir(), 'vhdx-l-'));
  try {
    const size = 16 * MiB;
    const base = new MemoryFile('l.vhdx');
    await createVhdx(keepOpen(base), { type: 'Dynamic', virtualSize: size, blockSize: 1 * MiB });
    const crash = new CrashFile(base);
    const d = await openVhdx(crash);
    const p = pattern(3 * MiB, 9);
    await d.write(p, 5 * MiB);
    await d.close();
    // Cut after the log entry's flush, before the BAT update is applied.
    let cut = 0;
    crash.ops.forEach((op, i) => {
      if (op.kind === 'write' && op.offset >= MiB && op.offset < 2 * MiB) cut = i + 2;
    });
    const dirty = crash.stateAt(cut);
    const bytes = new Uint8Array(await dirty.size());
    await dirty.read(bytes, 0);
    const img = join(dir, 'l.vhdx');
    writeFileSync(img, bytes);
    const ro = await NodeFile.open(img, { readOnly: true });
    await assert.rejects(openVhdx(ro), /replay/);
    await ro.close();
    run('qemu-io', ['-f', 'vhdx', '-c', 'read 0 512', img]); // read-write open: qemu replays our log
    const raw = new Uint8Array(size);
    raw.set(p, 5 * MiB);
    writeFileSync(join(dir, 'l.raw'), raw);
    run('qemu-img', ['check', '-q', '-f', 'vhdx', img]);
    run('qemu-img', ['compare', '-q', '-f', 'vhdx', '-F', 'raw', img, join(dir, 'l.raw')]);

    // Our writes (allocating, partial, trim) into a qemu-created dynamic file.
    const q = join(dir, 'q.vhdx');
    run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'subformat=dynamic,block_size=8M', q, String(size)]);
    const f = await NodeFile.open(q);
    const qd = await openVhdx(f);
    await qd.write(p, 7 * MiB + 512);
    await qd.trim(8 * MiB, 8 * MiB);
    await qd.close();
    const raw2 = new Uint8Array(size);
    raw2.set(p.subarray(0, MiB - 512), 7 * MiB + 512);
    writeFileSync(join(dir, 'q.raw'), raw2);
    run('qemu-img', ['check', '-q', '-f', 'vhdx', q]);
    run('qemu-img', ['compare', '-q', '-f', 'vhdx', '-F', 'raw', q, join(dir, 'q.raw')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
