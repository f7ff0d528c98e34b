// Virtual subnets in the switch (Set-VMNetworkAdapter -VirtualSubnetId) without any
// virtualization extension: ports are bridged only within their VSID, two tenants' equal MACs
// are learned apart, the uplink never sees a subnet's frames; and the extension API a
// virtualization extension stands on: forward() delivering frames it built (back to the
// ingress port too) with a drop reason counted, 'default' forwarding, egress() rewriting; and
// the flow a forwarding extension offers with a decision, which the switch's flow cache keeps:
// the flow's next frames skip forward() and are built by the flow, until it or the switch says
// it is stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_STALE, registerExtension, type ExtensionFlow } from './index.ts';
import { BCAST, Bench, eth, mac, udp } from './test-support.ts';

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

/** test.flow's state: forward() calls, build() calls, and whether its flow says it is stale. */
const flowExt = { forwards: 0, builds: 0, stale: false };
const marked = (frame: Uint8Array, out: Uint8Array | null): Uint8Array => {
  const f = out ?? new Uint8Array(frame.length);
  f.set(frame);
  f[f.length - 1] = 0x77;
  return f;
};
const offered: ExtensionFlow = {
  length: (n) => (flowExt.stale ? FLOW_STALE : n),
  offset: () => -1,
  build: (frame, _info, out) => { flowExt.builds++; return marked(frame, out); },
};
registerExtension({
  name: 'test.flow', type: 'forwarding', description: 'IPv4 from p1 to p2: built (last byte 0x77), offered as a flow; default for the rest',
  create: () => ({
    forward: (f) => {
      flowExt.forwards++;
      if (f.sourcePort !== 'p1' || f.info.ipVersion !== 4) return 'default';
      return { deliver: [{ port: 'p2', frame: marked(f.frame, null) }], flow: offered };
    },
  }),
});

test('a forwarding extension\'s offered flow: cached, built per frame without forward(), until it or the switch says it is stale', async () => {
  const b = await Bench.create();
  await b.port('p1', { mac: mac(1) });
  await b.port('p2', { mac: mac(2) });
  b.sw.addExtension('test.flow');
  const frame = udp(mac(1), mac(2), '10.0.0.1', '10.0.0.2', 1000, 2000);
  const sendAndCount = (): [number, number] => {
    const f0 = flowExt.forwards, b0 = flowExt.builds;
    b.send('p1', frame);
    const got = b.take('p2');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.at(-1), 0x77, 'the built frame');
    return [flowExt.forwards - f0, flowExt.builds - b0];
  };
  assert.deepEqual(sendAndCount(), [1, 0], 'the first frame: forward()');
  assert.deepEqual(sendAndCount(), [0, 1], 'the next: the cached flow builds it');
  assert.deepEqual(sendAndCount(), [0, 1]);
  flowExt.stale = true;
  assert.deepEqual(sendAndCount(), [1, 0], 'stale: forward() again, nothing done twice');
  flowExt.stale = false;
  assert.deepEqual(sendAndCount(), [0, 1], 'offered again');
  await b.port('p3', { mac: mac(3) });
  assert.deepEqual(sendAndCount(), [1, 0], 'a port change: the switch\'s entry is stale');
  assert.deepEqual(sendAndCount(), [0, 1]);
  b.sw.disableExtension('test.flow');
  b.send('p1', frame);
  assert.equal(b.take('p2')[0]!.at(-1), frame.at(-1), 'the extension disabled: its flow is not used');
  b.sw.enableExtension('test.flow');
  // Frames of a port the extension never offered a flow for do not probe the cache.
  const misses = b.sw.flowCacheStats()!.misses;
  b.send('p2', udp(mac(2), mac(1), '10.0.0.2', '10.0.0.1', 2000, 1000));
  b.send('p2', udp(mac(2), mac(1), '10.0.0.2', '10.0.0.1', 2000, 1000));
  assert.equal(b.take('p1').length, 2, 'default forwarding');
  assert.equal(b.sw.flowCacheStats()!.misses, misses);
  await b.sw.close();
});
