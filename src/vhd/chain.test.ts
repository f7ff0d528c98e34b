// Differencing chains and 4096-byte logical sectors, checked against an in-memory model with
// seeded random write/trim traces (qemu has no differencing or 4Kn VHDX support to compare).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { prng } from '../blockio/crash-file.ts';
import { createVhdx, openVhdx } from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB } from './format.ts';
import { isVmhostError } from '../common/errors.ts';
import type { VhdxDisk } from './disk.ts';
import type { ParentResolver } from './chain.ts';

function resolverFor(files: Record<string, MemoryFile>): ParentResolver {
  return async (loc) => {
    const f = files[loc.relativePath ?? ''];
    if (!f) throw new Error(`no parent ${loc.relativePath}`);
    return keepOpen(f);
  };
}

async function randomTrace(d: VhdxDisk, model: Uint8Array, seed: number, ops: number, trims = true): Promise<void> {
  const rnd = prng(seed);
  const ls = d.logicalSectorSize;
  const sectors = d.virtualSize / ls;
  for (let i = 0; i < ops; i++) {
    const start = Math.floor(rnd() * sectors);
    const n = 1 + Math.floor(rnd() * Math.min(sectors - start, rnd() < 0.2 ? (3 * MiB) / ls : 64));
    const off = start * ls, len = n * ls;
    if (trims && rnd() < 0.15) {
      await d.trim(off, len);
      model.fill(0, off, off + len);
    } else {
      const p = pattern(len, seed * 1000 + i);
      await d.write(p, off);
      model.set(p, off);
    }
  }
}

async function assertSame(d: VhdxDisk, model: Uint8Array): Promise<void> {
  const buf = new Uint8Array(model.length);
  await d.read(buf, 0);
  assert.ok(Buffer.from(buf).equals(Buffer.from(model)), 'disk differs from model');
  // blockStatus covers the range exactly and data ranges are never claimed as holes wrongly.
  const ext = await d.blockStatus(0, d.virtualSize);
  let at = 0;
  for (const e of ext) {
    assert.equal(e.offset, at);
    at += e.length;
    if (e.zero) assert.ok(buf.subarray(e.offset, e.offset + e.length).every((v) => v === 0), `extent at ${e.offset} claims zero`);
  }
  assert.equal(at, d.virtualSize);
}

for (const ls of [512, 4096] as const) {
  test(`dynamic, logical ${ls}: random trace matches the model, survives reopen`, async () => {
    const f = new MemoryFile('d.vhdx');
    const size = 24 * MiB + 7 * ls;
    await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: size, blockSize: 1 * MiB, logicalSectorSize: ls });
    const model = new Uint8Array(size);
    let d = await openVhdx(keepOpen(f));
    assert.equal(d.logicalSectorSize, ls);
    await randomTrace(d, model, 7 + ls, 150);
    await assertSame(d, model);
    await d.close();
    d = await openVhdx(keepOpen(f), { readOnly: true });
    await assertSame(d, model);
    await assert.rejects(d.write(new Uint8Array(ls), 0), (e: unknown) => isVmhostError(e, 'VHDX_READ_ONLY'));
    await assert.rejects(d.read(new Uint8Array(ls / 2), 0), (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT'));
    await assert.rejects(d.read(new Uint8Array(ls), size), (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT'));
    await d.close();
  });

  test(`three-level differencing chain, logical ${ls}: reads fall through by sector bitmap`, async () => {
    const size = 20 * MiB;
    const files: Record<string, MemoryFile> = { base: new MemoryFile('base'), mid: new MemoryFile('mid'), leaf: new MemoryFile('leaf') };
    await createVhdx(keepOpen(files.base!), { type: 'Dynamic', virtualSize: size, blockSize: 2 * MiB, logicalSectorSize: ls });
    const model = new Uint8Array(size);
    let base = await openVhdx(keepOpen(files.base!));
    await randomTrace(base, model, 1, 40, false);
    await base.close();
    base = await openVhdx(keepOpen(files.base!), { readOnly: true });
    await createVhdx(keepOpen(files.mid!), {
      type: 'Differencing', blockSize: 1 * MiB,
      parent: { dataWriteGuid: base.dataWriteGuid, virtualSize: base.virtualSize, logicalSectorSize: ls, physicalSectorSize: 4096, relativePath: 'base' },
    });
    await base.close();
    const openParent = resolverFor(files);
    let mid = await openVhdx(keepOpen(files.mid!), { openParent });
    assert.equal(mid.type, 'Differencing');
    await assertSame(mid, model);
    await randomTrace(mid, model, 2, 60);
    await assertSame(mid, model);
    await mid.close();
    mid = await openVhdx(keepOpen(files.mid!), { openParent, readOnly: true });
    await createVhdx(keepOpen(files.leaf!), {
      type: 'Differencing',
      parent: { dataWriteGuid: mid.dataWriteGuid, virtualSize: size, logicalSectorSize: ls, physicalSectorSize: 4096, relativePath: 'mid' },
    });
    await mid.close();
    const leaf = await openVhdx(keepOpen(files.leaf!), { openParent });
    await randomTrace(leaf, model, 3, 80);
    await assertSame(leaf, model);
    await leaf.close();
    const again = await openVhdx(keepOpen(files.leaf!), { openParent, readOnly: true });
    await assertSame(again, model);
    await again.close();
    // Writing to the parent breaks the linkage.
    const b2 = await openVhdx(keepOpen(files.mid!), { openParent });
    await b2.write(new Uint8Array(ls), 0);
    await b2.close();
    await assert.rejects(openVhdx(keepOpen(files.leaf!), { openParent }), (e: unknown) => isVmhostError(e, 'VHDX_PARENT_MISMATCH'));
    await assert.rejects(openVhdx(keepOpen(files.leaf!)), (e: unknown) => isVmhostError(e, 'VHDX_PARENT_REQUIRED'));
    await assert.rejects(openVhdx(keepOpen(files.leaf!), { openParent: async () => { throw new Error('ENOENT'); } }), (e: unknown) => isVmhostError(e, 'VHDX_PARENT_NOT_FOUND'));
  });
}

test('concurrent reads, writes and trims on one disk serialize correctly', async () => {
  const f = new MemoryFile('cc');
  const size = 8 * MiB;
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: size, blockSize: 1 * MiB });
  const d = await openVhdx(keepOpen(f));
  const model = new Uint8Array(size);
  const rnd = prng(99);
  const ops: Array<Promise<void>> = [];
  for (let i = 0; i < 60; i++) {
    const off = Math.floor(rnd() * (size / 512 - 256)) * 512, len = 512 * (1 + Math.floor(rnd() * 255));
    if (rnd() < 0.2) {
      model.fill(0, off, off + len);
      ops.push(d.trim(off, len));
    } else if (rnd() < 0.3) {
      ops.push(d.read(new Uint8Array(len), off));
    } else {
      const p = pattern(len, i);
      model.set(p, off);
      ops.push(d.write(p, off));
    }
  }
  await Promise.all(ops);
  await assertSame(d, model);
  await d.close();
});
