// openDiskFile: format detection by content, differencing chains found through relative
// and absolute locators (VHDX and VHD), raw images (read/write/trim/resize), refusal of
// unknown files; resizeDisk and BlockServer.resize changing the size new clients see.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import { createVhdx, openVhdx } from '../vhd/index.ts';
import { createVhd, openVhd } from '../vhd/vhd1/index.ts';
import { isVmhostError } from '../common/errors.ts';
import { openDiskFile, detectFormat, BlockServer, RawDisk } from './index.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { tempDir, makeVhdx, pattern } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('open-disk-');
after(() => tmp.cleanup());

test('detects VHDX, VHD and raw by content; refuses unknown files', async () => {
  await makeVhdx(join(tmp.dir, 'x.bin'), { size: 4 * MiB });
  const vf = await NodeFile.open(join(tmp.dir, 'y.dat'), { create: true, overwrite: true });
  await createVhd(vf, { type: 'Fixed', size: MiB });
  await vf.close();
  writeFileSync(join(tmp.dir, 'z.img'), Buffer.alloc(MiB, 7));
  writeFileSync(join(tmp.dir, 'w.txt'), 'hello');
  const fmt = async (n: string) => {
    const f = await NodeFile.open(join(tmp.dir, n), { readOnly: true });
    try {
      return await detectFormat(f, n);
    } finally {
      await f.close();
    }
  };
  assert.equal(await fmt('x.bin'), 'VHDX');
  assert.equal(await fmt('y.dat'), 'VHD');
  assert.equal(await fmt('z.img'), 'RAW');
  await assert.rejects(openDiskFile(join(tmp.dir, 'w.txt')), (e) => isVmhostError(e, 'STORAGE_UNKNOWN_FORMAT'));
  const d = await openDiskFile(join(tmp.dir, 'y.dat'), { readOnly: true });
  assert.deepEqual([d.format, d.type, d.virtualSize, d.readOnly], ['VHD', 'Fixed', MiB, true]);
  await d.close();
});

test('VHDX differencing chain: parent found relative to the child, then by absolute path', async () => {
  const dir = join(tmp.dir, 'chain');
  mkdirSync(join(dir, 'base'), { recursive: true });
  const basePath = join(dir, 'base', 'base.vhdx');
  await makeVhdx(basePath, { size: 8 * MiB }, [[0, pattern(MiB, 1)], [4 * MiB, pattern(MiB, 2)]]);
  const base = await openVhdx(await NodeFile.open(basePath, { readOnly: true }));
  const parent = { dataWriteGuid: base.dataWriteGuid, virtualSize: base.virtualSize, logicalSectorSize: 512, physicalSectorSize: 4096 };
  await base.close();
  const make = async (name: string, loc: { relativePath?: string; absoluteWin32Path?: string }) => {
    const f = await NodeFile.open(join(dir, name), { create: true, overwrite: true });
    await createVhdx(f, { type: 'Differencing', parent: { ...parent, ...loc } });
    await f.close();
  };
  await make('rel.vhdx', { relativePath: '.\\base\\base.vhdx', absoluteWin32Path: 'C:\\nowhere\\base.vhdx' });
  await make('abs.vhdx', { relativePath: 'missing\\base.vhdx', absoluteWin32Path: basePath });
  for (const name of ['rel.vhdx', 'abs.vhdx']) {
    const d = await openDiskFile(join(dir, name));
    assert.equal(d.type, 'Differencing');
    await d.write(pattern(4096, 9), 4 * MiB);
    const b = new Uint8Array(MiB);
    await d.read(b, 0);
    assert.deepEqual(b, pattern(MiB, 1));
    const c = new Uint8Array(8192);
    await d.read(c, 4 * MiB);
    assert.deepEqual(c.subarray(0, 4096), pattern(4096, 9));
    assert.deepEqual(c.subarray(4096), pattern(MiB, 2).subarray(4096, 8192));
    await d.close();
  }
  await make('lost.vhdx', { relativePath: 'nope.vhdx' });
  await assert.rejects(openDiskFile(join(dir, 'lost.vhdx')), (e) => isVmhostError(e, 'STORAGE_PARENT_NOT_FOUND'));
});

