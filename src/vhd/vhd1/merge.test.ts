// Merge of differencing VHDs into the parent and into a grandparent, checked against a model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile, type BlockFile } from '../../blockio/index.ts';
import { isVmhostError } from '../../common/errors.ts';
import { createVhd, openVhd, mergeVhd, checkVhd, type VhdDisk } from './index.ts';
import { pattern, prng } from './test-support.ts';

const MiB = 1024 * 1024;

function keep(f: MemoryFile): BlockFile {
  return { name: f.name, readOnly: false, read: (b, o) => f.read(b, o), write: (b, o) => f.write(b, o), flush: () => f.flush(), size: () => f.size(), truncate: (n) => f.truncate(n), close: async () => {} };
}

test('a two-level VHD chain merges into its grandparent, and a child into its parent, equal to the model', async () => {
  const size = 8 * MiB;
  const files: Record<string, MemoryFile> = { '/m/base.vhd': new MemoryFile('/m/base.vhd'), '/m/mid.vhd': new MemoryFile('/m/mid.vhd'), '/m/leaf.vhd': new MemoryFile('/m/leaf.vhd') };
  const model = new Uint8Array(size);
  const rnd = prng(5);
  const trace = async (d: VhdDisk, n: number) => {
    for (let i = 0; i < n; i++) {
      const start = Math.floor(rnd() * (size / 512 - 300));
      const len = 512 * (1 + Math.floor(rnd() * 300));
      const p = rnd() < 0.2 ? new Uint8Array(len) : pattern(len, i + 17 * n);
      await d.write(p, start * 512);
      model.set(p, start * 512);
    }
  };
  // Every layer open read-write: the one merged into must be.
  const openParent = async (paths: string[]) => keep(files[paths.map((p) => p.replace(/^\.\//, '/m/')).find((p) => files[p])!]!);
  await createVhd(keep(files['/m/base.vhd']!), { type: 'Dynamic', size, blockSize: 512 * 1024 });
  let parentPath = '/m/base.vhd';
  for (const name of ['/m/base.vhd', '/m/mid.vhd', '/m/leaf.vhd']) {
    if (name !== '/m/base.vhd') {
      const p = await openVhd(keep(files[parentPath]!), { openParent });
      await createVhd(keep(files[name]!), { type: 'Differencing', blockSize: 256 * 1024, parent: { disk: p, path: parentPath } });
      await p.close();
    }
    const d = await openVhd(keep(files[name]!), { openParent });
    await trace(d, 30);
    await d.close();
    parentPath = name;
  }
  const leaf = await openVhd(keep(files['/m/leaf.vhd']!), { openParent });
  await assert.rejects(mergeVhd(leaf, 3), (e: unknown) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  const target = await mergeVhd(leaf, 2);
  const got = new Uint8Array(size);
  await target.read(got, 0);
  assert.ok(Buffer.from(got).equals(Buffer.from(model)), 'grandparent holds the chain\'s view');
  await target.close();
  assert.deepEqual((await checkVhd(keep(files['/m/base.vhd']!))).filter((p) => p.severity === 'error'), []);
  // A new child of the merged base, merged into it.
  const b = await openVhd(keep(files['/m/base.vhd']!));
  files['/m/c.vhd'] = new MemoryFile('/m/c.vhd');
  await createVhd(keep(files['/m/c.vhd']!), { type: 'Differencing', parent: { disk: b, path: '/m/base.vhd' } });
  await b.close();
  const c = await openVhd(keep(files['/m/c.vhd']!), { openParent });
  await trace(c, 20);
  const t2 = await mergeVhd(c);
  await t2.read(got, 0);
  assert.ok(Buffer.from(got).equals(Buffer.from(model)), 'parent holds the child\'s view');
  await t2.close();
  const fixed = await openVhd(keep(files['/m/base.vhd']!));
  await assert.rejects(mergeVhd(fixed), (e: unknown) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  await fixed.close();
});
