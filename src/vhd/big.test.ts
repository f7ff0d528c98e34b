// The 64 TB limit: a 64 TiB dynamic VHDX works (first and last sector) while the file stays
// small; one byte (or one sector) more is refused with VHDX_TOO_LARGE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { createVhdx, openVhdx, describeVhdx, MAX_VIRTUAL_SIZE } from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB, TiB } from './format.ts';
import { isVmhostError } from '../common/errors.ts';

test('64 TiB dynamic VHDX: first and last sector, small file; 64 TiB + 1 refused', async () => {
  assert.equal(MAX_VIRTUAL_SIZE, 64 * TiB);
  const f = new MemoryFile('big.vhdx');
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: 64 * TiB });
  const d = await openVhdx(keepOpen(f));
  assert.equal(d.virtualSize, 64 * TiB);
  const a = pattern(512, 1), z = pattern(512, 2);
  await d.write(a, 0);
  await d.write(z, 64 * TiB - 512);
  await d.close();
  const r = await openVhdx(keepOpen(f), { readOnly: true });
  const b = new Uint8Array(512);
  await r.read(b, 0);
  assert.deepEqual(b, a);
  await r.read(b, 64 * TiB - 512);
  assert.deepEqual(b, z);
  await r.read(b, 32 * TiB);
  assert.ok(b.every((v) => v === 0));
  const desc = await describeVhdx(r);
  assert.equal(desc.Size, 64 * TiB);
  await r.close();
  // Two 32 MiB blocks + 1 MiB-aligned structures (the 16 MiB BAT is sparse).
  assert.ok(f.allocatedBytes < 80 * MiB, `file holds ${f.allocatedBytes} bytes`);
  assert.ok((await f.size()) < 100 * MiB);
  for (const size of [64 * TiB + 1, 64 * TiB + 512, 64 * TiB + 4096]) {
    await assert.rejects(createVhdx(new MemoryFile('x'), { type: 'Dynamic', virtualSize: size }), (e: unknown) => isVmhostError(e, 'VHDX_TOO_LARGE'));
  }
});
