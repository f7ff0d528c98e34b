// The pipeline's coarse clock: one read of the real clock per burst of frames, never stale
// past the task that read it, nor past a burst's worth of frames within one long task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoarseClock } from './coarse-clock.ts';

test('coarse clock: read once per burst, fresh after the task ends or after 256 frames', async () => {
  let t = 1000, reads = 0;
  const clock = new CoarseClock(() => { reads++; return t; });
  assert.equal(clock.now(), 1000);
  t = 2000;
  for (let i = 0; i < 100; i++) assert.equal(clock.now(), 1000, 'same task, within the burst: the time read first');
  assert.equal(reads, 1);
  await Promise.resolve(); // the task's microtasks have run: the next frame reads the clock again
  assert.equal(clock.now(), 2000);
  assert.equal(reads, 2);
  // One long synchronous burst: read again after 256 frames at most.
  t = 3000;
  let frames = 0;
  while (clock.now() !== 3000) frames++;
  assert.ok(frames <= 256, `stale for ${frames} frames`);
  assert.equal(reads, 3);
});
