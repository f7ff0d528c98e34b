// Time Synchronization's decision logic and its wiring to an agent, without a guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SKEW_MS, TimeSync, clockSkew, syncDecision, type TimeSyncCorrection } from './time-sync.ts';
import { VmhostError } from '../common/index.ts';

const at = (sentAtMs: number, receivedAtMs: number, guestTimeMs: number) => ({ sentAtMs, receivedAtMs, guestTimeMs });

test('clockSkew takes the midpoint of the round trip', () => {
  assert.deepEqual(clockSkew(at(1000, 1100, 1050)), { skewMs: 0, rttMs: 100 });
  assert.deepEqual(clockSkew(at(1000, 1100, 4_601_050)), { skewMs: 4_600_000, rttMs: 100 });
  assert.deepEqual(clockSkew(at(1000, 1000, 500)), { skewMs: -500, rttMs: 0 });
});

test('syncDecision: ready and resume always push; periodic only past 1 s with a useful round trip', () => {
  assert.deepEqual(syncDecision(false, 'ready'), { push: false, why: 'disabled' });
  assert.deepEqual(syncDecision(false, 'periodic', at(0, 10, -3_600_000)), { push: false, why: 'disabled' });
  assert.deepEqual(syncDecision(true, 'ready'), { push: true, skewMs: undefined });
  assert.deepEqual(syncDecision(true, 'resume', at(0, 10, 5)), { push: true, skewMs: 0 });
  assert.deepEqual(syncDecision(true, 'periodic'), { push: false, why: 'in-sync' });
  // Exactly at the bound is in sync; just past it (either way) is not.
  assert.deepEqual(syncDecision(true, 'periodic', at(0, 0, MAX_SKEW_MS)), { push: false, why: 'in-sync' });
  assert.deepEqual(syncDecision(true, 'periodic', at(0, 0, MAX_SKEW_MS + 1)), { push: true, skewMs: MAX_SKEW_MS + 1 });
  assert.deepEqual(syncDecision(true, 'periodic', at(10_000, 10_200, 10_100 - 3_600_000)), { push: true, skewMs: -3_600_000 });
  // A 900 ms guest offset measured over a 1.5 s round trip: within the bound, no push.
  assert.deepEqual(syncDecision(true, 'periodic', at(0, 1500, 1650)), { push: false, why: 'in-sync' });
  // A slow answer says nothing reliable: no push even when the numbers look off.
  assert.deepEqual(syncDecision(true, 'periodic', at(0, 5000, 100_000)), { push: false, why: 'rtt-too-long' });
});

function fakeAgent(guestOffsetMs: number, fail?: VmhostError) {
  const calls: number[] = [];
  let offset = guestOffsetMs;
  return {
    calls,
    agent: {
      async setTime(timeMs: number) {
        calls.push(timeMs);
        if (fail) throw fail;
        const previousTimeMs = Date.now() + offset;
        offset = timeMs - Date.now();
        return { previousTimeMs, timeMs };
      },
    },
  };
}

test('TimeSync pushes on ready and resume, on a periodic sample only when skewed, never when disabled', async () => {
  const f = fakeAgent(-3_600_000);
  const corrections: TimeSyncCorrection[] = [];
  let enabled = true;
  const ts = new TimeSync(f.agent, () => enabled, (c) => corrections.push(c));
  await ts.ready();
  assert.equal(f.calls.length, 1);
  assert.equal(corrections.length, 1);
  assert.equal(corrections[0]!.trigger, 'ready');
  assert.ok(Math.abs(corrections[0]!.skewMs + 3_600_000) < 1000, String(corrections[0]!.skewMs));
  const now = Date.now();
  await ts.sample(at(now, now + 20, now + 10 + 200));
  assert.equal(f.calls.length, 1, 'in sync: no push');
  await ts.sample(at(now, now + 20, now + 10 - 5000));
  assert.equal(f.calls.length, 2, 'skewed: pushed');
  // The push accounts for the one-way latency of the last useful ping (half of 20 ms).
  assert.ok(f.calls[1]! - Date.now() <= 10 && f.calls[1]! - Date.now() >= 0);
  await ts.resumed();
  assert.equal(f.calls.length, 3);
  assert.equal(corrections.length, 1, 'a step of a few ms is not reported');
  enabled = false;
  await ts.ready();
  await ts.resumed();
  await ts.sample(at(now, now + 20, now - 9_999_999));
  assert.equal(f.calls.length, 3, 'disabled: never pushed');
});

test('TimeSync leaves an agent without settime alone until its next ready', async () => {
  const f = fakeAgent(0, new VmhostError('AGENT_ERROR', 'agent: UNKNOWN_OP: settime', { agentCode: 'UNKNOWN_OP' }));
  const ts = new TimeSync(f.agent, () => true, () => undefined);
  await ts.ready();
  await ts.resumed();
  await ts.sample(at(0, 10, -99_999));
  assert.equal(f.calls.length, 1);
  await ts.ready();
  assert.equal(f.calls.length, 2, 'a new agent connection tries again');
});
