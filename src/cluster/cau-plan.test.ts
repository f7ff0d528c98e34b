// The CAU run's plan and state machine (cau-plan.ts), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, currentNode, fail, finish, planRun, type CauRunRecord, type PlanNode } from './cau-plan.ts';

const meta = { RunId: 'r1', ClusterName: 'hv', By: 'n1', Now: new Date(0) };
const up = (...names: string[]): PlanNode[] => names.map((Name) => ({ Name, State: 'Up' }));
const base = { Plugin: 'vmhost.Command', Arguments: { Command: 'true' } };
let ids = 0;
const newId = (): string => `q${++ids}`;

/** Advance the current node through every step until it is done. */
function through(run: CauRunRecord): CauRunRecord {
  const n = currentNode(run)!.Node;
  let r = run;
  while (currentNode(r)?.Node === n) r = advance(r, n, 1, newId);
  return r;
}

test('the plan: every node once, by name, or in -NodeOrder (which must name each node once)', () => {
  assert.deepEqual(planRun(base, up('n3', 'n1', 'n2'), meta).Nodes.map((n) => n.Node), ['n1', 'n2', 'n3']);
  const r = planRun({ ...base, NodeOrder: ['N2', 'n3', 'n1'] }, up('n1', 'n2', 'n3'), meta);
  assert.deepEqual(r.Nodes.map((n) => [n.Node, n.Status]), [['n2', 'Waiting'], ['n3', 'Waiting'], ['n1', 'Waiting']]);
  assert.deepEqual([r.MaxFailedNodes, r.MaxRetriesPerNode, r.FailbackMode, r.State], [0, 3, 'NoFailback', 'Running']);
  assert.throws(() => planRun({ ...base, NodeOrder: ['n1', 'n2'] }, up('n1', 'n2', 'n3'), meta), /must list every node: n3 missing/);
  assert.throws(() => planRun({ ...base, NodeOrder: ['n1', 'n1', 'n2'] }, up('n1', 'n2'), meta), /twice/);
  assert.throws(() => planRun({ ...base, NodeOrder: ['n1', 'x'] }, up('n1', 'n2'), meta), /'x' is not a node/);
  assert.throws(() => planRun({ ...base, FailbackMode: 'Policy' }, up('n1', 'n2'), meta), /Policy/);
});

test('a Down node: left out (Failed, not updated), or the run refused with -RequireAllNodesOnline', () => {
  const nodes: PlanNode[] = [...up('n1', 'n2'), { Name: 'n3', State: 'Down' }];
  assert.throws(() => planRun({ ...base, RequireAllNodesOnline: true }, nodes, meta), /n3 is Down/);
  const r = planRun({ ...base, MaxFailedNodes: 1 }, nodes, meta);
  assert.deepEqual(r.Nodes.map((n) => n.Status), ['Waiting', 'Waiting', 'Failed']);
  assert.throws(() => planRun(base, [...up('n1'), { Name: 'n2', State: 'Down' }], meta), /at least two nodes/);
});

test('each node\'s steps in order, the scripts\' only when given; the run succeeds when all are done', () => {
  let r = planRun(base, up('n1', 'n2'), meta);
  const seen: string[] = [];
  while (currentNode(r)?.Node === 'n1') { r = advance(r, 'n1', 1, newId); seen.push(r.Nodes[0]!.Status); }
  assert.deepEqual(seen, ['Suspending', 'Updating', 'Restarting', 'Resuming', 'Succeeded']);
  assert.equal(r.Nodes[0]!.Attempts, 1);
  r = through(r);
  assert.equal(currentNode(r), undefined);
  assert.equal(finish(r, 2).State, 'Succeeded');

  let s = planRun({ ...base, PreUpdateScript: 'pre', PostUpdateScript: 'post' }, up('n1', 'n2'), meta);
  const steps: string[] = [];
  while (currentNode(s)?.Node === 'n1') { s = advance(s, 'n1', 1, newId); steps.push(s.Nodes[0]!.Status); }
  assert.deepEqual(steps, ['PreUpdate', 'Suspending', 'Updating', 'Restarting', 'Resuming', 'PostUpdate', 'Succeeded']);
});

test('a failed update is retried with a new request id up to MaxRetriesPerNode, then the node fails and the run with it', () => {
  let r = planRun({ ...base, MaxRetriesPerNode: 2 }, up('n1', 'n2', 'n3'), meta);
  r = through(r); // n1 done
  r = advance(advance(r, 'n2', 1, newId), 'n2', 1, newId); // n2: Suspending → Updating
  const first = r.Nodes[1]!.RequestId;
  r = fail(r, 'n2', 'exit 3', 2, newId);
  assert.deepEqual([r.Nodes[1]!.Status, r.Nodes[1]!.Attempts, r.State], ['Updating', 2, 'Running']);
  assert.notEqual(r.Nodes[1]!.RequestId, first, 'the retry is a new request: the node runs it again');
  r = fail(r, 'n2', 'exit 3', 3, newId);
  assert.equal(r.Nodes[1]!.Status, 'Failed');
  assert.equal(r.State, 'Failed');
  assert.match(r.Message!, /node n2 failed \(exit 3\); 1 failed node\(s\) exceed MaxFailedNodes 0/);
  assert.equal(r.Nodes[2]!.Status, 'Waiting', 'the nodes after it are not touched');
});

test('MaxFailedNodes lets the run go on past a failed node; a failed drain is not retried', () => {
  let r = planRun({ ...base, MaxFailedNodes: 1 }, up('n1', 'n2'), meta);
  r = advance(r, 'n1', 1, newId); // Suspending
  r = fail(r, 'n1', 'its drain ended Failed', 2, newId);
  assert.deepEqual([r.Nodes[0]!.Status, r.State, currentNode(r)?.Node], ['Failed', 'Running', 'n2']);
  r = through(r);
  const end = finish(r, 3);
  assert.equal(end.State, 'Succeeded');
  assert.match(end.Message!, /1 node\(s\) not updated/);
});

test('a stopped run ends Cancelled at the next step', () => {
  const r = planRun(base, up('n1', 'n2'), meta);
  const end = finish({ ...r, State: 'Stopping', Message: 'stopped by Stop-CauRun on n2' }, 5);
  assert.deepEqual([end.State, end.Message], ['Cancelled', 'stopped by Stop-CauRun on n2']);
  assert.equal(finish(r, 5).State, 'Running', 'not over while a node is left');
});
