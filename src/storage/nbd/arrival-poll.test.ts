// The block server's adaptive polling between requests: a busy line opens the window and the
// loop spins after each arrival; the spin ends by itself once arrivals stop (an idle server
// does not burn its core); a line whose gaps are longer than the cap closes the window, and a
// cap of 0 never spins; a preemption (someone else wanted the core) stops the polling for a
// while. Real time, with a 1 ms cap so the gaps the test makes are far from it on either side
// (busy-waited gaps of 0.3 ms, sleeps of 5 ms); the involuntary-switch count is given by the
// test (a loaded test machine preempts the test itself at random).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArrivalPoll } from './arrival-poll.ts';

const CAP_MS = 1;
/** A host where nothing else wants the core. */
const quiet = () => 0;

/** Resolves after the current spin (if any) has had `ms` to end on its own. */
const idle = (ms: number) => sleep(ms);

/** `n` arrivals 0.3 ms apart (busy-waited: a timer's granularity is 1 ms), the last one now. */
function busyLine(p: ArrivalPoll, n: number): void {
  for (let i = 0; i < n; i++) {
    const until = performance.now() + 0.3;
    while (performance.now() < until);
    p.arrived();
  }
}

test('a busy line opens the window and keeps the loop polling; the spin stops by itself after the last one', async () => {
  const p = new ArrivalPoll(CAP_MS, quiet);
  assert.equal(p.windowMicros, 0);
  p.arrived(); // the first gap is from the beginning of time: past the cap, the window stays shut
  assert.equal(p.windowMicros, 0);
  assert.equal(p.active, false);
  busyLine(p, 30);
  // Each 0.3 ms gap the window misses doubles it: 8 → 16 → … → 512 µs, which catches them; a
  // preempted moment (a gap past the cap) may shave an eighth off.
  assert.ok(p.windowMicros >= 300, `window ${p.windowMicros} µs after 30 arrivals 0.3 ms apart`);
  assert.ok(p.windowMicros <= CAP_MS * 1000);
  const last = performance.now();
  assert.equal(p.active, true, 'the loop polls after an arrival');
  // While inside the window the spin goes on from turn to turn of the loop.
  for (let turn = 0; turn < 3; turn++) {
    await new Promise((r) => setImmediate(r));
    const elapsedUs = (performance.now() - last) * 1000;
    assert.ok(p.active || elapsedUs >= p.windowMicros, `turn ${turn}: stopped ${elapsedUs.toFixed(0)} µs after the arrival, inside a ${p.windowMicros} µs window`);
  }
  await idle(20);
  assert.equal(p.active, false, 'the spin ended once the window passed without an arrival');
  p.stop();
});

test('a line whose gaps exceed the cap closes the window and stops spinning; stop() ends a spin at once', async () => {
  const p = new ArrivalPoll(CAP_MS, quiet);
  busyLine(p, 30);
  const open = p.windowMicros;
  assert.ok(open > 0);
  // Each 5 ms gap keeps 7/8 of the window: from ≤ 1000 µs below the 8 µs floor in ≤ 37 gaps.
  let gaps = 0;
  while (p.windowMicros > 0 && gaps < 60) {
    await idle(5);
    p.arrived();
    gaps++;
    assert.ok(p.windowMicros < open, `gap ${gaps}: the window shrank`);
  }
  assert.equal(p.windowMicros, 0, `closed after ${gaps} long gaps`);
  await idle(5);
  p.arrived();
  assert.equal(p.active, false, 'a closed window starts no spin');

  busyLine(p, 30);
  assert.equal(p.active, true);
  p.stop();
  assert.equal(p.active, false);
  assert.equal(p.windowMicros, 0);
});

test('a cap of 0 never spins', () => {
  const p = new ArrivalPoll(0, quiet);
  busyLine(p, 10);
  assert.equal(p.windowMicros, 0);
  assert.equal(p.active, false);
});

test('a preemption stops the polling, before a spin or during one, and polling resumes only after the back-off', async () => {
  let switches = 0;
  const p = new ArrivalPoll(CAP_MS, () => switches);
  busyLine(p, 30);
  assert.equal(p.active, true);
  // Preempted while spinning: the next check (every 0.5 ms of spin, or before the next spin
  // if a slow turn of the loop let this one run out) ends it and closes the window.
  switches++;
  const t0 = performance.now();
  while (p.windowMicros > 0 && performance.now() - t0 < 50) {
    p.arrived(); // arrivals keep coming: only the contention can stop the spin
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(p.active, false, 'the spin stopped on the preemption');
  assert.equal(p.windowMicros, 0);
  // Within the back-off a busy line does not reopen the window.
  busyLine(p, 30);
  assert.equal(p.windowMicros, 0);
  assert.equal(p.active, false);
  // After it (100 ms) a busy line polls again — unless preempted meanwhile, checked before the spin starts.
  await idle(110);
  switches++;
  busyLine(p, 30);
  assert.equal(p.active, false, 'preempted between spins: no new spin');
  await idle(110);
  busyLine(p, 30);
  assert.equal(p.active, true, 'no preemption since: polling again');
  p.stop();
});
