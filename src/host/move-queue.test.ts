import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MoveQueue } from './move-queue.ts';

const tick = () => new Promise((r) => setImmediate(r));

test('moves beyond the limit wait in order and start as slots free', async () => {
  const q = new MoveQueue(2);
  const order: number[] = [];
  const releases = await Promise.all([q.acquire(), q.acquire()]);
  assert.equal(q.active, 2);
  const third = q.acquire().then((r) => { order.push(3); return r; });
  const fourth = q.acquire().then((r) => { order.push(4); return r; });
  await tick();
  assert.deepEqual([q.active, q.queued, order.length], [2, 2, 0]);
  releases[0]!();
  releases[0]!(); // a second release of the same slot changes nothing
  await tick();
  assert.deepEqual(order, [3]);
  assert.deepEqual([q.active, q.queued], [2, 1]);
  releases[1]!();
  (await third)();
  (await fourth)();
  assert.deepEqual(order, [3, 4]);
  assert.deepEqual([q.active, q.queued], [0, 0]);
});

test('a cancelled waiter leaves the line; raising the limit starts waiters', async () => {
  const q = new MoveQueue(1);
  const first = await q.acquire();
  const ac = new AbortController();
  const cancelled = q.acquire(ac.signal);
  const next = q.acquire();
  await tick();
  ac.abort();
  await assert.rejects(cancelled, (e: Error & { code?: string }) => e.code === 'JOB_CANCELLED');
  assert.equal(q.queued, 1);
  q.setLimit(2);
  const r = await next;
  assert.equal(q.active, 2);
  r();
  first();
  assert.equal(q.active, 0);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(q.acquire(pre.signal), /cancelled/);
});

test('run: a job waits Queued for its slot, starts when one frees, gives it back on failure; a cancelled wait never starts', async () => {
  const q = new MoveQueue(1, 'storage migration');
  const job = () => {
    const ac = new AbortController();
    const h = { signal: ac.signal, state: 'Queued', started() { this.state = 'Running'; } };
    return { h, ac };
  };
  const one = job();
  let finishOne!: () => void;
  const first = q.run(one.h, () => new Promise<string>((r) => { finishOne = () => r('one'); }));
  await tick();
  assert.equal(one.h.state, 'Running');
  const two = job();
  const second = q.run(two.h, () => Promise.reject(new Error('two failed')));
  const three = job();
  let ran = false;
  const third = q.run(three.h, async () => { ran = true; });
  await tick();
  assert.deepEqual([two.h.state, three.h.state, q.active, q.queued], ['Queued', 'Queued', 1, 2]);
  three.ac.abort();
  await assert.rejects(third, (e: Error & { code?: string }) => e.code === 'JOB_CANCELLED' && /free storage migration slot/.test(e.message));
  finishOne();
  assert.equal(await first, 'one');
  await assert.rejects(second, /two failed/);
  assert.deepEqual([two.h.state, three.h.state, ran, q.active, q.queued], ['Running', 'Queued', false, 0, 0]);
});
