import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCoordinators } from './csv-balance.ts';

const coords = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

test('volumes without a coordinator spread over the Up nodes, least loaded first, ties by name', () => {
  assert.deepEqual(planCoordinators(['v1', 'v2', 'v3'], ['n2', 'n1'], coords({})), [
    { volume: 'v1', node: 'n1' }, { volume: 'v2', node: 'n2' }, { volume: 'v3', node: 'n1' },
  ]);
});

test('a balanced cluster is left alone', () => {
  assert.deepEqual(planCoordinators(['v1', 'v2', 'v3'], ['n1', 'n2'], coords({ v1: 'n2', v2: 'n2', v3: 'n1' })), []);
});

test('a dead coordinator\'s volume goes to the idlest Up node', () => {
  assert.deepEqual(planCoordinators(['v1', 'v2', 'v3'], ['n2', 'n3'], coords({ v1: 'n1', v2: 'n2', v3: 'n3' })), [{ volume: 'v1', node: 'n2', from: 'n1' }]);
});

test('a node that joins takes its share: one volume moves from the busiest node', () => {
  assert.deepEqual(planCoordinators(['v1', 'v2'], ['n1', 'n2'], coords({ v1: 'n1', v2: 'n1' })), [{ volume: 'v2', node: 'n2', from: 'n1' }]);
  const plan = planCoordinators(['a', 'b', 'c', 'd'], ['n1', 'n2', 'n3'], coords({ a: 'n1', b: 'n1', c: 'n1', d: 'n1' }));
  const after = new Map([['a', 'n1'], ['b', 'n1'], ['c', 'n1'], ['d', 'n1']]);
  for (const p of plan) after.set(p.volume, p.node);
  const per = [...after.values()].reduce((m, n) => m.set(n, (m.get(n) ?? 0) + 1), new Map<string, number>());
  assert.deepEqual([...per.values()].sort(), [1, 1, 2]);
  assert.equal(plan.length, 2, 'no more moves than needed');
});

test('no Up node: no plan', () => {
  assert.deepEqual(planCoordinators(['v1'], [], coords({ v1: 'n1' })), []);
});
