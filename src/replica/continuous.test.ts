// Continuous mode's rules: a shipment appends to the newest point until the next is due; lag turns Health.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendsToPoint, lagging, LAG_WARNING_MS, POINT_EVERY_MS } from './continuous.ts';

const t0 = new Date(Date.UTC(2026, 0, 1));
const at = (ms: number) => new Date(t0.getTime() + ms);

test('shipments append to the newest recovery point; one new point per POINT_EVERY_MS (× scale)', () => {
  assert.equal(appendsToPoint(null, t0), false, 'the first shipment starts a point');
  assert.equal(appendsToPoint(t0.toISOString(), at(POINT_EVERY_MS - 1)), true);
  assert.equal(appendsToPoint(t0.toISOString(), at(POINT_EVERY_MS)), false);
  assert.equal(appendsToPoint(t0.toISOString(), at(POINT_EVERY_MS / 10), 0.1), false, 'scaled');
});

test('lagging once the newest acknowledged point is older than LAG_WARNING_MS', () => {
  assert.equal(lagging(null, t0), false);
  assert.equal(lagging(t0.toISOString(), at(LAG_WARNING_MS)), false);
  assert.equal(lagging(t0.toISOString(), at(LAG_WARNING_MS + 1)), true);
});
