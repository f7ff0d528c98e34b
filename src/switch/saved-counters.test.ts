// restoreCounters: what one switch counted, handed to a new one (a daemon restart), is added to
// what the new port counted meanwhile; meters follow their remote address, a rule gone drops its.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bench, ip, mac, udp } from './test-support.ts';

test('saved port and Meter counters are added to the new port\'s own', async () => {
  const meter = (remote: string) => ({ direction: 'Both' as const, action: 'Meter' as const, remoteIPAddress: remote });
  const a = await Bench.create();
  await a.port('vm', { mac: mac(1), acls: [meter(`${ip(2)}/32`), meter(`${ip(3)}/32`)] });
  await a.port('peer', { mac: mac(2) });
  for (let i = 0; i < 5; i++) a.send('vm', udp(mac(1), mac(2), ip(1), ip(2), 1, 2, new Uint8Array(10 * i)));
  a.send('vm', udp(mac(9), mac(2), ip(1), ip(2), 1, 2)); // spoofed: a drop reason to carry over
  const saved = { counters: a.sw.portStats('vm'), meters: a.sw.meterCounters('vm') };
  await a.sw.close();

  const b = await Bench.create();
  await b.port('vm', { mac: mac(1), acls: [meter(`${ip(2)}/32`)] }); // the .3 rule is gone
  await b.port('peer', { mac: mac(2) });
  const f = udp(mac(1), mac(2), ip(1), ip(2), 1, 2);
  b.send('vm', f); // counted before the restore: kept
  b.sw.restoreCounters('vm', saved);
  const st = b.sw.portStats('vm');
  assert.equal(st.rxFrames, saved.counters.rxFrames + 1);
  assert.equal(st.rxBytes, saved.counters.rxBytes + f.length);
  assert.equal(st.drops['mac-spoofing'], 1);
  const [m] = b.sw.meterCounters('vm');
  assert.equal(b.sw.meterCounters('vm').length, 1);
  assert.equal(m!.outboundFrames, 6);
  assert.equal(m!.outboundBytes, saved.meters[0]!.outboundBytes + f.length);
  assert.ok(saved.meters[0]!.outboundBytes > 0);
  await b.sw.close();
});
