// Which addresses Get-VMNetworkAdapter shows on which adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapterAddresses } from './adapter-addresses.ts';

test('adapter addresses: matched by MAC from the agent\'s NetworkInterfaces; VM-wide lists from an older agent', () => {
  const kvp = {
    NetworkAddressIPv4: ['10.0.0.1', '10.9.0.1'], NetworkAddressIPv6: ['fe80::1'],
    NetworkInterfaces: [
      { Name: 'eth0', MacAddress: '00:15:5d:00:00:01', IPv4: ['10.0.0.1'], IPv6: ['fe80::1'] },
      { Name: 'eth0.10', MacAddress: '00:15:5d:00:00:01', IPv4: ['10.10.0.1'], IPv6: [] },
      { Name: 'eth1', MacAddress: '00:15:5d:00:00:02', IPv4: ['10.9.0.1'], IPv6: [] },
    ],
  };
  assert.deepEqual(adapterAddresses(kvp, '00:15:5D:00:00:01'), ['10.0.0.1', '10.10.0.1', 'fe80::1']);
  assert.deepEqual(adapterAddresses(kvp, '00:15:5D:00:00:02'), ['10.9.0.1']);
  assert.deepEqual(adapterAddresses(kvp, '00:15:5D:00:00:03'), []);
  const { NetworkInterfaces: _, ...old } = kvp;
  assert.deepEqual(adapterAddresses(old, '00:15:5D:00:00:02'), ['10.0.0.1', '10.9.0.1', 'fe80::1']);
});
