import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MEMORY_UNIT, balance, demandOf, memoryStatus, shareByPriority, type BalancerHost, type BalancerVm } from './memory-balancer.ts';

const MB = 1024 * 1024;
const vm = (id: string, over: Partial<BalancerVm> = {}): BalancerVm => ({
  id, minimumBytes: 128 * MB, maximumBytes: 1024 * MB, assignedBytes: 256 * MB, demandBytes: 100 * MB, priority: 50, ...over,
});
const host = (capacityMB: number, over: Partial<BalancerHost> = {}): BalancerHost => ({ capacityBytes: capacityMB * MB, reserveBytes: 0, fixedBytes: 0, ...over });
const targets = (vms: BalancerVm[], h: BalancerHost): Record<string, number> => Object.fromEntries(balance(vms, h).map((t) => [t.id, t.targetBytes / MB]));

test('plenty of memory: each VM gets its demand rounded up to 2 MB, within its bounds', () => {
  const t = targets([vm('a', { demandBytes: 301 * MB }), vm('b', { demandBytes: 50 * MB }), vm('c', { demandBytes: 4000 * MB })], host(8192));
  assert.deepEqual(t, { a: 302, b: 128, c: 1024 });
});

test('growth takes only memory free now; what a shrinking VM gives back is free the round after', () => {
  const vms = [vm('busy', { demandBytes: 700 * MB }), vm('idle1'), vm('idle2')];
  // 768 MB cap, all three at 256: nothing is free, so busy waits while the idle ones shrink.
  const first = balance(vms, host(768));
  assert.deepEqual(first.map((t) => t.targetBytes / MB), [256, 128, 128]);
  const second = targets(vms.map((v, i) => ({ ...v, assignedBytes: first[i]!.targetBytes })), host(768));
  assert.deepEqual(second, { busy: 512, idle1: 128, idle2: 128 }, 'busy grows into what the idle ones freed, and no further than the cap');
});

test('the host reserve and static VMs come off the cap', () => {
  const t = targets([vm('a', { demandBytes: 900 * MB, assignedBytes: 128 * MB })], host(1024, { reserveBytes: 256 * MB, fixedBytes: 256 * MB }));
  assert.deepEqual(t, { a: 512 });
});

test('never below the minimum, even when the minimums exceed the host (overcommitted)', () => {
  const t = targets([vm('a', { minimumBytes: 512 * MB, demandBytes: 900 * MB }), vm('b', { minimumBytes: 512 * MB })], host(768));
  assert.deepEqual(t, { a: 512, b: 512 });
});

test('short of memory: higher priority is served first; equal priorities share in proportion to what they lack', () => {
  const at = { assignedBytes: 128 * MB };
  const t = targets([
    vm('high', { ...at, priority: 80, demandBytes: 400 * MB }),
    vm('low1', { ...at, priority: 20, demandBytes: 328 * MB }),
    vm('low2', { ...at, priority: 20, demandBytes: 228 * MB }),
  ], host(128 * 3 + 272 + 150));
  assert.equal(t.high, 400, 'the high-priority VM gets all it lacks (272 MB)');
  assert.equal(t.low1! + t.low2!, 128 * 2 + 150, 'the rest is used up');
  assert.ok(Math.abs((t.low1! - 128) / (t.low2! - 128) - 2) < 0.05, `low1 lacks twice what low2 does: ${t.low1} / ${t.low2}`);
});

test('shares are whole units, never above a claim, never above the budget', () => {
  for (let seed = 1; seed < 200; seed++) {
    const rnd = (n: number) => (seed * 2654435761 + n * 40503) % 997;
    const claims = Array.from({ length: 1 + (seed % 5) }, (_, i) => ({ claim: rnd(i) * MEMORY_UNIT, priority: rnd(i + 7) % 3 }));
    const budget = rnd(99) * MEMORY_UNIT + (seed % 3) * 12345;
    const g = shareByPriority(claims, budget);
    assert.ok(g.every((x, i) => x % MEMORY_UNIT === 0 && x >= 0 && x <= claims[i]!.claim), `seed ${seed}`);
    const sum = g.reduce((a, b) => a + b, 0);
    assert.ok(sum <= budget, `seed ${seed}: ${sum} > ${budget}`);
    const want = claims.reduce((a, c) => a + c.claim, 0);
    assert.ok(sum === want || budget - sum < MEMORY_UNIT * claims.length, `seed ${seed}: budget left unused`);
  }
});

test('demand and MemoryStatus as Hyper-V reports them', () => {
  assert.equal(demandOf(100 * MB, 20), 120 * MB);
  assert.equal(memoryStatus(130 * MB, 100 * MB, 120 * MB), 'OK');
  assert.equal(memoryStatus(110 * MB, 100 * MB, 120 * MB), 'Low');
  assert.equal(memoryStatus(90 * MB, 100 * MB, 120 * MB), 'Warning');
});
