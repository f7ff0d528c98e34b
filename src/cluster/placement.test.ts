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
  /** Nodes' MemoryCapacity in MiB (unset: unbounded). */
  capacity?: Record<string, number>;
  preempts?: [id: string, node: string][];
}

const MiB = 1024 * 1024;

function snapshot(w: World) {
  let rev = 1;
  const kv = (key: string, value: unknown): EtcdKv => ({ key: PREFIX + key, value: JSON.stringify(value), modRevision: rev++, createRevision: rev, lease: '0' });
  const kvs = [
    kv('config', { Name: 'c', Id: 'x', CreatedAt: '' }),
    ...w.nodes.map((n) => kv(`nodes/${n}`, { Name: n, Id: n, NodeWeight: 1, Paused: false })),
    ...w.up.map((n) => kv(`alive/${n}`, { Url: '', Pid: 1, Since: '', ...(w.capacity?.[n] !== undefined ? { MemoryCapacity: w.capacity[n]! * MiB } : {}) })),
    ...w.groups.map(([id, p, extra]) => kv(`groups/${id}`, { Name: id, VMId: id, Priority: p, OwnerNodes: [], Persistent: 'Online', ...extra })),
    ...(w.owners ?? []).map(([id, n]) => kv(`owner/${id}`, { Node: n })),
    ...(w.assigns ?? []).map(([id, n]) => kv(`assign/${id}`, { Node: n, By: 'n1' })),
    ...(w.states ?? []).map(([id, n, st]) => kv(`state/${id}`, { Node: n, State: st })),
    ...(w.preempts ?? []).map(([id, n]) => kv(`preempt/${id}`, { Node: n, Token: 1, For: 'x', By: 'n1' })),
  ];
  return parseSnapshot(kvs, rev);
}

test('High roles are placed first; Medium waits until they are claimed and Online', () => {
  const w: World = { nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'], groups: [['low', 1000], ['high', 3000], ['med', 2000], ['high2', 3000]] };
  assert.deepEqual(planPlacements(snapshot(w)).place, [{ vmId: 'high', node: 'n2' }, { vmId: 'high2', node: 'n3' }]);
  // Assigned, not yet claimed: nothing more.
  assert.deepEqual(planPlacements(snapshot({ ...w, assigns: [['high', 'n2'], ['high2', 'n3']] })).place, []);
  // Claimed but still starting: still nothing.
  assert.deepEqual(planPlacements(snapshot({ ...w, owners: [['high', 'n2'], ['high2', 'n3']], states: [['high', 'n2', 'Online']] })).place, []);
  // Both Online (or Failed): Medium goes, then Low waits for it.
  assert.deepEqual(planPlacements(snapshot({ ...w, owners: [['high', 'n2'], ['high2', 'n3']], states: [['high', 'n2', 'Online'], ['high2', 'n3', 'Failed']] })).place,
    [{ vmId: 'med', node: 'n2' }]);
});

test('possible owners are respected, a role nobody may take blocks no one, and No Auto Start roles are placed last', () => {
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n1', 'n3'],
    groups: [['only2', 3000, { OwnerNodes: ['n2'] }], ['on3', 2000, { OwnerNodes: ['n3', 'n2'] }], ['never', 0]],
  };
  assert.deepEqual(planPlacements(snapshot(w)).place, [{ vmId: 'on3', node: 'n3' }]);
  const later = { ...w, owners: [['on3', 'n3']] as [string, string][], states: [['on3', 'n3', 'Online']] as [string, string, GroupState][] };
  assert.deepEqual(planPlacements(snapshot(later)).place, [{ vmId: 'never', node: 'n1' }]);
});

test('an assignment to a node that went down is placed again, on the least loaded Up node', () => {
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'],
    groups: [['a', 2000], ['b', 2000], ['x', 2000]],
    owners: [['a', 'n2'], ['b', 'n2']], states: [['a', 'n2', 'Online'], ['b', 'n2', 'Online']], assigns: [['x', 'n1']],
  };
  assert.deepEqual(planPlacements(snapshot(w)).place, [{ vmId: 'x', node: 'n3' }]);
  assert.deepEqual(planPlacements(snapshot({ ...w, up: [] })).place, []);
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

test('anti-affinity: a role avoids a node holding its class while another may take it, and uses it when none other may', () => {
  // n2 holds b (class sql) and is the least loaded; n3 holds two roles: sql's a still goes to n3.
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'],
    groups: [['a', 2000, { AntiAffinityClassNames: ['sql'] }], ['b', 2000, { AntiAffinityClassNames: ['sql', 'web'] }], ['c', 2000], ['d', 2000]],
    owners: [['b', 'n2'], ['c', 'n3'], ['d', 'n3']],
  };
  assert.deepEqual(planPlacements(snapshot(w)).place, [{ vmId: 'a', node: 'n3' }]);
  // Without the class it goes to the least loaded n2.
  assert.deepEqual(planPlacements(snapshot({ ...w, groups: [['a', 2000], ...w.groups.slice(1)] })).place, [{ vmId: 'a', node: 'n2' }]);
  // Soft: n2 is the only possible owner, so a goes there all the same.
  assert.deepEqual(planPlacements(snapshot({ ...w, groups: [['a', 2000, { AntiAffinityClassNames: ['sql'], OwnerNodes: ['n2'] }], ...w.groups.slice(1)] })).place,
    [{ vmId: 'a', node: 'n2' }]);
  // Two ownerless roles of one class are spread over two nodes, whatever their loads.
  const two: World = { nodes: ['n1', 'n2'], up: ['n1', 'n2'], groups: [['x', 2000, { AntiAffinityClassNames: ['k'] }], ['y', 2000, { AntiAffinityClassNames: ['k'] }], ['z', 2000]], owners: [['z', 'n2']] };
  assert.deepEqual(planPlacements(snapshot(two)).place, [{ vmId: 'x', node: 'n1' }, { vmId: 'y', node: 'n2' }]);
});

