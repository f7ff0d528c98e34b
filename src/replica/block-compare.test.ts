// Block comparison: digests depend on the content only (a VHDX's unallocated block and a raw
// file's written zeros agree), the short last block is digested as it is, and the differing
// blocks come out as joined extents clipped to the disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import { RawDisk, createDiskFile, openDiskFile } from '../storage/index.ts';
import { blockDigests, differingExtents, DIGEST } from './block-compare.ts';

const K = 64 * 1024;
const SIZE = 40 * K + 512; // a short last block

test('digests of a VHDX and a raw file: equal blocks agree whatever their allocation; the differing ones as extents', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-block-compare-'));
  try {
    const vhdx = join(dir, 'a.vhdx');
    await createDiskFile(vhdx, { format: 'VHDX', type: 'Dynamic', size: SIZE, logicalSectorSize: 512, physicalSectorSize: 512 });
    const a = await openDiskFile(vhdx);
    const rawPath = join(dir, 'b.img');
    const fh = await open(rawPath, 'wx');
    await fh.truncate(SIZE);
    await fh.close();
    const b = await RawDisk.open(await NodeFile.open(rawPath));
    try {
      const data = new Uint8Array(K).fill(7);
      await a.write(data, 3 * K); // the same on both
      await b.write(data, 3 * K);
      await b.write(new Uint8Array(K), 10 * K); // zeros written: still equal to a's unallocated block
      await a.write(new Uint8Array(2 * K).fill(1), 20 * K); // two adjacent blocks differ
      await b.write(new Uint8Array(512).fill(2), 40 * K); // the short last block differs
      const [da, db] = [await blockDigests(a), await blockDigests(b)];
      assert.equal(da.length, 41 * DIGEST);
      assert.deepEqual(differingExtents(da, db, SIZE), [{ offset: 20 * K, length: 2 * K }, { offset: 40 * K, length: 512 }]);
      assert.deepEqual(differingExtents(da, da, SIZE), []);
    } finally {
      await a.close();
      await b.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
