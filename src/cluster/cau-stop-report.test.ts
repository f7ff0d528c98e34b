// Invoke-CauRun -StopAfter's decision (cau-plan.ts stopAfterDue), Get-CauReport's -StartDate /
// -EndDate / -Last selection (cau-report-query.ts), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, currentNode, finish, planRun, stopAfterDue, type CauRunRecord, type PlanNode } from './cau-plan.ts';
import { selectReports } from './cau-report-query.ts';

const up = (...names: string[]): PlanNode[] => names.map((Name) => ({ Name, State: 'Up' }));
const base = { Plugin: 'vmhost.Command', Arguments: { Command: 'true' } };
const START = Date.parse('2026-12-07T10:00:00Z');
const meta = { RunId: 'r1', ClusterName: 'hv', By: 'n1', Now: new Date(START) };

test('-StopAfter: no verdict before its time or while a node is being updated; then Stopping, ended Cancelled, the nodes left out named', () => {
  const run = planRun({ ...base, StopAfterMs: 60_000 }, up('n1', 'n2', 'n3'), meta);
  assert.equal(stopAfterDue(run, START + 59_999), undefined, 'its time is not up');
  // n1 begun: it is finished first, even past the time.
  const begun = advance(run, 'n1', START + 1, () => 'q1');
  assert.equal(currentNode(begun)!.Status, 'Suspending');
  assert.equal(stopAfterDue(begun, START + 120_000), undefined, 'a node being updated finishes');
  let done = begun;
  while (currentNode(done)?.Node === 'n1') done = advance(done, 'n1', START + 2, () => 'q2');
  const stopped = stopAfterDue(done, START + 120_000)!;
  assert.equal(stopped.State, 'Stopping');
  assert.match(stopped.Message!, /StopAfter 60 s elapsed: not started n2, n3/);
  const ended = finish(stopped, START + 120_000);
  assert.deepEqual([ended.State, ended.Nodes.map((n) => n.Status)], ['Cancelled', ['Succeeded', 'Waiting', 'Waiting']]);
  // Zero stops before the first node; no StopAfter never stops; a bad value is refused by the plan.
  assert.equal(stopAfterDue(planRun({ ...base, StopAfterMs: 0 }, up('n1', 'n2'), meta), START)?.State, 'Stopping');
  assert.equal(stopAfterDue(planRun(base, up('n1', 'n2'), meta), START + 1e12), undefined);
  assert.throws(() => planRun({ ...base, StopAfterMs: -1 }, up('n1', 'n2'), meta), /-StopAfter: -1 ms/);
});

test('Get-CauReport: oldest first, started within -StartDate … -EndDate (both included), -Last the newest of those', () => {
  const at = (RunId: string, StartedAt: string): CauRunRecord => ({ ...planRun(base, up('n1', 'n2'), meta), RunId, StartedAt });
  const runs = [at('c', '2026-12-07T12:00:00.000Z'), at('a', '2026-12-05T23:59:59.000Z'), at('b', '2026-12-06T08:00:00.000Z')];
  const ids = (q: Parameters<typeof selectReports>[1]): string[] => selectReports(runs, q).map((r) => r.RunId);
  assert.deepEqual(ids({}), ['a', 'b', 'c']);
  assert.deepEqual(ids({ StartDate: '2026-12-06' }), ['b', 'c']);
  assert.deepEqual(ids({ EndDate: '2026-12-06T08:00:00Z' }), ['a', 'b'], 'the end is included');
  assert.deepEqual(ids({ StartDate: '2026-12-06', EndDate: '2026-12-07' }), ['b']);
  assert.deepEqual(ids({ StartDate: '2026-12-06', Last: true }), ['c']);
  assert.deepEqual(ids({ StartDate: '2026-12-08' }), []);
  assert.throws(() => selectReports(runs, { StartDate: 'yesterday' }), /-StartDate 'yesterday' is not a date/);
  assert.throws(() => selectReports(runs, { StartDate: '2026-12-07', EndDate: '2026-12-06' }), /-StartDate 2026-12-07 is after -EndDate 2026-12-06/);
});
