// blockReadsZero (Optimize-VHD -Mode Full): a stored block whose payload is mostly a file
// hole is judged by reading its data runs only (the hole map); the answers are the same with
// the fallback (VMHOST_NO_HOLE_MAP=1), which reads the whole block.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile, holeMapStatus, type BlockFile } from '../blockio/index.ts';
import { createVhdx, openVhdx } from './index.ts';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'zero-blocks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `f` with the payload bytes it reads counted. */
function counting(f: NodeFile): { file: BlockFile; bytesRead: () => number } {
  let n = 0;
  const file: BlockFile = {
    name: f.name, readOnly: f.readOnly,
    read: (b, o) => {
      n += b.length;
      return f.read(b, o);
    },
    write: (b, o) => f.write(b, o), flush: () => f.flush(), size: () => f.size(), truncate: (s) => f.truncate(s), close: () => f.close(),
    mapData: (o, l) => f.mapData(o, l),
  };
  return { file, bytesRead: () => n };
}

for (const fallback of [false, true]) {
  test(`stored blocks of zeros are found without reading their file holes (${fallback ? 'fallback' : 'addon'})`, async (t) => {
    if (!fallback && !holeMapStatus().native) {
      if (process.env.CI === 'true') assert.fail(`hole-map addon not loaded: ${holeMapStatus().reason}`);
      t.skip('hole-map addon not loaded');
      return;
    }
    const path = join(dir, `z-${fallback}.vhdx`);
    const w = await NodeFile.open(path, { create: true });
    await createVhdx(w, { type: 'Dynamic', virtualSize: 16 * MiB, blockSize: MiB });
    const d = await openVhdx(w);
    await d.write(new Uint8Array(4096), 2 * MiB); // block 2: 4 KiB of written zeros, the rest a file hole
    await d.write(new Uint8Array(4096).fill(7), 5 * MiB + 512 * 1024); // block 5: data after a hole
    await d.close();

    const c = counting(await NodeFile.open(path, { readOnly: true }));
    const r = await openVhdx(c.file, { readOnly: true });
    if (fallback) process.env.VMHOST_NO_HOLE_MAP = '1';
    try {
      const scratch = new Uint8Array(MiB);
      assert.equal(await r.blockReadsZero(7, scratch), true); // never allocated (and the BAT is cached now)
      const before = c.bytesRead();
      assert.equal(await r.blockReadsZero(2, scratch), true);
      assert.equal(c.bytesRead() - before, fallback ? MiB : 4096);
      assert.equal(await r.blockReadsZero(5, scratch), false);
    } finally {
      delete process.env.VMHOST_NO_HOLE_MAP;
      await r.close();
    }
  });
}
