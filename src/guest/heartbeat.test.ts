import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heartbeatStatus } from './heartbeat.ts';

test('heartbeat status from answer times', () => {
  assert.equal(heartbeatStatus({ startedAt: 100 }, 200, 10), 'NoContact');
  assert.equal(heartbeatStatus({ startedAt: 100, lastAnswerAt: 50 }, 200, 10), 'NoContact');
  assert.equal(heartbeatStatus({ startedAt: 100, lastAnswerAt: 195 }, 200, 10), 'Ok');
  assert.equal(heartbeatStatus({ startedAt: 100, lastAnswerAt: 150 }, 200, 10), 'LostCommunication');
});
