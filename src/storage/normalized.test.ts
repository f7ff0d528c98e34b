// Normalized I/O counting and the QoS stage in isolation (no sockets): pacing of a flood at
// a cap, raising and lifting the cap while requests wait, and the pass-through without limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizedIos } from './normalized.ts';
import { QosStage } from './qos.ts';
import type { IoRequest, IoResult } from './pipeline.ts';

const req = (kind: IoRequest['kind'], length: number): IoRequest => ({ kind, offset: 0, length, fua: false, noHole: false, exportName: 'x' });
const done = async (): Promise<IoResult> => ({});

test('each 8 KiB or part of it is one normalized I/O', () => {
  assert.equal(normalizedIos(req('read', 512)), 1);
  assert.equal(normalizedIos(req('write', 4096)), 1);
  assert.equal(normalizedIos(req('write', 8192)), 1);
  assert.equal(normalizedIos(req('read', 8193)), 2);
  assert.equal(normalizedIos(req('read', 1 << 20)), 128);
  assert.equal(normalizedIos(req('trim', 1 << 30)), 1);
  assert.equal(normalizedIos(req('write-zeroes', 1 << 20)), 1);
  assert.equal(normalizedIos(req('flush', 0)), 0);
  assert.equal(normalizedIos(req('block-status', 1 << 30)), 0);
});

async function flood(q: QosStage, ms: number, depth: number, length: number): Promise<number> {
  let ios = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const r = req('read', length);
      await q.handle(r, done);
      ios += normalizedIos(r);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return ios;
}

test('a cap paces a flood smoothly; changing it takes effect at once', async () => {
  const q = new QosStage({ exportName: 'x' });
  q.set({ maximumIops: 1000 });
  // 16 KiB requests cost 2; 1.5 s at 1000 normalized IOPS (+ at most 200 ms of banked credit).
  const t0 = performance.now();
  const ios = await flood(q, 1500, 8, 16384);
  const rate = (ios * 1000) / (performance.now() - t0);
  assert.ok(rate > 900 && rate < 1250, `rate ${rate.toFixed(0)}`);
  // A request stuck behind a tiny cap is released when the cap goes away.
  q.set({ maximumIops: 1 });
  await q.handle(req('read', 8192), done);
  const slow = q.handle(req('read', 1 << 20), done); // 128 I/Os at 1 IOPS would take minutes
  const waiting = q.handle(req('read', 8192), done);
  await new Promise((r) => setTimeout(r, 20));
  q.set({ maximumIops: 0 });
  await Promise.all([slow, waiting]);
  assert.deepEqual(q.limits, { maximumIops: 0, minimumIops: 0 });
  q.close();
});

test('no limits: requests pass straight through', async () => {
  const q = new QosStage({ exportName: 'x' });
  const t0 = performance.now();
  const ios = await flood(q, 200, 4, 4096);
  assert.ok(ios > 1000, `only ${ios} in 200 ms`);
  assert.ok(performance.now() - t0 < 1000);
  q.close();
});

test('minimum IOPS: evaluate() alerts once per episode and restores', async () => {
  const q = new QosStage({ exportName: 'x', windowMs: 60_000 });
  const events: string[] = [];
  q.on('minimum-iops-alert', () => events.push('alert'));
  q.on('minimum-iops-restored', () => events.push('restored'));
  q.set({ minimumIops: 1_000_000 });
  let release: () => void = () => undefined;
  const blocked = q.handle(req('read', 4096), () => new Promise<IoResult>((r) => (release = () => r({}))));
  await new Promise((r) => setTimeout(r, 30));
  q.evaluate();
  q.evaluate();
  assert.deepEqual(events, ['alert']);
  release();
  await blocked;
  await new Promise((r) => setTimeout(r, 10));
  q.evaluate(); // the window had demand for a moment only
  q.evaluate(); // idle window: no demand, episode over
  assert.deepEqual(events, ['alert', 'restored']);
  q.close();
});
