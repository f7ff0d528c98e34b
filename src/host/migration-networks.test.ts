import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addNetwork, canonicalSubnet, checkNetworks, listenAddress, removeNetwork, selectNetworks, setNetwork, sourceAddress, type MigrationNetwork,
} from './migration-networks.ts';

const code = (c: string, re?: RegExp) => (e: Error & { code?: string }) => e.code === c && (re === undefined || re.test(e.message));

test('subnets: canonical form, refusals that name the parameter and the fix', () => {
  assert.equal(canonicalSubnet(' 10.1.0.0/16 '), '10.1.0.0/16');
  assert.equal(canonicalSubnet('FD00:0001:0:0:0:0:0:0/64'), 'fd00:1::/64');
  assert.equal(canonicalSubnet('::/0'), '::/0');
  assert.equal(canonicalSubnet('2001:db8:0:0:1:0:0:0/80'), '2001:db8:0:0:1::/80', 'the longest zero run is compressed');
  assert.throws(() => canonicalSubnet('10.1.2.3/16'), code('INVALID_ARGUMENT', /Subnet: '10\.1\.2\.3\/16' has host bits set: the subnet is 10\.1\.0\.0\/16/));
  assert.throws(() => canonicalSubnet('fd00::1/64'), /the subnet is fd00::\/64/);
  assert.throws(() => canonicalSubnet('10.1.0.0'), /ADDRESS\/PREFIX/);
  assert.throws(() => canonicalSubnet('10.1.0.0/33'), /0 to 32/);
  assert.throws(() => canonicalSubnet('host.example/24'), /not a subnet/);
  assert.throws(() => canonicalSubnet('::ffff:10.0.0.0/120'), /hex groups/);
});

test('Add/Set/Remove/Get keep one entry per subnet, ordered by priority', () => {
  let l: MigrationNetwork[] = [];
  l = addNetwork(l, '10.2.0.0/16');
  l = addNetwork(l, '10.1.0.0/16', 0);
  l = addNetwork(l, 'fd00::/64');
  assert.deepEqual(l, [{ Subnet: '10.1.0.0/16', Priority: 0 }, { Subnet: '10.2.0.0/16', Priority: 0 }, { Subnet: 'fd00::/64', Priority: 1 }]);
  assert.throws(() => addNetwork(l, '10.1.0.0/16'), code('ALREADY_EXISTS'));
  assert.throws(() => addNetwork(l, '10.3.0.0/16', -1), code('INVALID_ARGUMENT', /Priority/));
  l = setNetwork(l, '10.2.0.0/16', { NewPriority: 5 });
  l = setNetwork(l, '10.1.0.0/16', { NewSubnet: '10.9.0.0/16' });
  assert.deepEqual(l.map((n) => `${n.Subnet}@${n.Priority}`), ['10.9.0.0/16@0', 'fd00::/64@1', '10.2.0.0/16@5']);
  assert.throws(() => setNetwork(l, '10.9.0.0/16', { NewSubnet: 'fd00::/64' }), code('ALREADY_EXISTS'));
  assert.throws(() => setNetwork(l, '10.9.0.0/16', {}), code('INVALID_ARGUMENT', /NewSubnet or -NewPriority/));
  assert.throws(() => setNetwork(l, '10.7.0.0/16', { NewPriority: 1 }), code('NOT_FOUND'));
  assert.deepEqual(selectNetworks(l, { Priority: 1 }), [{ Subnet: 'fd00::/64', Priority: 1 }]);
  assert.deepEqual(selectNetworks(l, { Subnet: '10.2.0.0/16' }).length, 1);
  l = removeNetwork(l, 'FD00::/64');
  assert.throws(() => removeNetwork(l, 'fd00::/64'), code('NOT_FOUND'));
  assert.deepEqual(checkNetworks(l), l);
  assert.deepEqual(checkNetworks(undefined), []);
  assert.throws(() => checkNetworks([{ Subnet: '10.0.0.1/8', Priority: 0 }]), /host bits/);
});

test('the stream: the destination binds in its best network, the source sends only into its networks', () => {
  const locals = ['127.0.0.1', '10.1.5.7', '192.168.3.4', 'fe80::1'];
  const networks = [{ Subnet: '192.168.0.0/16', Priority: 1 }, { Subnet: '10.1.0.0/16', Priority: 0 }];
  assert.equal(listenAddress({ useAny: true, networks }, locals, '127.0.0.1'), '127.0.0.1', 'any network: the API address');
  assert.equal(listenAddress({ useAny: false, networks: [] }, locals, '127.0.0.1'), '127.0.0.1', 'none listed: the API address');
  assert.equal(listenAddress({ useAny: false, networks }, locals, '127.0.0.1'), '10.1.5.7', 'the best priority holding an address');
  assert.equal(listenAddress({ useAny: false, networks: [{ Subnet: '172.16.0.0/12', Priority: 0 }, ...networks] }, locals, '127.0.0.1'), '10.1.5.7');
  assert.throws(() => listenAddress({ useAny: false, networks: [{ Subnet: '172.16.0.0/12', Priority: 0 }] }, locals, '127.0.0.1'),
    code('MIGRATION_NO_NETWORK', /no address on its migration networks \(172\.16\.0\.0\/12\)/));
  assert.equal(sourceAddress({ useAny: false, networks }, locals, '192.168.9.9'), '192.168.3.4');
  assert.equal(sourceAddress({ useAny: true, networks }, locals, '8.8.8.8'), undefined);
  assert.equal(sourceAddress({ useAny: false, networks: [{ Subnet: 'fe80::/10', Priority: 0 }] }, locals, 'fe80::2'), 'fe80::1');
  assert.throws(() => sourceAddress({ useAny: false, networks }, locals, '127.0.0.1'), code('MIGRATION_NO_NETWORK', /127\.0\.0\.1 is on none/));
});
