// Drain on shutdown's bound (shutdown-drain.ts): a drain that outlasts the timeout gives up at
// the timeout, its signal aborted so it writes nothing more; one that ends first keeps its
// outcome. And which roles a drain moves or leaves: the node's owned roles whose state is
// Online. The clock is node:test's mock timers: no waiting.
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedDrain, runningRoles } from './shutdown-drain.ts';
import { groupKey, ownerKey, parseSnapshot, stateKey } from './keys.ts';
import type { EtcdKv } from './etcd-client.ts';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
afterEach(() => mock.timers.reset());

/** A drain whose moves never finish: it settles only when its signal aborts (as ClusterAdmin.moveAll does). */
function endlessDrain(seen: { signal?: AbortSignal }) {
  return (signal: AbortSignal): Promise<string> => {
    seen.signal = signal;
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
  };
}

test('a drain still moving at the timeout gives up then: the outcome is timeout and the drain is aborted', async () => {
  const seen: { signal?: AbortSignal } = {};
  let settled: string | undefined;
  const outcome = boundedDrain(endlessDrain(seen), 5000).then((o) => (settled = o));
  mock.timers.tick(4999);
  await Promise.resolve();
  assert.equal(settled, undefined, 'still draining 1 ms before the bound');
  assert.equal(seen.signal!.aborted, false);
  mock.timers.tick(1);
  assert.equal(await outcome, 'timeout');
  assert.equal(seen.signal!.aborted, true, 'the drain is told to stop waiting for its moves');
});

test('a drain that ends first keeps its outcome, and a failed one says why', async () => {
  let aborted: AbortSignal | undefined;
  assert.equal(await boundedDrain(async (signal) => { aborted = signal; return 'Completed'; }, 5000), 'Completed');
  mock.timers.tick(5000);
  assert.equal(aborted!.aborted, false, 'the bound is cleared once the drain ended');
  assert.equal(await boundedDrain(async () => { throw new Error('node node2 is Down'); }, 5000), 'failed: node node2 is Down');
});

test('the roles a drain moves and leaves: the node\'s own roles that run, by name', () => {
  let rev = 10;
  const kv = (key: string, value: unknown): EtcdKv => ({ key, value: JSON.stringify(value), modRevision: ++rev, createRevision: rev, lease: '0' });
  const role = (id: string, name: string, owner: string, state: string): EtcdKv[] => [
    kv(groupKey(id), { Name: name, VMId: id, Priority: 2000, OwnerNodes: [], Persistent: state === 'Online' ? 'Online' : 'Offline' }),
    kv(ownerKey(id), { Node: owner }),
    kv(stateKey(id), { Node: owner, State: state }),
  ];
  const s = parseSnapshot([
    ...role('a', 'app', 'node1', 'Online'),
    ...role('b', 'db', 'node1', 'Offline'),
    ...role('c', 'web', 'node2', 'Online'),
    ...role('d', 'cache', 'node1', 'Pending'),
    ...role('e', 'queue', 'node1', 'Online'),
  ], rev);
  assert.deepEqual(runningRoles(s, 'node1'), ['app', 'queue']);
  assert.deepEqual(runningRoles(s, 'node2'), ['web']);
  assert.deepEqual(runningRoles(s, 'node3'), []);
});
