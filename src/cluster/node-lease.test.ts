// The lease timing a daemon accepts (--cluster-lease-ttl, --cluster-keepalive): the default, and
// the refusals — a TTL below etcd's floor, a keepalive so slow that one late answer would fence a
// healthy node (two keepalives must fit in the TTL less the safety second).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { DEFAULT_LEASE_TIMING, checkLeaseTiming } from './node-lease.ts';

test('lease timings: the default and the tests\' are accepted, a TTL out of 2–300 s or a keepalive that leaves no slack is refused', () => {
  assert.deepEqual(checkLeaseTiming(DEFAULT_LEASE_TIMING), { ttlSeconds: 4, keepaliveMs: 1000 });
  assert.deepEqual(checkLeaseTiming({ ttlSeconds: 4, keepaliveMs: 500 }), { ttlSeconds: 4, keepaliveMs: 500 });
  assert.deepEqual(checkLeaseTiming({ ttlSeconds: 4, keepaliveMs: 1500 }), { ttlSeconds: 4, keepaliveMs: 1500 }, '(4000 − 1000) / 2');
  const refused = (ttlSeconds: number, keepaliveMs: number, param: string, re: RegExp): void => {
    assert.throws(() => checkLeaseTiming({ ttlSeconds, keepaliveMs }), (e: unknown) => isVmhostError(e) && e.code === 'INVALID_ARGUMENT' && e.context.param === param && re.test(e.message));
  };
  refused(1, 100, 'cluster-lease-ttl', /from 2 to 300/);
  refused(301, 1000, 'cluster-lease-ttl', /from 2 to 300/);
  refused(4, 1501, 'cluster-keepalive', /must be 100–1500 ms/);
  refused(2, 600, 'cluster-keepalive', /must be 100–500 ms/);
  refused(4, 50, 'cluster-keepalive', /must be 100–1500 ms/);
});
