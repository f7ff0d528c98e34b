// -VSSSnapshotFrequencyHour's rules: the range and RecoveryHistory, which cycles freeze, and a point's type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appConsistentDue, checkVssFrequency, pointConsistency } from './app-consistent.ts';

test('VSSSnapshotFrequencyHour: 0..12, and app-consistent points need RecoveryHistory ≥ 1', () => {
  for (const h of [0, 1, 12]) checkVssFrequency(h, 4);
  checkVssFrequency(0, 0);
  assert.throws(() => checkVssFrequency(13, 4), /not an integer from 0/);
  assert.throws(() => checkVssFrequency(1.5, 4), /not an integer from 0/);
  assert.throws(() => checkVssFrequency(1, 0), /RecoveryHistory of 1 or more/);
});

test('the first cycle freezes, then one every N hours (× the timer scale); off never', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);
  assert.equal(appConsistentDue(0, null, at(0)), false);
  assert.equal(appConsistentDue(2, null, at(0)), true);
  const last = at(0).toISOString();
  assert.equal(appConsistentDue(2, last, at(7199)), false);
  assert.equal(appConsistentDue(2, last, at(7200)), true);
  assert.equal(appConsistentDue(2, last, at(71), 0.01), false, 'scaled: 2 h × 0.01 = 72 s');
  assert.equal(appConsistentDue(2, last, at(72), 0.01), true);
});

test('a point\'s type: the freeze\'s verdict when asked, crash-consistent with the reason otherwise', () => {
  assert.deepEqual(pointConsistency(true, 'ApplicationConsistent', undefined, 1), { consistency: 'ApplicationConsistent' });
  assert.deepEqual(pointConsistency(true, 'CrashConsistent', 'the guest agent is not responding', 1), { consistency: 'CrashConsistent', reason: 'the guest agent is not responding' });
  assert.match(pointConsistency(false, 'CrashConsistent', undefined, 4).reason!, /one every 4 h/);
  assert.match(pointConsistency(false, 'CrashConsistent', undefined, 0).reason!, /off/);
});
