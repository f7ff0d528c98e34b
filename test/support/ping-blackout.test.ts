// pingBlackout on busybox ping's own lines: a lost run and a late answer both count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pingBlackout } from './ping-blackout.ts';

const line = (seq: number, ms: number) => `64 bytes from 10.89.0.1: seq=${seq} ttl=64 time=${ms.toFixed(3)} ms`;

test('the longest wait between replies, each at seq × interval + its round trip', () => {
  const steady = [0, 1, 2, 3].map((s) => line(s, 0.5));
  assert.equal(pingBlackout(['PING 10.89.0.1 (10.89.0.1): 56 data bytes', ...steady].join('\n'), 20).blackoutMs, 20);
  // seq 4–9 lost: 10 arrives 140 ms after 3.
  assert.deepEqual(pingBlackout([...steady, line(10, 0.5)].join('\n'), 20), { replies: 5, blackoutMs: 140, seqs: [0, 1, 2, 3, 10] });
  // Nothing lost, but 4 held 500 ms (a stopped NIC): the guest was silent from 3's reply to 4's.
  assert.equal(pingBlackout([...steady, line(4, 500), line(5, 481)].join('\n'), 20).blackoutMs, 520);
});
