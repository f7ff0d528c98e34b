// Bandwidth QoS under a synthetic load (real clock): MaximumBandwidth holds a sender to its
// cap within ±10 %; two senders of weight 1 and 3 through a congested port split its capacity
// 1:3 within 10 %, and the share of a sender that goes idle goes to the busy one; Absolute
// mode does the same with floors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { macToNumber } from '../packet/index.ts';
import { Bench, eth, mac } from './test-support.ts';

const FRAME = 1514;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Offers `bps` of full-size frames from each sender until stop() is called. */
function load(b: Bench, senders: { port: string; mac: string; to: string; bps: number }[]): { stop: () => void; set: (port: string, bps: number) => void } {
  const t0 = performance.now();
  const sent = new Map(senders.map((s) => [s.port, 0]));
  const rate = new Map(senders.map((s) => [s.port, s.bps]));
  const since = new Map(senders.map((s) => [s.port, t0]));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const s of senders) {
      const due = ((now - since.get(s.port)!) / 1000) * rate.get(s.port)! / 8;
      while (sent.get(s.port)! + FRAME <= due) {
        b.send(s.port, eth(s.mac, s.to, { payload: new Uint8Array(FRAME - 14) }));
        sent.set(s.port, sent.get(s.port)! + FRAME);
      }
    }
  }, 1);
  return {
    stop: () => clearInterval(timer),
    set: (port, bps) => { rate.set(port, bps); since.set(port, performance.now()); sent.set(port, 0); },
  };
}

/** Bytes received by `port` per source MAC during `ms`, as bits/s. */
async function measure(b: Bench, port: string, ms: number): Promise<Map<number, number>> {
  b.take(port);
  const t0 = performance.now();
  await sleep(ms);
  const frames = b.take(port);
  const secs = (performance.now() - t0) / 1000;
  const out = new Map<number, number>();
  for (const f of frames) { const m = macToNumber(f, 6); out.set(m, (out.get(m) ?? 0) + f.length); }
  for (const [m, bytes] of out) out.set(m, (bytes * 8) / secs);
  return out;
}

const within = (actual: number, expected: number, tol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= expected * tol, `${what}: ${(actual / 1e6).toFixed(2)} Mbit/s vs ${(expected / 1e6).toFixed(2)} expected`);

test('MaximumBandwidth 10 Mbit/s caps a 40 Mbit/s sender within ±10 %', async () => {
  const b = await Bench.create({}, true);
  await b.port('a', { mac: mac(1), bandwidth: { maximumBandwidth: 10e6 } });
  await b.port('b', { mac: mac(2) });
  b.send('b', eth(mac(2), mac(1)));
  const l = load(b, [{ port: 'a', mac: mac(1), to: mac(2), bps: 40e6 }]);
  try {
    await sleep(300);
    const r = await measure(b, 'b', 2000);
    within(r.get(0x525400000001) ?? 0, 10e6, 0.1, 'capped rate');
    assert.ok((b.drops('a')['rate-limit'] ?? 0) > 0, 'excess injected frames dropped and counted');
  } finally {
    l.stop();
    await b.sw.close();
  }
});

for (const mode of ['Weight', 'Absolute'] as const) {
  test(`MinimumBandwidth ${mode}: 1:3 split of a congested port within 10 %; an idle sender's share goes to the busy one`, async () => {
    const b = await Bench.create({ minimumBandwidthMode: mode }, true);
    const bw = (n: number): { minimumBandwidthWeight: number } | { minimumBandwidthAbsolute: number } =>
      mode === 'Weight' ? { minimumBandwidthWeight: 10 * n } : { minimumBandwidthAbsolute: 5e6 * n };
    await b.port('s1', { mac: mac(1), bandwidth: bw(1) });
    await b.port('s3', { mac: mac(3), bandwidth: bw(3) });
    await b.port('dst', { mac: mac(9), egressCapacity: 20e6 });
    b.send('dst', eth(mac(9), 'ff:ff:ff:ff:ff:ff'));
    const l = load(b, [
      { port: 's1', mac: mac(1), to: mac(9), bps: 30e6 },
      { port: 's3', mac: mac(3), to: mac(9), bps: 30e6 },
    ]);
    try {
      await sleep(300);
      const r = await measure(b, 'dst', 2000);
      const r1 = r.get(0x525400000001) ?? 0, r3 = r.get(0x525400000003) ?? 0;
      within(r1 + r3, 20e6, 0.1, 'total through the congested port');
      within(r3 / r1, 3, 0.1 * 3, `ratio ${(r3 / r1).toFixed(2)}`);
      assert.ok((b.drops('dst').congestion ?? 0) > 0);
      l.set('s1', 0);
      await sleep(300);
      const alone = await measure(b, 'dst', 1500);
      within(alone.get(0x525400000003) ?? 0, 20e6, 0.1, 'busy sender alone');
    } finally {
      l.stop();
      await b.sw.close();
    }
  });
}
