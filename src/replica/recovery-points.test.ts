// The recovery-point plan: at most RecoveryHistory points kept, the oldest merged first; 0 keeps none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRecoveryHistory, prunePlan } from './recovery-points.ts';

const pts = (...seqs: number[]) => seqs.map((seq) => ({ seq, time: new Date(seq * 1000).toISOString() }));

test('beyond RecoveryHistory the oldest points are merged, oldest first; up to it nothing is', () => {
  assert.deepEqual(prunePlan(pts(1, 2), 3), { merge: [], keep: pts(1, 2) });
  assert.deepEqual(prunePlan(pts(1, 2, 3), 3), { merge: [], keep: pts(1, 2, 3) });
  assert.deepEqual(prunePlan(pts(3, 1, 4, 2), 3), { merge: pts(1), keep: pts(2, 3, 4) });
  assert.deepEqual(prunePlan(pts(1, 2, 3, 4, 5), 2).merge.map((p) => p.seq), [1, 2, 3]);
});

test('RecoveryHistory 0 merges every point (only the latest state stays, in the base)', () => {
  assert.deepEqual(prunePlan(pts(7), 0), { merge: pts(7), keep: [] });
});

test('RecoveryHistory is an integer 0..24', () => {
  assert.deepEqual([0, 1, 24, 25, -1, 1.5].map(checkRecoveryHistory), [true, true, true, false, false, false]);
});
