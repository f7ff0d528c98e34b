// Bandwidth QoS in virtual time: MaximumBandwidth holds a sender to its cap within ±10 %; two
// senders of weight 1 and 3 through a congested port split its capacity 1:3 within 10 %, and the
// share of a sender that goes idle goes to the busy one; Absolute mode does the same with floors.
// The switch's clock is the bench's and its timers are node:test's mock timers, both advanced
// 1 ms at a time: the shapers see exactly the load offered, whatever the machine's load (these
// ran on the real clock before and failed on a loaded machine, the senders' timer starved).
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { macToNumber } from '../packet/index.ts';
import { Bench, eth, mac } from './test-support.ts';

const FRAME = 1514;

interface Sender { port: string; mac: string; to: string; bps: number; due: number }

/** `ms` of virtual time in 1 ms steps: each sender offers the full-size frames its rate has made due, then the clock and the switch's timers move on. */
function drive(b: Bench, senders: Sender[], ms: number): void {
  for (let i = 0; i < ms; i++) {
    for (const s of senders) {
      s.due += s.bps / 8 / 1000;
      for (; s.due >= FRAME; s.due -= FRAME) b.send(s.port, eth(s.mac, s.to, { payload: new Uint8Array(FRAME - 14) }));
    }
    b.clock.advance(1);
    mock.timers.tick(1);
  }
}

/** Bits/s received by `port` per source MAC while `ms` of virtual time run. */
function measure(b: Bench, port: string, senders: Sender[], ms: number): Map<number, number> {
  b.take(port);
  drive(b, senders, ms);
  const out = new Map<number, number>();
  for (const f of b.take(port)) { const m = macToNumber(f, 6); out.set(m, (out.get(m) ?? 0) + f.length); }
  for (const [m, bytes] of out) out.set(m, (bytes * 8) / (ms / 1000));
  return out;
}

/** A bench whose switch runs on the bench's clock and mock timers (restored by `done`). */
async function virtualBench(settings: Parameters<typeof Bench.create>[0] = {}): Promise<{ b: Bench; done: () => Promise<void> }> {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const b = await Bench.create(settings);
  return { b, done: async () => { await b.sw.close(); mock.timers.reset(); } };
}

const within = (actual: number, expected: number, tol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= expected * tol, `${what}: ${actual.toFixed(2)} vs ${expected.toFixed(2)} expected`);
const mbps = (bps: number): number => bps / 1e6;

test('MaximumBandwidth 10 Mbit/s caps a 40 Mbit/s sender within ±10 %', async () => {
  const { b, done } = await virtualBench();
  try {
    await b.port('a', { mac: mac(1), bandwidth: { maximumBandwidth: 10e6 } });
    await b.port('b', { mac: mac(2) });
    b.send('b', eth(mac(2), mac(1)));
    const senders = [{ port: 'a', mac: mac(1), to: mac(2), bps: 40e6, due: 0 }];
    drive(b, senders, 300);
    const r = measure(b, 'b', senders, 2000);
    within(mbps(r.get(0x525400000001) ?? 0), 10, 0.1, 'capped rate, Mbit/s');
    assert.ok((b.drops('a')['rate-limit'] ?? 0) > 0, 'excess injected frames dropped and counted');
  } finally {
    await done();
  }
});

for (const mode of ['Weight', 'Absolute'] as const) {
  test(`MinimumBandwidth ${mode}: 1:3 split of a congested port within 10 %; an idle sender's share goes to the busy one`, async () => {
    const { b, done } = await virtualBench({ minimumBandwidthMode: mode });
    try {
      const bw = (n: number): { minimumBandwidthWeight: number } | { minimumBandwidthAbsolute: number } =>
        mode === 'Weight' ? { minimumBandwidthWeight: 10 * n } : { minimumBandwidthAbsolute: 5e6 * n };
      await b.port('s1', { mac: mac(1), bandwidth: bw(1) });
      await b.port('s3', { mac: mac(3), bandwidth: bw(3) });
      await b.port('dst', { mac: mac(9), egressCapacity: 20e6 });
      b.send('dst', eth(mac(9), 'ff:ff:ff:ff:ff:ff'));
      const senders = [
        { port: 's1', mac: mac(1), to: mac(9), bps: 30e6, due: 0 },
        { port: 's3', mac: mac(3), to: mac(9), bps: 30e6, due: 0 },
      ];
      drive(b, senders, 300);
      const r = measure(b, 'dst', senders, 2000);
      const r1 = r.get(0x525400000001) ?? 0, r3 = r.get(0x525400000003) ?? 0;
      within(mbps(r1 + r3), 20, 0.1, 'total through the congested port, Mbit/s');
      within(r3 / r1, 3, 0.1, 'the weight-3 sender\'s share over the weight-1 sender\'s');
      assert.ok((b.drops('dst').congestion ?? 0) > 0);
      senders[0]!.bps = 0;
      drive(b, senders, 300);
      const alone = measure(b, 'dst', senders, 1500);
      within(mbps(alone.get(0x525400000003) ?? 0), 20, 0.1, 'busy sender alone, Mbit/s');
    } finally {
      await done();
    }
  });
}