test('VHD differencing chain opens through its locators', async () => {
  const dir = join(tmp.dir, 'vhdchain');
  mkdirSync(dir, { recursive: true });
  const pf = await NodeFile.open(join(dir, 'p.vhd'), { create: true, overwrite: true });
  await createVhd(pf, { type: 'Dynamic', size: 4 * MiB });
  await pf.close();
  const p = await openVhd(await NodeFile.open(join(dir, 'p.vhd')));
  await p.write(pattern(MiB, 3), MiB);
  const cf = await NodeFile.open(join(dir, 'c.vhd'), { create: true, overwrite: true });
  await createVhd(cf, { type: 'Differencing', parent: { disk: p, path: join(dir, 'p.vhd') } });
  await cf.close();
  await p.close();
  const d = await openDiskFile(join(dir, 'c.vhd'));
  const b = new Uint8Array(MiB);
  await d.read(b, MiB);
  assert.deepEqual(b, pattern(MiB, 3));
  await d.close();
});

test('raw image: read, write, trim as zeros, resize; served over NBD with resize seen by new clients', async () => {
  const path = join(tmp.dir, 'r.raw');
  writeFileSync(path, Buffer.alloc(2 * MiB, 1));
  const d = await openDiskFile(path);
  assert.ok(d instanceof RawDisk);
  await d.write(pattern(4096, 4), 4096);
  await d.trim(MiB, MiB);
  const b = new Uint8Array(MiB);
  await d.read(b, MiB);
  assert.ok(b.every((x) => x === 0));
  await assert.rejects(d.read(new Uint8Array(512), 2 * MiB));
  await d.close();

  const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
  try {
    const s = await server.serve(path, { exportName: 'raw' });
    const c = await NbdTestClient.connect(s.socketPath, 'raw');
    assert.equal(c.facts.size, 2 * MiB);
    assert.deepEqual(await c.read(4096, 4096), Buffer.from(pattern(4096, 4)));
    await server.resize('raw', 3 * MiB);
    const c2 = await NbdTestClient.connect(s.socketPath, 'raw');
    assert.equal(c2.facts.size, 3 * MiB);
    // The old connection may use the new end too (checks are against the current size).
    assert.ok((await c.read(2 * MiB, 4096)).every((x) => x === 0));
    await c.disconnect();
    await c2.disconnect();

    const vx = join(tmp.dir, 'grow.vhdx');
    await makeVhdx(vx, { size: 8 * MiB }, [[0, pattern(MiB, 5)]]);
    const sv = await server.serve(vx, { exportName: 'grow' });
    await server.resize('grow', 16 * MiB);
    const c3 = await NbdTestClient.connect(sv.socketPath, 'grow');
    assert.equal(c3.facts.size, 16 * MiB);
    await c3.write(12 * MiB, pattern(4096, 6));
    await c3.disconnect();
    await assert.rejects(server.resize('grow', 512 * 1024), (e) => isVmhostError(e) && /minimum/i.test(e.message));
    const ro = await server.serve(join(tmp.dir, 'y.dat'), { exportName: 'rovhd', readOnly: true });
    await assert.rejects(server.resize('rovhd', 2 * MiB), (e) => isVmhostError(e, 'STORAGE_READ_ONLY'));
    await ro.stop();
    await assert.rejects(server.serve(vx, { exportName: 'again' }), (e) => isVmhostError(e, 'STORAGE_DISK_IN_USE'));
    await assert.rejects(server.serve(path, { exportName: 'grow' }), (e) => isVmhostError(e, 'STORAGE_EXPORT_EXISTS'));
  } finally {
    await server.close();
  }
});
