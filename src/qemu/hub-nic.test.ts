import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubNicArgs, parseUplinks } from './hub-nic.ts';

test('parseUplinks reads generations and peers of one NIC only', () => {
  const info = 'hub 1\r\n \\ n0-up4: n0-st4: index=0,type=stream,unix:/run/p.sock\r\n \\ n0-up3\r\n \\ n0-hp0\r\n \\ n01-up7\r\nhub 2\r\n \\ n1-up0\r\n';
  assert.deepEqual(parseUplinks(info, 'n0'), [{ gen: 4, peer: 'n0-st4' }, { gen: 3, peer: null }]);
  assert.deepEqual(parseUplinks(info, 'n1'), [{ gen: 0, peer: null }]);
  assert.deepEqual(parseUplinks(info, 'n9'), []);
});

test('hubNicArgs: a disconnected NIC still has a peerless uplink, so its hub never has port 0 alone', () => {
  const off = hubNicArgs({ id: 'n0', mac: '00155D000001', model: 'virtio', hub: 1, streamSocketPath: null }, 2);
  assert.deepEqual(off, ['-netdev', 'hubport,id=n0-up0,hubid=1', '-netdev', 'hubport,id=n0-hp0,hubid=1', '-device', 'virtio-net-pci,netdev=n0-hp0,mac=00155d000001,id=n0']);
  const on = hubNicArgs({ id: 'n0', mac: '00155D000001', model: 'legacy', hub: 1, streamSocketPath: '/run/a,b.sock' }, 1);
  assert.deepEqual(on.slice(0, 4), ['-netdev', 'stream,id=n0-st0,server=off,addr.type=unix,addr.path=/run/a,,b.sock', '-netdev', 'hubport,id=n0-up0,hubid=1,netdev=n0-st0']);
  assert.equal(on.at(-1), 'e1000,netdev=n0-hp0,mac=00155d000001,id=n0');
});
