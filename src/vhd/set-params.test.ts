// Set-VHD's engine side: physical sector size, disk identifier and parent locator changes are
// journaled, survive reopen, keep the DataWriteGuid (children stay linked) and are validated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { isVmhostError } from '../common/errors.ts';
import { createVhdx, openVhdx, checkVhdx, describeVhdx, setVhdxParams, setUserMetadata, getUserMetadata } from './index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB } from './format.ts';
import type { ParentResolver } from './chain.ts';

test('physical sector size and disk identifier change in place and survive reopen', async () => {
  const f = new MemoryFile('a.vhdx');
  await createVhdx(keepOpen(f), { type: 'Dynamic', virtualSize: 8 * MiB, blockSize: 1 * MiB, physicalSectorSize: 4096 });
  let d = await openVhdx(keepOpen(f));
  await d.write(pattern(4096, 1), 0);
  await setUserMetadata(d, '11111111-2222-3333-4444-555555555555', new Uint8Array([1, 2, 3]));
  const dwg = d.dataWriteGuid;
  const before = (await describeVhdx(d)).DiskIdentifier;
  await setVhdxParams(d, { physicalSectorSize: 512, diskId: 'new' });
  assert.equal(d.physicalSectorSize, 512);
  await d.close();
  d = await openVhdx(keepOpen(f), { readOnly: true });
  const desc = await describeVhdx(d);
  assert.equal(desc.PhysicalSectorSize, 512);
  assert.notEqual(desc.DiskIdentifier, before);
  assert.equal(d.dataWriteGuid, dwg);
  assert.deepEqual([...getUserMetadata(d, '11111111-2222-3333-4444-555555555555')!], [1, 2, 3]);
  const b = new Uint8Array(4096);
  await d.read(b, 0);
  assert.ok(Buffer.from(b).equals(Buffer.from(pattern(4096, 1))));
  await assert.rejects(setVhdxParams(d, { physicalSectorSize: 4096 }), (e: unknown) => isVmhostError(e, 'VHDX_READ_ONLY'));
  await d.close();
  assert.deepEqual(await checkVhdx(keepOpen(f)), []);
  d = await openVhdx(keepOpen(f));
  await assert.rejects(setVhdxParams(d, { physicalSectorSize: 1024 as 512 }), (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT'));
  await assert.rejects(setVhdxParams(d, { parent: { relativePath: 'x' } }), /only a differencing disk/);
  await d.close();
});

test('a differencing disk is re-pointed to a moved parent, and re-linked to another one', async () => {
  const files: Record<string, MemoryFile> = { old: new MemoryFile('old'), moved: new MemoryFile('moved'), child: new MemoryFile('child') };
  const openParent: ParentResolver = async (loc) => {
    const f = files[loc.relativePath ?? ''];
    if (!f) throw new Error(`no ${loc.relativePath}`);
    return keepOpen(f);
  };
  await createVhdx(keepOpen(files.old!), { type: 'Dynamic', virtualSize: 4 * MiB, blockSize: 1 * MiB });
  const p = await openVhdx(keepOpen(files.old!));
  await p.write(pattern(512, 5), 0);
  await p.close();
  const pr = await openVhdx(keepOpen(files.old!), { readOnly: true });
  await createVhdx(keepOpen(files.child!), {
    type: 'Differencing', parent: { dataWriteGuid: pr.dataWriteGuid, virtualSize: pr.virtualSize, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: 'old' },
  });
  await pr.close();
  files.moved = files.old!.clone({ name: 'moved' });
  delete files.old;
  await assert.rejects(openVhdx(keepOpen(files.child!), { openParent }), (e: unknown) => isVmhostError(e, 'VHDX_PARENT_NOT_FOUND'));
  let c = await openVhdx(keepOpen(files.child!), { noParent: true });
  await setVhdxParams(c, { parent: { relativePath: 'moved', absoluteWin32Path: '/x/moved' } });
  await c.close();
  c = await openVhdx(keepOpen(files.child!), { openParent, readOnly: true });
  const b = new Uint8Array(512);
  await c.read(b, 0);
  assert.ok(Buffer.from(b).equals(Buffer.from(pattern(512, 5))));
  assert.equal((await describeVhdx(c)).ParentPath, '/x/moved');
  await c.close();
  // A modified parent no longer matches; re-linking to its new DataWriteGuid (-IgnoreIdMismatch) repairs the chain.
  const m = await openVhdx(keepOpen(files.moved!));
  await m.write(pattern(512, 6), 512);
  await m.close();
  await assert.rejects(openVhdx(keepOpen(files.child!), { openParent }), (e: unknown) => isVmhostError(e, 'VHDX_PARENT_MISMATCH'));
  const mr = await openVhdx(keepOpen(files.moved!), { readOnly: true });
  c = await openVhdx(keepOpen(files.child!), { noParent: true });
  await setVhdxParams(c, { parent: { parentLinkage: mr.dataWriteGuid } });
  await mr.close();
  await c.close();
  c = await openVhdx(keepOpen(files.child!), { openParent, readOnly: true });
  await c.close();
  assert.deepEqual(await checkVhdx(keepOpen(files.child!), { openParent }), []);
});
