// Network virtualization policy in a cluster (issue 15, item 1: "in a cluster it is kept in
// etcd"): two nodes share the tenant half — lookup records and customer routes — through the
// cluster's etcd (src/cluster/hnv-shared.ts), while provider addresses stay each host's. A record
// made on one node is on the other; twenty made at once on both are all kept (compare-and-swap);
// a removal on either is everywhere; a node whose daemon was down catches up when it returns.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './support/daemon.ts';
import { startCluster, type TestCluster } from './support/cluster.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}';
const PA = ['192.168.100.1', '192.168.100.2'];
interface Record { CustomerAddress: string; ProviderAddress: string }

describe('network virtualization policy shared by a cluster', () => {
  let cluster: TestCluster | undefined;
  before(async () => { cluster = await startCluster(['node1', 'node2']); });
  after(async () => { await cluster?.stop(); });

  test('records and routes follow the cluster, provider addresses stay per host', async () => {
    const { t, daemons } = cluster!;
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', 'node1,node2');
    for (const i of [0, 1]) await t[i]!.ok('New-NetVirtualizationProviderAddress', '-ProviderAddress', PA[i]!, '-InterfaceIndex', '1', '-PrefixLength', '24');
    await t[0]!.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', BLUE, '-VirtualSubnetID', '5001', '-DestinationPrefix', '10.0.0.0/24', '-NextHop', '0.0.0.0');
    const record = (i: number, ca: string) => t[i]!.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', ca, '-VirtualSubnetID', '5001',
      '-MACAddress', `00-15-5d-00-01-${Number(ca.split('.')[3]).toString(16).padStart(2, '0')}`, '-ProviderAddress', PA[i]!, '-Rule', 'TranslationMethodEncap');
    const records = async (i: number): Promise<Record[]> => [JSON.parse(await t[i]!.ok('Get-NetVirtualizationLookupRecord', '-Json') || '[]') as Record[] | Record].flat();
    const cas = async (i: number): Promise<string[]> => (await records(i)).map((r) => r.CustomerAddress).sort();

    await record(0, '10.0.0.5');
    await waitFor('node2 has node1\'s record', 10_000, async () => (await cas(1)).includes('10.0.0.5'));
    const routes = [JSON.parse(await t[1]!.ok('Get-NetVirtualizationCustomerRoute', '-Json')) as unknown[]].flat();
    assert.equal(routes.length, 1, 'the customer route is on node2 too');
    const pas = async (i: number) => [JSON.parse(await t[i]!.ok('Get-NetVirtualizationProviderAddress', '-Json')) as { ProviderAddress: string }[]].flat().map((p) => p.ProviderAddress);
    assert.deepEqual(await pas(1), [PA[1]], 'provider addresses are each host\'s own');

    // Twenty records at once, ten from each node: none lost to the other's write.
    await Promise.all(Array.from({ length: 20 }, (_, k) => record(k % 2, `10.0.0.${100 + k}`)));
    const want = ['10.0.0.5', ...Array.from({ length: 20 }, (_, k) => `10.0.0.${100 + k}`)].sort();
    for (const i of [0, 1]) await waitFor(`node${i + 1} has all 21 records`, 10_000, async () => JSON.stringify(await cas(i)) === JSON.stringify(want));

    // A removal on node2 is a removal on node1.
    await t[1]!.ok('Remove-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.0.5');
    await waitFor('node1 lost 10.0.0.5', 10_000, async () => !(await cas(0)).includes('10.0.0.5'));

    // node2's daemon is down while node1 changes the policy: it catches up when it comes back.
    await daemons[1]!.kill();
    await record(0, '10.0.0.7');
    await daemons[1]!.launch();
    await waitFor('node2 caught up', 30_000, async () => (await cas(1).catch((): string[] => [])).includes('10.0.0.7'));
    assert.equal((await records(1)).find((r) => r.CustomerAddress === '10.0.0.7')!.ProviderAddress, PA[0]);
    assert.deepEqual(await pas(1), [PA[1]]);
  });
});
