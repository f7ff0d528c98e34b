// Heartbeat monitoring's pure policy (heartbeat-policy.ts) and the VM resource's restart decision
// (vm-monitor.ts), on a given clock: the grace after a start, the lost timeout, a guest without the
// agent left alone, Paused/Disabled as no verdict, a new run starting afresh; and the restart
// threshold within the restart period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeartbeatStatus } from '../host/index.ts';
import { judgeHeartbeat, type HeartbeatTrack, type HeartbeatVerdict } from './heartbeat-policy.ts';
import { RESTART_PERIOD_MS, restartDecision } from './vm-monitor.ts';

const timing = { graceMs: 10_000, lostMs: 5_000 };

/** Samples [time, status] of one run in order; the verdict of each. */
function run(samples: [number, HeartbeatStatus][], agentSeen = true, runId = 'pid1/0', from?: HeartbeatTrack): { verdicts: HeartbeatVerdict['kind'][]; track: HeartbeatTrack | undefined } {
  let track = from;
  const verdicts = samples.map(([now, status]) => {
    const r = judgeHeartbeat(track, { now, run: runId, status, agentSeen }, timing);
    track = r.track;
    return r.verdict.kind;
  });
  return { verdicts, track };
}

test('a guest that never answers after its start fails once the grace is over, if its agent answered before', () => {
  assert.deepEqual(run([[0, 'NoContact'], [10_000, 'NoContact'], [10_001, 'NoContact'], [12_000, 'NoContact']]).verdicts, ['none', 'none', 'never', 'never']);
  // Within the grace, an OK ends the wait.
  assert.deepEqual(run([[0, 'NoContact'], [9_000, 'OK'], [30_000, 'OK']]).verdicts, ['none', 'ok', 'none']);
});

test('a role whose guest never answered is taken for one without the agent: said once, never a failure', () => {
  const r = run([[0, 'NoContact'], [10_001, 'NoContact'], [20_000, 'NoContact'], [99_000, 'NoContact']], false);
  assert.deepEqual(r.verdicts, ['none', 'no-agent', 'none', 'none']);
  // Its first OK is the role's first: the owner records that its agent answers.
  assert.deepEqual(judgeHeartbeat(r.track, { now: 100_000, run: 'pid1/0', status: 'OK', agentSeen: false }, timing).verdict, { kind: 'ok', firstForRole: true });
});

test('an OK heartbeat lost for longer than the timeout fails; one that comes back in time does not', () => {
  assert.deepEqual(run([[0, 'OK'], [1_000, 'LostCommunication'], [6_000, 'LostCommunication'], [6_001, 'LostCommunication']]).verdicts, ['ok', 'none', 'none', 'lost']);
  assert.deepEqual(run([[0, 'OK'], [1_000, 'LostCommunication'], [5_000, 'OK'], [6_500, 'NoContact'], [11_000, 'NoContact'], [11_501, 'NoContact']]).verdicts,
    ['ok', 'none', 'ok', 'none', 'none', 'lost']);
});

test('Paused and Disabled are no verdict and start the count again', () => {
  assert.deepEqual(run([[0, 'OK'], [1_000, 'LostCommunication'], [5_000, 'Paused'], [9_000, 'LostCommunication'], [14_000, 'LostCommunication'], [14_001, 'LostCommunication']]).verdicts,
    ['ok', 'none', 'none', 'none', 'none', 'lost']);
  // A guest paused through its boot has its whole grace after the pause.
  assert.deepEqual(run([[0, 'NoContact'], [8_000, 'Paused'], [17_000, 'NoContact'], [18_000, 'NoContact'], [18_001, 'NoContact']]).verdicts, ['none', 'none', 'none', 'none', 'never']);
  assert.deepEqual(run([[0, 'Disabled'], [60_000, 'Disabled']]).verdicts, ['none', 'none']);
});

test('a new run (another QEMU, or a reset this node made) starts its grace afresh', () => {
  const first = run([[0, 'OK'], [1_000, 'LostCommunication'], [6_001, 'LostCommunication']]);
  assert.deepEqual(first.verdicts, ['ok', 'none', 'lost']);
  assert.deepEqual(run([[7_000, 'LostCommunication'], [17_000, 'NoContact'], [17_001, 'NoContact']], true, 'pid1/1', first.track).verdicts, ['none', 'none', 'never']);
});

test('restart policy: the first failure within the period restarts in place, the next fails over; older ones are forgotten', () => {
  assert.deepEqual(restartDecision([], 1_000), { failures: [1_000], failOver: false });
  assert.deepEqual(restartDecision([1_000], 2_000), { failures: [1_000, 2_000], failOver: true });
  const later = 1_000 + RESTART_PERIOD_MS;
  assert.deepEqual(restartDecision([1_000], later), { failures: [later], failOver: false });
});
