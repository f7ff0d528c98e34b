import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applySample, baselineOf, meteringReport, newMeteringState, resetMeteringState, timeSpanText, type Reading, type Sample } from './metering-state.ts';

const MB = 1024 * 1024;
const sample = (readings: Reading[], over: Partial<Sample> = {}): Sample => ({ seconds: 1, running: true, memoryBytes: 256 * MB, diskAllocatedBytes: 10 * MB, readings, ...over });
const cpu = (value: number, key = 'cpu:10/11'): Reading => ({ key, counter: 'cpuSeconds', value, onFirstSight: 'count' });
const meterIn = (value: number, range = '10.1.0.0/16'): Reading => ({ key: `net:a:${range}:in`, counter: `rangeInboundBytes:${range}`, value, onFirstSight: 'baseline' });

test('deltas: a new counting source counts from zero, a baseline source only from its first reading', () => {
  let s = newMeteringState('2026-12-06T00:00:00.000Z');
  s = applySample(s, sample([cpu(2), meterIn(5000)]));
  assert.equal(s.counters.cpuSeconds, 2);
  assert.equal(s.counters['rangeInboundBytes:10.1.0.0/16'], 0, 'restored meter: already counted');
  s = applySample(s, sample([cpu(2.5), meterIn(8000)]));
  assert.equal(s.counters.cpuSeconds, 2.5);
  assert.equal(s.counters['rangeInboundBytes:10.1.0.0/16'], 3000);
});

test('a counter that starts over counts from zero; a vanished key is forgotten', () => {
  let s = applySample(newMeteringState('t'), sample([cpu(10)]));
  s = applySample(s, sample([cpu(1)])); // a new QEMU reusing the key
  assert.equal(s.counters.cpuSeconds, 11);
  s = applySample(s, sample([], { running: false }));
  assert.deepEqual(s.last, {});
  s = applySample(s, sample([cpu(3, 'cpu:20/21')]));
  assert.equal(s.counters.cpuSeconds, 14);
});

test('reset zeroes the totals but keeps the sources\' positions', () => {
  let s = applySample(newMeteringState('t0'), sample([cpu(10)]));
  s = resetMeteringState(s, 't1');
  assert.equal(s.resetAt, 't1');
  assert.equal(s.durationSeconds, 0);
  s = applySample(s, sample([cpu(12)]));
  assert.equal(s.counters.cpuSeconds, 2, 'only what ran after the reset');
});

test('memory: average over the metered time (Off adds 0), min/max while running; disk: the largest allocation', () => {
  let s = newMeteringState('t');
  s = applySample(s, sample([], { seconds: 2, memoryBytes: 512 * MB, diskAllocatedBytes: 30 * MB }));
  s = applySample(s, sample([], { seconds: 2, memoryBytes: 256 * MB, diskAllocatedBytes: 20 * MB }));
  s = applySample(s, sample([], { seconds: 4, running: false, memoryBytes: 0, diskAllocatedBytes: 20 * MB }));
  const r = meteringReport(s, 2000);
  assert.equal(r.AverageMemoryUsage, 192); // (512·2 + 256·2) / 8
  assert.equal(r.MinimumMemoryUsage, 256);
  assert.equal(r.MaximumMemoryUsage, 512);
  assert.equal(r.TotalDiskAllocation, 30);
  assert.equal(r.MeteringDuration.TotalSeconds, 8);
});

test('report: CPU MHz is the share of time × host MHz; IOPS over the duration; latency per operation; traffic by range and direction', () => {
  let s = newMeteringState('t');
  const disk = (read: number, written: number, nios: number, lat: number, n: number): Reading[] => [
    { key: 'disk:x:read', counter: 'diskReadBytes', value: read, onFirstSight: 'count' },
    { key: 'disk:x:written', counter: 'diskWrittenBytes', value: written, onFirstSight: 'count' },
    { key: 'disk:x:nios', counter: 'normalizedIos', value: nios, onFirstSight: 'count' },
    { key: 'disk:x:lat', counter: 'latencyMsSum', value: lat, onFirstSight: 'count' },
    { key: 'disk:x:n', counter: 'latencyCount', value: n, onFirstSight: 'count' },
  ];
  const out = (v: number, range: string): Reading => ({ key: `net:a:${range}:out`, counter: `rangeOutboundBytes:${range}`, value: v, onFirstSight: 'baseline' });
  s = applySample(s, sample([cpu(0), ...disk(0, 0, 0, 0, 0), meterIn(0), out(0, '10.2.0.0/16')], { seconds: 1 }));
  s = applySample(s, sample([cpu(5), ...disk(3 * MB, 5 * MB, 1000, 30, 20), meterIn(7 * MB), out(2 * MB, '10.2.0.0/16')], { seconds: 9 }));
  const r = meteringReport(s, 3000);
  assert.equal(r.AverageProcessorUsage, 1500); // 5 s of 10 s at 3000 MHz
  assert.equal(r.AggregatedAverageNormalizedIOPS, 100);
  assert.equal(r.AggregatedAverageLatency, 1.5);
  assert.equal(r.AggregatedDiskDataRead, 3);
  assert.equal(r.AggregatedDiskDataWrittenBytes, 5 * MB);
  assert.deepEqual(r.NetworkMeteredTrafficReport, [
    { LocalAddress: null, RemoteAddress: '10.1.0.0/16', Direction: 'Inbound', TotalTraffic: 7, TotalTrafficBytes: 7 * MB },
    { LocalAddress: null, RemoteAddress: '10.2.0.0/16', Direction: 'Outbound', TotalTraffic: 2, TotalTrafficBytes: 2 * MB },
  ]);
});

test('TimeSpan text', () => {
  assert.equal(timeSpanText(0), '00:00:00');
  assert.equal(timeSpanText(3725.9), '01:02:05');
  assert.equal(timeSpanText(90061), '1.01:01:01');
});

test('enabling on a running VM counts from the sources\' current values', () => {
  let s = baselineOf(newMeteringState('t'), [cpu(40)]);
  s = applySample(s, sample([cpu(41)]));
  assert.equal(s.counters.cpuSeconds, 1);
});
