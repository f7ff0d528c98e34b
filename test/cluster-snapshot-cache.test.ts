// The cluster loop's watch-kept view of the keys (src/cluster/snapshot-cache.ts) against a real
// etcd: it is never older than its own client's writes (a multi-key txn arrives whole), it
// follows another client's writes and a lease's expiry, and after its watch's member is killed
// and restarted it reads everything again rather than serve what it missed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient } from '../src/cluster/etcd-client.ts';
import { PREFIX, assignKey, ownerKey, parseSnapshot } from '../src/cluster/keys.ts';
import { SnapshotCache } from '../src/cluster/snapshot-cache.ts';
import { EtcdCluster } from './support/etcd.ts';
import { waitFor } from './support/daemon.ts';

describe('SnapshotCache', () => {
  let etcd: EtcdCluster;
  before(async () => { etcd = await EtcdCluster.start(1); });
  after(async () => { await etcd?.stop(); });

  test('read-your-writes, others\' writes, lease expiry, and a full read after the watch broke', async () => {
    const mine = new EtcdClient(etcd.endpoints);
    const other = new EtcdClient(etcd.endpoints);
    let changes = 0;
    const cache = new SnapshotCache(mine, () => { changes++; });
    cache.start();
    try {
      const group = (id: string) => JSON.stringify({ Name: id, VMId: id, Priority: 2000, OwnerNodes: [], Persistent: 'Online' });
      await mine.put(`${PREFIX}groups/g1`, group('g1'));
      assert.ok((await cache.read()).groups.has('g1'));
      // One txn, three keys, one revision: every one of them is in the next read.
      for (let i = 0; i < 20; i++) {
        const r = await mine.txn([], [{ put: ownerKey(`v${i}`), value: JSON.stringify({ Node: 'n1' }) }, { put: assignKey(`v${i}`), value: JSON.stringify({ Node: 'n1', By: 'n1' }) },
          { put: `${PREFIX}groups/v${i}`, value: group(`v${i}`) }]);
        const s = await cache.read();
        assert.equal(s.owners.get(`v${i}`)?.modRevision, r.revision, `the claim of v${i} is read back at once`);
        assert.ok(s.assigns.has(`v${i}`) && s.groups.has(`v${i}`), `all of txn ${i}'s keys`);
        await mine.txn([], [{ delete: assignKey(`v${i}`) }]);
        assert.ok(!(await cache.read()).assigns.has(`v${i}`), `the delete of v${i}'s assignment is read back at once`);
      }
      // Another client's write and a lease's expiry arrive by the watch.
      const lease = await other.grant(1);
      await other.put(`${PREFIX}alive/n2`, JSON.stringify({ Url: 'x', Pid: 1, Since: '' }), lease);
      await other.put(`${PREFIX}nodes/n2`, JSON.stringify({ Name: 'n2', Id: 'n2', NodeWeight: 1, Paused: false }));
      await waitFor('n2 seen', 10_000, async () => (await cache.read()).alive.has('n2') && (await cache.read()).nodes.has('n2'));
      await waitFor('n2\'s lease expired', 15_000, async () => !(await cache.read()).alive.has('n2'));
      assert.ok(changes > 0, 'changes were told');

      // The watch's member dies and comes back; meanwhile nothing is lost.
      await etcd.kill(0);
      etcd.restart(0);
      await waitFor('etcd back', 30_000, async () => (await other.range(PREFIX).catch(() => undefined)) !== undefined);
      await other.put(`${PREFIX}groups/late`, group('late'));
      await waitFor('the write made while the watch was down', 30_000, async () => (await cache.read().catch(() => undefined))?.groups.has('late'));
      const truth = await other.range(PREFIX);
      const want = parseSnapshot(truth.kvs, truth.revision);
      const got = await cache.read();
      for (const k of ['groups', 'owners', 'assigns', 'alive', 'nodes'] as const) {
        assert.deepEqual([...got[k].keys()].sort(), [...want[k].keys()].sort(), `${k} as etcd has them`);
      }
    } finally {
      cache.close();
    }
  });
});
