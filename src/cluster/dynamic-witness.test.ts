// The dynamic witness's vote arithmetic (dynamic-witness.ts), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { witnessChange } from './dynamic-witness.ts';

test('the witness votes exactly when the node votes are even, so the total is odd', () => {
  assert.equal(witnessChange(2, true, false), undefined, '2 nodes + witness: 3 votes, either node\'s death leaves 2 of 3');
  assert.equal(witnessChange(3, true, false), 'off', '3 nodes + witness would be 4: the witness steps back');
  assert.equal(witnessChange(3, false, false), undefined);
  assert.equal(witnessChange(2, false, false), 'on', 'a node left cleanly (3 → 2 votes): the witness votes again');
  assert.equal(witnessChange(4, false, false), 'on');
  assert.equal(witnessChange(1, true, false), 'off', 'one node left: its own vote is the majority');
});

test('no node votes: the witness alone would hold the cluster, so it is not switched on', () => {
  assert.equal(witnessChange(0, false, false), undefined);
  assert.equal(witnessChange(0, true, false), undefined, 'nor off: it is the last vote');
});

test('while another member is a learner catching up, the witness keeps its vote (etcd 3.4: one learner at a time)', () => {
  assert.equal(witnessChange(3, true, true), undefined);
  assert.equal(witnessChange(2, false, true), 'on', 'switching on needs no learner slot');
});
