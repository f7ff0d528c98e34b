// Resize, merge, compact, check, describe and user metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFile } from '../blockio/memory-file.ts';
import { NodeFile } from '../blockio/node-file.ts';
import {
  createVhdx, openVhdx, resizeVhdx, mergeVhdx, compactVhdx, checkVhdx, describeVhdx, setUserMetadata, getUserMetadata, listUserMetadata,
} from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB, GiB } from './format.ts';
import { isVmhostError } from '../common/errors.ts';
import type { VhdxDisk } from './disk.ts';

async function readAll(d: VhdxDisk): Promise<Uint8Array> {
  const b = new Uint8Array(d.virtualSize);
  await d.read(b, 0);
  return b;
}

test('resize: grow dynamic past the BAT region, shrink to the minimum and not below; qemu agrees', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhdx-r-'));
  try {
    const path = join(dir, 'r.vhdx');
    const f = await NodeFile.open(path, { create: true });
    await createVhdx(f, { type: 'Dynamic', virtualSize: 16 * MiB, blockSize: 1 * MiB });
    const d = await openVhdx(f);
    const p = pattern(3 * MiB, 5);
    await d.write(p, 2 * MiB);
    // 1 MiB blocks: the initial 1 MiB BAT covers ~128k blocks; 200 GiB needs a bigger one.
    await resizeVhdx(d, 200 * GiB);
    assert.equal(d.virtualSize, 200 * GiB);
    await d.write(p.subarray(0, MiB), 200 * GiB - MiB);
    const got = new Uint8Array(3 * MiB);
    await d.read(got, 2 * MiB);
    assert.deepEqual(got, p);
    assert.equal((await describeVhdx(d)).MinimumSize, 200 * GiB);
    await d.trim(200 * GiB - MiB, MiB);
    assert.equal((await describeVhdx(d)).MinimumSize, 5 * MiB);
    await assert.rejects(resizeVhdx(d, 4 * MiB), (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT'));
    await resizeVhdx(d, 5 * MiB);
    assert.equal(d.virtualSize, 5 * MiB);
    await assert.rejects(resizeVhdx(d, 64 * 1024 * GiB + 512), (e: unknown) => isVmhostError(e, 'VHDX_TOO_LARGE'));
    await d.close();
    execFileSync('qemu-img', ['check', '-q', '-f', 'vhdx', path]);
    const raw = new Uint8Array(5 * MiB);
    raw.set(p, 2 * MiB);
    writeFileSync(join(dir, 'r.raw'), raw);
    execFileSync('qemu-img', ['compare', '-q', '-f', 'vhdx', '-F', 'raw', path, join(dir, 'r.raw')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resize: grow a fixed disk allocates the new blocks', async () => {
  const f = new MemoryFile('fx');
  await createVhdx(keepOpen(f), { type: 'Fixed', virtualSize: 4 * MiB, blockSize: 1 * MiB });
  const d = await openVhdx(keepOpen(f));
  await d.write(pattern(MiB, 1), 3 * MiB);
  await resizeVhdx(d, 6 * MiB);
  const desc = await describeVhdx(d);
  assert.equal(desc.VhdType, 'Fixed');
  assert.equal(desc.MinimumSize, 6 * MiB);
  const ext = await d.blockStatus(0, 6 * MiB);
  assert.ok(ext.every((e) => !e.hole));
  await d.close();
  assert.deepEqual(await checkVhdx(keepOpen(f)), []);
});

test('merge: child into parent, and two levels into the base', async () => {
  const files: Record<string, MemoryFile> = { base: new MemoryFile('base'), mid: new MemoryFile('mid'), leaf: new MemoryFile('leaf') };
  const size = 12 * MiB;
  await createVhdx(keepOpen(files.base!), { type: 'Dynamic', virtualSize: size, blockSize: 1 * MiB });
  let base = await openVhdx(keepOpen(files.base!));
  await base.write(pattern(size, 1), 0);
  const guid = base.dataWriteGuid;
  await base.close();
  const mk = async (name: string, parentGuid: string, parentName: string) =>
    createVhdx(keepOpen(files[name]!), { type: 'Differencing', blockSize: 1 * MiB, parent: { dataWriteGuid: parentGuid, virtualSize: size, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: parentName } });
  await mk('mid', guid, 'base');
  const openParent = async (loc: { relativePath?: string }) => keepOpen(files[loc.relativePath!]!);
  const mid = await openVhdx(keepOpen(files.mid!), { openParent });
  await mid.write(pattern(3 * MiB, 2), 2 * MiB + 512);
  await mid.trim(8 * MiB, MiB);
  const midGuid = mid.dataWriteGuid;
  await mid.close();
  await mk('leaf', midGuid, 'mid');
  const leaf = await openVhdx(keepOpen(files.leaf!), { openParent });
  await leaf.write(pattern(4096, 3), 5 * MiB - 512);
  await leaf.trim(0, 1024);
  const want = await readAll(leaf);
  const target = await mergeVhdx(leaf, 2);
  await target.close();
  base = await openVhdx(keepOpen(files.base!), { readOnly: true });
  assert.ok(Buffer.from(await readAll(base)).equals(Buffer.from(want)));
  assert.deepEqual(await checkVhdx(keepOpen(files.base!)), []);
  await base.close();
});

test('compact: trimmed blocks are reclaimed and the file shrinks, contents unchanged', async () => {
  const f = new MemoryFile('c');
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: 32 * MiB, blockSize: 1 * MiB });
  const d = await openVhdx(keepOpen(f));
  for (let b = 0; b < 16; b++) await d.write(pattern(MiB, b), b * 2 * MiB);
  for (let b = 0; b < 16; b += 2) await d.trim(b * 2 * MiB, MiB);
  const want = await readAll(d);
  const res = await compactVhdx(d);
  assert.ok(res.fileSizeAfter <= res.fileSizeBefore - 8 * MiB, JSON.stringify(res));
  assert.ok(Buffer.from(await readAll(d)).equals(Buffer.from(want)));
  assert.equal((await describeVhdx(d)).FragmentationPercentage >= 0, true);
  await d.close();
  assert.deepEqual(await checkVhdx(keepOpen(f)), []);
  const again = await openVhdx(keepOpen(f), { readOnly: true });
  assert.ok(Buffer.from(await readAll(again)).equals(Buffer.from(want)));
  await again.close();
});

test('describe and user metadata', async () => {
  const f = new MemoryFile('m');
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: 10 * MiB, blockSize: 2 * MiB, logicalSectorSize: 4096, diskId: '12345678-9abc-def0-1234-56789abcdef0' });
  let d = await openVhdx(keepOpen(f));
  const desc = await describeVhdx(d);
  assert.deepEqual(desc, {
    VhdFormat: 'VHDX', VhdType: 'Dynamic', FileSize: desc.FileSize, Size: 10 * MiB, MinimumSize: 0, LogicalSectorSize: 4096,
    PhysicalSectorSize: 4096, BlockSize: 2 * MiB, ParentPath: null, DiskIdentifier: '12345678-9ABC-DEF0-1234-56789ABCDEF0', FragmentationPercentage: 0,
  });
  const g = 'a1b2c3d4-0000-1111-2222-333344445555';
  await setUserMetadata(d, g, new TextEncoder().encode('hello'));
  await setUserMetadata(d, '{B1B2C3D4-0000-1111-2222-333344445555}', new Uint8Array(9000).fill(7), { isVirtualDisk: true });
  await d.close();
  d = await openVhdx(keepOpen(f), { readOnly: true });
  assert.equal(new TextDecoder().decode(getUserMetadata(d, g)), 'hello');
  assert.equal(listUserMetadata(d).length, 2);
  await d.close();
  d = await openVhdx(keepOpen(f));
  await setUserMetadata(d, g, undefined);
  await d.close();
  d = await openVhdx(keepOpen(f), { readOnly: true });
  assert.equal(getUserMetadata(d, g), undefined);
  assert.equal(listUserMetadata(d).length, 1);
  await d.close();
});

test('check reports damage', async () => {
  const f = new MemoryFile('k');
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: 8 * MiB, blockSize: 1 * MiB });
  const d = await openVhdx(keepOpen(f));
  await d.write(pattern(2 * MiB, 1), 0);
  await d.close();
  assert.deepEqual(await checkVhdx(keepOpen(f)), []);
  // Point block 1 at block 0's location.
  const e = new Uint8Array(8);
  await f.read(e, 3 * MiB);
  await f.write(e, 3 * MiB + 8);
  const probs = await checkVhdx(keepOpen(f));
  assert.ok(probs.some((p) => p.includes('overlaps')), probs.join('\n'));
  // Break header 1: still opens, reported.
  await f.write(new Uint8Array([1, 2, 3]), 64 * 1024 + 100);
  assert.ok((await checkVhdx(keepOpen(f))).some((p) => p.includes('header')));
});
