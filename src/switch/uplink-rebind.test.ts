// VirtualSwitch.setUplink (Set-VMSwitch -NetAdapterName / -SwitchType): a live switch moves its
// uplink to another UDP tunnel or drops it, VM ports untouched; a bind that fails changes
// nothing; an External switch may run without an uplink (its host adapter is missing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { VirtualSwitch } from './index.ts';
import { BCAST, eth, mac, until } from './test-support.ts';

const lo = (localPort: number, remotePort: number) => ({ localAddress: '127.0.0.1', localPort, remoteAddress: '127.0.0.1', remotePort });

test('setUplink: re-bind to another peer, fail without harm, convert to Private; External without an uplink', async () => {
  const base = 40000 + Math.floor(Math.random() * 20000);
  const peer1 = await VirtualSwitch.create({ name: 'p1', type: 'External', uplink: lo(base + 1, base) });
  const peer2 = await VirtualSwitch.create({ name: 'p2', type: 'External', uplink: lo(base + 3, base + 2) });
  const sw = await VirtualSwitch.create({ name: 'ext', type: 'External' });
  const got: Record<string, number> = { p1: 0, p2: 0 };
  const blocker = createSocket('udp4');
  try {
    await peer1.addPort({ id: 'x', sink: () => { got.p1!++; } });
    await peer2.addPort({ id: 'y', sink: () => { got.p2!++; } });
    await sw.addPort({ id: 'a', sink: () => undefined, policy: { mac: mac(1) } });
    assert.deepEqual(sw.listPorts().map((p) => p.kind), ['sink'], 'a degraded External switch: no uplink');

    await sw.setUplink('External', lo(base, base + 1));
    sw.inject('a', eth(mac(1), BCAST));
    await until(() => got.p1 === 1);

    await sw.setUplink('External', lo(base + 2, base + 3));
    sw.inject('a', eth(mac(1), BCAST));
    await until(() => got.p2 === 1);
    assert.equal(got.p1, 1, 'the old tunnel is closed');
    assert.deepEqual(sw.settings.uplink, lo(base + 2, base + 3));

    await new Promise<void>((r) => blocker.bind(base + 4, '127.0.0.1', () => r()));
    await assert.rejects(sw.setUplink('External', lo(base + 4, base + 1)), (e: Error & { code?: string }) => e.code === 'SWITCH_UPLINK');
    assert.deepEqual(sw.settings.uplink, lo(base + 2, base + 3), 'a failed bind leaves the old uplink');
    sw.inject('a', eth(mac(1), BCAST));
    await until(() => got.p2 === 2);

    await sw.setUplink('Private', undefined);
    assert.equal(sw.settings.type, 'Private');
    assert.deepEqual(sw.listPorts().map((p) => p.id), ['a'], 'uplink gone, the VM port stays');
    assert.ok(sw.stats().txFrames >= 3, 'the closed uplinks\' counters stay in the switch totals');
    await assert.rejects(sw.setUplink('Private', lo(base + 5, base + 6)), /only an External switch has an uplink/);
  } finally {
    blocker.close();
    for (const s of [sw, peer1, peer2]) await s.close();
  }
});
