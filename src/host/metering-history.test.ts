import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HISTORY_POINTS, MeteringHistory, Ring, type HistorySample } from './metering-history.ts';
import type { Reading } from './metering-state.ts';

const cpu = (v: number): Reading => ({ key: 'cpu:1/1', counter: 'cpuSeconds', value: v, onFirstSight: 'baseline' });
const net = (v: number): Reading => ({ key: 'net:a:in', counter: 'networkInboundBytes', value: v, onFirstSight: 'baseline' });
const at = (cpuSeconds: number, inBytes: number): HistorySample => ({
  sample: { seconds: 1, running: true, memoryBytes: 256 * 1024 * 1024, diskAllocatedBytes: 0, readings: [cpu(cpuSeconds), net(inBytes)] }, memoryDemandBytes: null,
});

test('a ring keeps the newest values, oldest first', () => {
  const r = new Ring<number>(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.values(), [3, 4, 5]);
});

test('history: one-second samples become 10 s points of rates; the host is the VMs\' sum; a removed VM is forgotten', () => {
  const h = new MeteringHistory(2);
  const t0 = 1_000_000_000_000; // on a step boundary
  // Step 1: 10 samples; the VM's vCPU runs half the time (0.5 s per s) = 25 % of 2 host CPUs; 1000 B/s in.
  for (let i = 0; i < 10; i++) h.record(t0 + i * 1000, new Map([['vm', at(i * 0.5, i * 1000)], ['other', at(0, 0)]]));
  assert.equal(h.vm('vm').Times.length, 0, 'the step is not over yet');
  h.record(t0 + 10_000, new Map([['vm', at(5, 10_000)], ['other', at(0, 0)]]));
  const v = h.vm('vm');
  assert.deepEqual(v.Times, [t0 / 1000 + 10]);
  assert.equal(v.StepSeconds, 10);
  // The first sample is each counter's baseline: 9 deltas over 10 s of samples.
  assert.equal(v.CpuPercent[0], 22.5);
  assert.equal(v.NetworkInBytesPerSecond[0], 900);
  assert.equal(v.MemoryAssignedBytes[0], 256 * 1024 * 1024);
  assert.deepEqual(v.MemoryDemandBytes, [null], 'no demand reported: none drawn');
  assert.equal(h.hostView().MemoryAssignedBytes[0], 512 * 1024 * 1024);
  assert.equal(h.hostView().CpuPercent[0], 22.5);
  h.record(t0 + 20_000, new Map([['vm', at(6, 20_000)]]));
  assert.equal(h.vm('other').Times.length, 0);
  assert.equal(h.vm('vm').Times.length, 2);
  assert.equal(h.vm('vm').NetworkInBytesPerSecond[1], 1000, 'the second step starts where the first ended');
  for (let i = 3; i < HISTORY_POINTS + 10; i++) h.record(t0 + i * 10_000, new Map([['vm', at(6, 20_000)]]));
  assert.equal(h.vm('vm').Times.length, HISTORY_POINTS, 'an hour, then the oldest go');
});

test('history: a snapshot restores the points (the last hour at most) into a new history, which goes on from them; a damaged one restores nothing', () => {
  const h = new MeteringHistory(2);
  const t0 = 1_000_000_000_000;
  for (let i = 0; i <= HISTORY_POINTS + 5; i++) h.record(t0 + i * 10_000, new Map([['vm', at(i, i * 1000)]]));
  const before = h.snapshot();
  assert.equal(h.closedSteps, HISTORY_POINTS + 5);
  // What the daemon writes and reads back is JSON.
  const restored = new MeteringHistory(2);
  restored.restore(JSON.parse(JSON.stringify(before)) as unknown);
  assert.deepEqual(restored.snapshot(), before);
  assert.equal(restored.vm('vm').Times.length, HISTORY_POINTS);
  // After the restart: a gap, then new points after the restored ones; a VM no longer sampled is forgotten.
  const t1 = t0 + (HISTORY_POINTS + 100) * 10_000;
  for (let i = 0; i <= 2; i++) restored.record(t1 + i * 10_000, new Map([['new', at(i, 0)]]));
  assert.equal(restored.vm('vm').Times.length, 0);
  const host = restored.hostView();
  assert.equal(host.Times.length, HISTORY_POINTS, 'the ring stays bounded');
  assert.deepEqual(host.Times.slice(-3), [before.host.Times.at(-1)!, t1 / 1000 + 10, t1 / 1000 + 20]);
  for (const damaged of [undefined, { version: 2, host: before.host, vms: {} }, { version: 1, host: { ...before.host, CpuPercent: [1] }, vms: {} }]) {
    const x = new MeteringHistory(2);
    x.restore(damaged);
    assert.deepEqual(x.snapshot(), { version: 1, host: new MeteringHistory(2).hostView(), vms: {} });
  }
});
