// Failover's state rules: each cmdlet legal only where Hyper-V allows it, refusals that say why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPrimaryStep, assertReplicaStep, choosePoint, mergesDeferred, reverseStart, type ReplicaSide } from './failover-rules.ts';

const side = (state: ReplicaSide['state'], testing = false, vmState = 'Off'): ReplicaSide => ({ state, testing, vmState });
const refused = (fn: () => void, re: RegExp) => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'REPLICATION_FAILOVER_STATE' && re.test(e.message));

test('a replicating Replica VM: test failover and failover start, nothing else', () => {
  const s = side('Replicating');
  assertReplicaStep('x', s, 'StartTest');
  assertReplicaStep('x', s, 'Start');
  assertReplicaStep('x', s, 'Receive');
  refused(() => assertReplicaStep('x', s, 'StartVm'), /starts only after a failover/);
  refused(() => assertReplicaStep('x', s, 'Complete'), /no failover to complete/);
  refused(() => assertReplicaStep('x', s, 'Stop'), /no failover to undo/);
  refused(() => assertReplicaStep('x', s, 'StopTest'), /no test failover/);
  refused(() => assertReplicaStep('x', s, 'Reverse'), /follows a failover/);
});

test('a test failover: one at a time, cycles still arrive, no real failover beside it', () => {
  const s = side('Replicating', true);
  assertReplicaStep('x', s, 'Receive');
  assertReplicaStep('x', s, 'StopTest');
  refused(() => assertReplicaStep('x', s, 'StartTest'), /already running/);
  refused(() => assertReplicaStep('x', s, 'Start'), /removes its test VM first/);
});

test('failed over, waiting for completion: the VM starts, Stop undoes only when off, Complete commits, cycles refused', () => {
  const s = side('FailedOverWaitingCompletion');
  assertReplicaStep('x', s, 'StartVm');
  assertReplicaStep('x', s, 'Stop');
  assertReplicaStep('x', s, 'Complete');
  assertReplicaStep('x', s, 'Reverse');
  refused(() => assertReplicaStep('x', s, 'Receive'), /takes no more cycles/);
  refused(() => assertReplicaStep('x', s, 'Start'), /already FailedOverWaitingCompletion/);
  refused(() => assertReplicaStep('x', side('FailedOverWaitingCompletion', false, 'Running'), 'Stop'), /turn it off/);
  refused(() => assertReplicaStep('x', side('FailedOverWaitingCompletion', false, 'Running'), 'Reverse'), /before starting it/);
  assertReplicaStep('x', side('FailedOverWaitingCompletion', false, 'Running'), 'Complete');
});

test('failed over: no undo, no second completion', () => {
  const s = side('FailedOver');
  assertReplicaStep('x', s, 'StartVm');
  assertReplicaStep('x', s, 'Reverse');
  refused(() => assertReplicaStep('x', s, 'Stop'), /cannot be undone/);
  refused(() => assertReplicaStep('x', s, 'Complete'), /already complete/);
});

test('the primary: only -Prepare of an off, replicating VM; Stop cancels it', () => {
  assertPrimaryStep('x', 'Replicating', 'Off', 'Prepare');
  refused(() => assertPrimaryStep('x', 'Replicating', 'Running', 'Prepare'), /shut it down/);
  refused(() => assertPrimaryStep('x', 'Suspended', 'Off', 'Prepare'), /needs replication Replicating/);
  refused(() => assertPrimaryStep('x', 'Replicating', 'Off', 'Start'), /runs on the Replica server/);
  refused(() => assertPrimaryStep('x', 'Replicating', 'Off', 'Complete'), /runs on the Replica server/);
  refused(() => assertPrimaryStep('x', 'Replicating', 'Off', 'Stop'), /no planned failover/);
  assertPrimaryStep('x', 'PreparedForFailover', 'Off', 'Stop');
});

test('the failover point: the newest by default, else by name (time) or id; the base counts', () => {
  const base = { seq: 0, time: '2026-01-01T00:00:00.000Z' };
  const pts = [{ seq: 3, time: '2026-01-01T00:01:30.000Z' }, { seq: 2, time: '2026-01-01T00:01:00.000Z' }];
  const id = (p: { seq: number }) => `id-${p.seq}`;
  assert.equal(choosePoint(base, pts, undefined, id).seq, 3);
  assert.equal(choosePoint(base, [], undefined, id).seq, 0);
  assert.equal(choosePoint(base, pts, '2026-01-01T00:01:00.000Z', id).seq, 2);
  assert.equal(choosePoint(base, pts, 'ID-0', id).seq, 0);
  assert.throws(() => choosePoint(base, pts, 'nope', id), /no recovery point 'nope'/);
});

test('merges wait while a test VM or a failover stands on the chain', () => {
  assert.equal(mergesDeferred({ testing: false, state: 'Replicating' }), false);
  assert.equal(mergesDeferred({ testing: true, state: 'Replicating' }), true);
  assert.equal(mergesDeferred({ testing: false, state: 'FailedOverWaitingCompletion' }), true);
});

test('reverse replication sends only the changes when the old primary was prepared at the point failed over to', () => {
  assert.equal(reverseStart({ state: 'PreparedForFailover', preparedSeq: 7 }, 7), 'delta');
  assert.equal(reverseStart({ state: 'PreparedForFailover', preparedSeq: 7 }, 6), 'resync');
  assert.equal(reverseStart({ state: 'Replicating', preparedSeq: null }, 7), 'resync');
  assert.equal(reverseStart(undefined, 7), 'resync');
});