test('memory: a role goes only where its startup memory is free; a drain too', () => {
  const mem = (mib: number): Partial<ClusterGroupRecord> => ({ MemoryBytes: mib * MiB });
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'], capacity: { n2: 1024, n3: 512 },
    groups: [['big', 2000, mem(600)], ['small', 2000, mem(256)], ['off', 2000, { ...mem(4096), Persistent: 'Offline' }]],
    owners: [['off', 'n2']],
  };
  // n3 is emptier but has no room for big; an Offline role takes no memory.
  assert.deepEqual(planPlacements(snapshot(w)).place, [{ vmId: 'big', node: 'n2' }, { vmId: 'small', node: 'n3' }]);
  // Nowhere has room and nothing lower runs: it waits, blocking nobody, preempting nobody.
  const full = { ...w, capacity: { n2: 512, n3: 512 } };
  assert.deepEqual(planPlacements(snapshot(full)), { place: [{ vmId: 'small', node: 'n3' }], preempt: [] });
  // A drain leaves out what fits nowhere.
  const drain: World = {
    nodes: ['n1', 'n2'], up: ['n1', 'n2'], capacity: { n1: 2048, n2: 512 },
    groups: [['a', 2000, mem(400)], ['b', 2000, mem(400)]], owners: [['a', 'n1'], ['b', 'n1']],
  };
  assert.deepEqual(planDrain(snapshot(drain), 'n1'), [{ vmId: 'a', node: 'n2' }]);
});

test('preemption: a High role with no room has the fewest, lowest roles turned off on one node, then nothing more until they are off', () => {
  const mem = (mib: number): Partial<ClusterGroupRecord> => ({ MemoryBytes: mib * MiB });
  const w: World = {
    nodes: ['n1', 'n2', 'n3'], up: ['n2', 'n3'], capacity: { n2: 1024, n3: 1024 },
    groups: [
      ['high', 3000, mem(512)],
      ['m2', 2000, mem(512)], ['l2', 1000, mem(256)], ['l2b', 1000, mem(256)],
      ['m3', 2000, mem(768)], ['l3', 1000, mem(256)],
    ],
    owners: [['m2', 'n2'], ['l2', 'n2'], ['l2b', 'n2'], ['m3', 'n3'], ['l3', 'n3']],
    states: [['m2', 'n2', 'Online'], ['l2', 'n2', 'Online'], ['l2b', 'n2', 'Online'], ['m3', 'n3', 'Online'], ['l3', 'n3', 'Online']],
  };
  const plan = planPlacements(snapshot(w));
  assert.deepEqual(plan.place, []);
  // n2: turning off both Low roles frees 512; n3 would need m3 (Medium) too: n2 it is.
  assert.deepEqual(plan.preempt.map((p) => [p.vmId, p.node, p.for]), [['l2', 'n2', 'high'], ['l2b', 'n2', 'high']]);
  assert.ok(plan.preempt.every((p) => typeof p.token === 'number'));
  // A pending preemption: nothing else is preempted meanwhile.
  assert.deepEqual(planPlacements(snapshot({ ...w, preempts: [['l2', 'n2']] })), { place: [], preempt: [] });
  // Once the victims are off (ownerless), high gets the room first; they wait (no room for them, nothing lower to preempt).
  const after: World = { ...w, owners: [['m2', 'n2'], ['m3', 'n3'], ['l3', 'n3']], states: [['m2', 'n2', 'Online'], ['m3', 'n3', 'Online'], ['l3', 'n3', 'Online']] };
  assert.deepEqual(planPlacements(snapshot(after)), { place: [{ vmId: 'high', node: 'n2' }], preempt: [] });
  // A Medium role never preempts a Medium or a High one.
  const med: World = { ...w, groups: w.groups.map(([id, p, x]) => (id === 'high' ? [id, 2000, x] : [id, p === 1000 ? 2000 : p, x])) };
  assert.deepEqual(planPlacements(snapshot(med)), { place: [], preempt: [] });
});
