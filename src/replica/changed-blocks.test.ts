// An extended replication's block sets: merged sorted without duplicates, turned into clipped, joined extents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blocksToExtents, mergeBlocks } from './changed-blocks.ts';

test('merging per-drive block sets: a union, sorted, each drive apart', () => {
  assert.deepEqual(mergeBlocks({ a: [1, 5], b: [2] }, { a: new Set([5, 3]), c: [9] }), { a: [1, 3, 5], b: [2], c: [9] });
  assert.deepEqual(mergeBlocks({}, {}), {});
});

test('blocks as extents: adjacent ones joined, the disk\'s end clipped, blocks beyond it dropped', () => {
  const K = 64 * 1024;
  assert.deepEqual(blocksToExtents([0, 1, 2, 5], K, 100 * K), [{ offset: 0, length: 3 * K }, { offset: 5 * K, length: K }]);
  assert.deepEqual(blocksToExtents([9, 10, 11], K, 10 * K + 512), [{ offset: 9 * K, length: K + 512 }]);
  assert.deepEqual(blocksToExtents([], K, K), []);
});
