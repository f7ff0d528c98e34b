// Virtual subnets in the switch (Set-VMNetworkAdapter -VirtualSubnetId) without any
// virtualization extension: ports are bridged only within their VSID, two tenants' equal MACs
// are learned apart, the uplink never sees a subnet's frames; and the extension API a
// virtualization extension stands on: forward() delivering frames it built (back to the
// ingress port too) with a drop reason counted, 'default' forwarding, egress() rewriting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerExtension } from './index.ts';
import { BCAST, Bench, eth, mac } from './test-support.ts';

test('ports are bridged only within their virtual subnet; MACs are learned per VSID', async () => {
  const b = await Bench.create();
  await b.port('blue1', { virtualSubnetId: 5001 });
  await b.port('blue2', { virtualSubnetId: 5001 });
  await b.port('red1', { virtualSubnetId: 6001 });
  await b.port('red2', { virtualSubnetId: 6001 });
  await b.port('plain');
  b.send('blue1', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), ['blue2']);
  b.clear();
  // The same MAC in Red: learned in 6001, Blue's entry stays.
  b.send('red1', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), ['red2']);
  b.clear();
  b.send('blue2', eth(mac(2), mac(1)));
  assert.deepEqual(b.receivers(), ['blue1']);
  b.clear();
  b.send('red2', eth(mac(2), mac(1)));
  assert.deepEqual(b.receivers(), ['red1']);
  b.clear();
  b.send('plain', eth(mac(9), BCAST));
  assert.deepEqual(b.receivers(), [], 'a port in no subnet reaches none of them');
  const domains = b.sw.macTable().map((e) => e.domain).sort();
  assert.deepEqual(domains, [0, 5001, 5001, 6001, 6001]);
  assert.throws(() => b.sw.setPortPolicy('plain', { virtualSubnetId: 4095 }), /VirtualSubnetId must be 0 or 4096/);
  b.sw.setPortPolicy('blue2', { virtualSubnetId: 0 });
  b.send('blue1', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), [], 'leaving the subnet leaves its bridge');
  await b.sw.close();
});

registerExtension({
  name: 'test.answer-back', type: 'forwarding', description: 'answers 0x9000 frames to their sender, drops 0x9001, default for the rest',
  create: () => ({
    forward: (f) => {
      if (f.info.ethertype === 0x9000) return { deliver: [{ port: f.sourcePort, frame: eth(mac(0xee), mac(1), { ethertype: 0x9002 }) }] };
      if (f.info.ethertype === 0x9001) return { deliver: [], drop: 'test-refused' };
      return 'default';
    },
  }),
});
registerExtension({
  name: 'test.rewrite', type: 'filter', description: 'egress: gives p2 a 0x9003 frame instead',
  create: () => ({ egress: (_f, to) => (to === 'p2' ? eth(mac(0xee), mac(2), { ethertype: 0x9003 }) : undefined) }),
});

test('forwarding extensions deliver frames they built, count their drops, or leave it to the default', async () => {
  const b = await Bench.create();
  await b.port('p1', { mac: mac(1) });
  await b.port('p2', { mac: mac(2) });
  b.sw.addExtension('test.answer-back');
  b.send('p1', eth(mac(1), BCAST, { ethertype: 0x9000 }));
  const back = b.take('p1');
  assert.equal(back.length, 1, 'delivered back through the ingress port');
  assert.equal((back[0]![12]! << 8) | back[0]![13]!, 0x9002);
  assert.deepEqual(b.receivers(), []);
  b.send('p1', eth(mac(1), BCAST, { ethertype: 0x9001 }));
  assert.equal(b.drops('p1')['test-refused'], 1);
  b.send('p1', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), ['p2'], "'default' floods as the switch would");
  b.clear();
  b.sw.addExtension('test.rewrite');
  b.send('p1', eth(mac(1), mac(2)));
  const got = b.take('p2');
  assert.equal((got[0]![12]! << 8) | got[0]![13]!, 0x9003, 'egress replaced the frame');
  await b.sw.close();
});
