import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSaveInterval, meteringSettingsView, parseTimeSpan } from './metering-settings.ts';

test('ResourceMeteringSaveInterval reads TimeSpan text and seconds; the range is 1 s to 24 h', () => {
  assert.equal(parseTimeSpan('01:30:00', 'X'), 5400);
  assert.equal(parseTimeSpan('00:00:10', 'X'), 10);
  assert.equal(parseTimeSpan('1.00:00:00', 'X'), 86400);
  assert.equal(parseTimeSpan('00:05', 'X'), 300);
  assert.equal(parseTimeSpan('42', 'X'), 42);
  for (const bad of ['', '1h', '25:00:00', '00:60:00', '-1']) assert.throws(() => parseTimeSpan(bad, 'X'), /INVALID_ARGUMENT|not a time span/);
  assert.throws(() => checkSaveInterval(0), /00:00:01 to 24:00:00/);
  assert.throws(() => checkSaveInterval(86401), /00:00:01 to 24:00:00/);
  assert.equal(checkSaveInterval(86400), 86400);
  assert.deepEqual(meteringSettingsView({ saveIntervalSeconds: 5400 }), { ResourceMeteringSaveInterval: '01:30:00', ResourceMeteringSaveIntervalSeconds: 5400 });
});
