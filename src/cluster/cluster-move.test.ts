// Cluster move tickets (cluster-move.ts), and the hand-over as the storage path sees it: once
// the source node revokes its fence (its disks already stopped, before the destination claims
// the ownership key), its fencing stage refuses every write, while the destination's fence on
// the new token lets them through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { FencingStage, OwnershipFence, type IoRequest } from '../storage/index.ts';
import { checkClusterMoveTicket, clusterMoveTicket, newMoveKey } from './cluster-move.ts';

test('a ticket opens the move it was made for only: that VM, that destination, that move, this cluster', () => {
  const key = newMoveKey();
  const ticket = clusterMoveTicket(key, 'vm-1', 'node2', 'move-a');
  assert.equal(checkClusterMoveTicket(key, ticket, 'vm-1', 'node2'), 'move-a');
  const refused = (k: string, tk: string, vm: string, to: string) => assert.throws(() => checkClusterMoveTicket(k, tk, vm, to),
    (e: unknown) => isVmhostError(e) && e.code === 'MIGRATION_TICKET_INVALID');
  refused(key, ticket, 'vm-2', 'node2');
  refused(key, ticket, 'vm-1', 'node3');
  refused(newMoveKey(), ticket, 'vm-1', 'node2');
  refused(key, ticket.replace('move-a', 'move-b'), 'vm-1', 'node2');
  refused(key, 'not-a-cluster-ticket', 'vm-1', 'node2');
  refused(key, 'cluster:', 'vm-1', 'node2');
});

test('after the hand-over the source\'s fencing stage refuses writes; the new owner\'s token passes them', async () => {
  const write: IoRequest = { kind: 'write', offset: 0, length: 512, data: new Uint8Array(512), fua: false, noHole: false, exportName: 'disk-app' };
  const done = () => Promise.resolve({});
  const source = new OwnershipFence(8);
  source.renew(performance.now() + 60_000);
  const stage = new FencingStage(source);
  assert.deepEqual(await stage.handle(write, done), {}, 'before the move the owner writes');
  source.revoke('ownership handed over to node2 (move m)'); // what the source's handOver does
  // A lease renewal arriving later does not bring it back.
  source.renew(performance.now() + 60_000);
  for (const kind of ['write', 'trim', 'write-zeroes'] as const) {
    await assert.rejects(stage.handle({ ...write, kind }, done), (e: unknown) => isVmhostError(e) && e.code === 'STORAGE_FENCED' && /token 8 is stale: ownership handed over to node2/.test(e.message));
  }
  assert.equal(stage.refused, 3);
  assert.deepEqual(await stage.handle({ ...write, kind: 'read' }, () => Promise.resolve({ zero: true })), { zero: true }, 'reads still pass');
  const destination = new OwnershipFence(15);
  destination.renew(performance.now() + 60_000);
  assert.deepEqual(await new FencingStage(destination).handle(write, done), {});
});
