import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LATENCY_BUCKETS_MS, MeteringStage } from './metering.ts';
import type { IoKind, IoRequest, IoResult } from './pipeline.ts';

const req = (kind: IoKind, length: number): IoRequest => ({ kind, offset: 0, length, fua: false, noHole: false, exportName: 'x' });

test('latency: sum and count of reads and writes only, a cumulative histogram that ends at or below the count', async () => {
  const m = new MeteringStage();
  const done = () => Promise.resolve({} as IoResult);
  // One request held until a later turn of the event loop, so not every latency is the same.
  const late = () => new Promise<IoResult>((r) => setTimeout(() => r({}), 5));
  for (let i = 0; i < 10; i++) await m.handle(req(i % 2 ? 'write' : 'read', 4096), i === 3 ? late : done);
  await m.handle(req('flush', 0), done);
  const c = m.counters();
  assert.equal(c.latencyCount, 10);
  assert.equal(c.totalOperations, 11);
  assert.equal(c.latencyBuckets.length, LATENCY_BUCKETS_MS.length);
  for (let i = 1; i < c.latencyBuckets.length; i++) assert.ok(c.latencyBuckets[i]! >= c.latencyBuckets[i - 1]!, 'cumulative');
  assert.ok(c.latencyBuckets.at(-1)! <= 10);
  assert.ok(c.latencyBuckets[0]! < 10, 'the held request is above the first bound');
  assert.ok(Math.abs(c.averageLatencyMs - c.latencyMsSum / c.latencyCount) < 1e-9);
  assert.equal(c.bytesRead + c.bytesWritten, 40960);
});
