// The thread sampler bench/live-migration.ts splits a blackout with: /proc's formats read right,
// a window's shares differenced per thread, and a real busy and a real sleeping process told apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { ThreadSampler, childrenWith, parsePriority, parseSchedstat, sharesDuring, type Sample } from './thread-sampler.ts';

test('schedstat: ns on a core and ns waiting for one, as ms', () => {
  assert.deepEqual(parseSchedstat('101652899 331803233 259\n'), { runMs: 101.652899, waitMs: 331.803233 });
  assert.equal(parseSchedstat(''), undefined);
  assert.ok(parseSchedstat(readFileSync('/proc/self/schedstat', 'utf8'))!.runMs > 0);
});

test("a thread's nice value, or SCHED_IDLE, from its stat line (a comm with spaces and parentheses too)", () => {
  assert.equal(parsePriority(readFileSync('/proc/self/stat', 'utf8')), 'nice 0');
  const fields = (nice: number, policy: number) => ['S', ...Array.from({ length: 15 }, () => '0'), String(nice), ...Array.from({ length: 21 }, () => '0'), String(policy), '0'].join(' ');
  assert.equal(parsePriority(`42 (CPU 0/TCG) ${fields(19, 0)}`), 'nice 19');
  assert.equal(parsePriority(`42 (a) b)) ${fields(0, 5)}`), 'SCHED_IDLE');
});

test('a window: the samples around it differenced per thread, a thread born inside counted from zero', () => {
  const at = (t: number, threads: [string, number, number][]): Sample => ({ at: t, threads: new Map(threads.map(([k, r, w]) => [k, { runMs: r, waitMs: w }])) });
  const samples = [
    at(1000, [['vcpu', 50, 5]]),
    at(1010, [['vcpu', 51, 5]]),
    at(1110, [['vcpu', 52, 6], ['live_migration', 90, 4]]),
    at(1120, [['vcpu', 60, 6], ['live_migration', 95, 4]]),
  ];
  const d = sharesDuring(samples, 1015, 1105);
  assert.deepEqual([d.from, d.to], [1010, 1110]);
  assert.deepEqual(d.shares.map((s) => [s.thread, s.ranMs, s.waitedMs, s.sleptMs]), [['live_migration', 90, 4, 6], ['vcpu', 1, 1, 98]]);
  assert.deepEqual(sharesDuring([], 0, 1).shares, []);
});

test('a real busy process runs and a real sleeping one sleeps; children found by their command line', async () => {
  const busy = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 400); // sampler-busy-marker']);
  const idle = spawn('sleep', ['30']);
  try {
    const found = { busy: childrenWith(process.pid, 'sampler-busy-marker'), idle: childrenWith(process.pid, 'sleep') };
    assert.deepEqual(found.busy, [busy.pid]);
    assert.ok(found.idle.includes(idle.pid!));
    const sampler = new ThreadSampler(() => [{ label: 'busy', pid: busy.pid! }, { label: 'idle', pid: idle.pid! }], 5);
    const t0 = Date.now();
    sampler.start();
    await once(busy, 'exit');
    sampler.stop();
    const { shares } = sampler.during(t0, Date.now());
    const busyMain = shares.find((s) => s.thread === `busy: node (${busy.pid})`);
    const idleMain = shares.find((s) => s.thread.startsWith('idle: sleep'))!;
    assert.ok(busyMain && busyMain.ranMs > 0, JSON.stringify(shares));
    assert.equal(idleMain.ranMs < busyMain.ranMs, true, JSON.stringify(shares));
    assert.ok(idleMain.sleptMs > 0);
  } finally {
    busy.kill();
    idle.kill();
  }
});
