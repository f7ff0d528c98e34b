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
