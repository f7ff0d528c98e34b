// The leader's placement plan (placement.ts), pure: priority classes one at a time, possible
// owners, least-loaded Up node, assignments to nodes that went down redone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSnapshot, PREFIX, type ClusterGroupRecord, type GroupState, type Priority } from './keys.ts';
import { planDrain, planPlacements } from './placement.ts';
import type { EtcdKv } from './etcd-client.ts';

interface World {
  nodes: string[];
  up: string[];
  groups: [id: string, priority: Priority, extra?: Partial<ClusterGroupRecord>][];
  owners?: [id: string, node: string][];
  assigns?: [id: string, node: string][];
  states?: [id: string, node: string, state: GroupState][];
}

function snapshot(w: World) {
  let rev = 1;
  const kv = (key: string, value: unknown): EtcdKv => ({ key: PREFIX + key, value: JSON.stringify(value), modRevision: rev++, createRevision: rev, lease: '0' });
  const kvs = [
    kv('config', { Name: 'c', Id: 'x', CreatedAt: '' }),
    ...w.nodes.map((n) => kv(`nodes/${n}`, { Name: n, Id: n, NodeWeight: 1, Paused: false })),
    ...w.up.map((n) => kv(`alive/${n}`, { Url: '', Pid: 1, Since: '' })),
    ...w.groups.map(([id, p, extra]) => kv(`groups/${id}`, { Name: id, VMId: id, Priority: p, OwnerNodes: [], Persistent: 'Online', ...extra })),
    ...(w.owners ?? []).map(([id, n]) => kv(`owner/${id}`, { Node: n })),
    ...(w.assigns ?? []).map(([id, n]) => kv(`assign/${id}`, { Node: n, By: 'n1' })),
    ...(w.states ?? []).map(([id, n, st]) => kv(`state/${id}`, { Node: n, State: st })),
  ];
  return parseSnapshot(kvs, rev);
}

test('High roles are placed first; Medium waits until they are claimed and Online', () => {
  const w: World = { nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'], groups: [['low', 1000], ['high', 3000], ['med', 2000], ['high2', 3000]] };
  assert.deepEqual(planPlacements(snapshot(w)), [{ vmId: 'high', node: 'n2' }, { vmId: 'high2', node: 'n3' }]);
  // Assigned, not yet claimed: nothing more.
  assert.deepEqual(planPlacements(snapshot({ ...w, assigns: [['high', 'n2'], ['high2', 'n3']] })), []);
  // Claimed but still starting: still nothing.
  assert.deepEqual(planPlacements(snapshot({ ...w, owners: [['high', 'n2'], ['high2', 'n3']], states: [['high', 'n2', 'Online']] })), []);
  // Both Online (or Failed): Medium goes, then Low waits for it.
  assert.deepEqual(planPlacements(snapshot({ ...w, owners: [['high', 'n2'], ['high2', 'n3']], states: [['high', 'n2', 'Online'], ['high2', 'n3', 'Failed']] })),
    [{ vmId: 'med', node: 'n2' }]);
});

test('possible owners are respected, a role nobody may take blocks no one, and No Auto Start roles are placed last', () => {
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n1', 'n3'],
    groups: [['only2', 3000, { OwnerNodes: ['n2'] }], ['on3', 2000, { OwnerNodes: ['n3', 'n2'] }], ['never', 0]],
  };
  assert.deepEqual(planPlacements(snapshot(w)), [{ vmId: 'on3', node: 'n3' }]);
  const later = { ...w, owners: [['on3', 'n3']] as [string, string][], states: [['on3', 'n3', 'Online']] as [string, string, GroupState][] };
  assert.deepEqual(planPlacements(snapshot(later)), [{ vmId: 'never', node: 'n1' }]);
});

test('an assignment to a node that went down is placed again, on the least loaded Up node', () => {
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'],
    groups: [['a', 2000], ['b', 2000], ['x', 2000]],
    owners: [['a', 'n2'], ['b', 'n2']], states: [['a', 'n2', 'Online'], ['b', 'n2', 'Online']], assigns: [['x', 'n1']],
  };
  assert.deepEqual(planPlacements(snapshot(w)), [{ vmId: 'x', node: 'n3' }]);
  assert.deepEqual(planPlacements(snapshot({ ...w, up: [] })), []);
});

test('a drain sends the paused node\'s roles to the least loaded Up possible owners, never to a paused node', () => {
  const w: World = {
    nodes: ['n1', 'n2', 'n3', 'n4'], up: ['n1', 'n2', 'n3', 'n4'],
    groups: [['a', 3000], ['b', 2000], ['c', 1000, { OwnerNodes: ['n1', 'n3'] }], ['z', 2000, { OwnerNodes: ['n1'] }], ['x', 2000]],
    owners: [['a', 'n1'], ['b', 'n1'], ['c', 'n1'], ['z', 'n1'], ['x', 'n2']],
  };
  const s = snapshot(w);
  s.nodes.get('n4')!.Paused = true;
  // a (High) first to the emptier n3, then b to n2 or n3 by load and name, c only to n3; z has nowhere to go.
  assert.deepEqual(planDrain(s, 'n1'), [{ vmId: 'a', node: 'n3' }, { vmId: 'b', node: 'n2' }, { vmId: 'c', node: 'n3' }]);
});
