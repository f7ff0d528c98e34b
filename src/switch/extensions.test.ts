// Extensions: registration, per-switch order and enable/disable, several capture/filter
// extensions at once, one forwarding extension at most, veto of port and policy changes,
// per-switch config; the two built-ins (flow sampler, learned-only forwarding).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerExtension, type ExtensionFrame } from './index.ts';
import { BCAST, Bench, eth, ip, mac, udp } from './test-support.ts';

const seen: string[] = [];
registerExtension({
  name: 'test.trace-a', type: 'capture', description: 'records its name per frame',
  create: () => ({ ingress: () => { seen.push('a-in'); return false; }, egress: (_f, to) => { seen.push(`a-out:${to}`); } }),
});
registerExtension({
  name: 'test.filter-b', type: 'filter', description: 'drops frames with ethertype 0x9999; vetoes VLAN 13',
  create: (_host, config) => {
    let blocked = Number(config.ethertype ?? 0x9999);
    return {
      ingress: (f: ExtensionFrame) => { seen.push('b-in'); return f.info.ethertype !== blocked; },
      egress: (_f, to) => { seen.push(`b-out:${to}`); return to !== 'blocked-port'; },
      checkPortChange: (c) => (c.op !== 'remove' && c.policy.vlan.mode === 'Access' && c.policy.vlan.vlanId === 13 ? 'VLAN 13 is unlucky' : undefined),
      configure: (c) => { blocked = Number(c.ethertype); },
    };
  },
});
registerExtension({ name: 'test.fwd-all', type: 'forwarding', description: 'floods everything', create: () => ({ forward: (_f, c) => c }) });

test('ordering, enable/disable, filter drops, config, veto', async () => {
  const b = await Bench.create();
  await b.port('p1', { mac: mac(1) });
  await b.port('p2', { mac: mac(2) });
  await b.port('blocked-port', { mac: mac(3) });
  b.sw.addExtension('test.filter-b');
  b.sw.addExtension('test.trace-a', { position: 0 });
  assert.deepEqual(b.sw.extensions().map((e) => e.name), ['test.trace-a', 'test.filter-b']);
  seen.length = 0;
  b.send('p1', eth(mac(1), BCAST));
  assert.deepEqual(seen, ['a-in', 'b-in', 'a-out:p2', 'b-out:p2', 'a-out:blocked-port', 'b-out:blocked-port']);
  assert.deepEqual(b.receivers(), ['p2'], 'a capture extension cannot drop; a filter can');
  assert.equal(b.drops('blocked-port').extension, 1);
  b.sw.moveExtension('test.filter-b', 0);
  seen.length = 0;
  b.send('p1', eth(mac(1), BCAST, { ethertype: 0x9999 }));
  assert.deepEqual(seen, ['b-in'], 'filter first, dropped before the capture saw it');
  b.sw.configureExtension('test.filter-b', { ethertype: 0x8888 });
  b.clear();
  b.send('p1', eth(mac(1), BCAST, { ethertype: 0x9999 }));
  assert.deepEqual(b.receivers(), ['p2']);
  b.sw.disableExtension('test.filter-b');
  seen.length = 0;
  b.send('p1', eth(mac(1), BCAST));
  assert.deepEqual(seen, ['a-in', 'a-out:p2', 'a-out:blocked-port']);
  // Veto while enabled only.
  b.sw.enableExtension('test.filter-b');
  await assert.rejects(b.port('p13', { vlan: { mode: 'Access', vlanId: 13 } }), /VLAN 13 is unlucky/);
  assert.throws(() => b.sw.setPortPolicy('p1', { vlan: { mode: 'Access', vlanId: 13 } }), (e: Error & { code?: string }) => e.code === 'SWITCH_VETOED');
  assert.equal(b.sw.port('p1').policy.vlan.mode, 'Untagged', 'a vetoed change leaves the policy as it was');
  b.sw.disableExtension('test.filter-b');
  b.sw.setPortPolicy('p1', { vlan: { mode: 'Access', vlanId: 13 } });
  assert.throws(() => b.sw.addExtension('nope'), /no extension named nope/);
  await b.sw.close();
});

test('at most one forwarding extension; learned-only floods nothing it has not learned', async () => {
  const b = await Bench.create();
  await b.port('a', { mac: mac(1) });
  await b.port('b', { mac: mac(2) });
  await b.port('quiet', { guards: { macAddressSpoofing: 'On' } });
  b.sw.addExtension('vmhost.learned-only');
  assert.throws(() => b.sw.addExtension('test.fwd-all'), /already has an enabled forwarding extension/);
  assert.deepEqual(b.sw.extensions().map((e) => e.name), ['vmhost.learned-only']);
  b.send('a', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), ['b'], 'broadcast only to known ports (configured MAC or seen)');
  b.clear();
  b.send('a', eth(mac(1), mac(9)));
  assert.deepEqual(b.receivers(), [], 'unknown unicast is not flooded');
  assert.equal(b.drops('a')['unknown-destination'], 1);
  b.send('a', eth(mac(1), mac(2)));
  assert.deepEqual(b.receivers(), ['b'], 'configured MAC known before it spoke');
  b.send('quiet', eth(mac(7), mac(1)));
  b.clear();
  b.send('a', eth(mac(1), mac(7)));
  assert.deepEqual(b.receivers(), ['quiet'], 'learned once it spoke');
  assert.equal((b.sw.extensions()[0]!.status as { unknownUnicastDropped: number }).unknownUnicastDropped, 1);
  // The default forwarding comes back when it is disabled; then another may be enabled.
  b.sw.disableExtension('vmhost.learned-only');
  b.clear();
  b.send('a', eth(mac(1), mac(9)));
  assert.deepEqual(b.receivers(), ['b', 'quiet']);
  b.sw.addExtension('test.fwd-all');
  assert.throws(() => b.sw.enableExtension('vmhost.learned-only'), /forwarding extension/);
  await b.sw.close();
});

test('flow sampler: per-port counters, exactly 1-in-N samples, flow estimates', async () => {
  const b = await Bench.create();
  await b.port('a', { mac: mac(1) });
  await b.port('b', { mac: mac(2) });
  b.sw.addExtension('vmhost.flow-sampler', { config: { sampleRate: 10 } });
  for (let i = 0; i < 100; i++) b.send('a', udp(mac(1), mac(2), ip(1), ip(2), 1000, 2000));
  for (let i = 0; i < 30; i++) b.send('b', udp(mac(2), mac(1), ip(2), ip(1), 2000, 1000));
  const s = b.sw.extensions()[0]!.status as {
    samplePool: number; ports: Record<string, { frames: number; bytes: number; samples: number }>;
    samples: { srcIp: string; dstPort: number }[]; flows: { flow: string; samples: number; estimatedFrames: number }[];
  };
  assert.equal(s.samplePool, 130);
  assert.equal(s.ports.a!.frames, 100);
  assert.equal(s.samples.length, 13);
  assert.equal(s.flows[0]!.flow, '10.0.0.1 10.0.0.2 17 1000 2000');
  assert.equal(s.flows[0]!.estimatedFrames, 100);
  await b.sw.close();
});
