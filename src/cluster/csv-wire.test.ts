import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CsvAuthChecker, signCsvRequest } from './csv-wire.ts';

const key = randomBytes(32).toString('base64');
const body = JSON.stringify({ Kind: 'op', Volume: 'v1', From: 'n2', Op: { Op: 'remove', Path: '/v/a.vhdx' } });

test('a request signed with the cluster key for this node is accepted once', () => {
  const c = new CsvAuthChecker();
  const h = signCsvRequest(key, 'n1', body);
  c.check(key, 'n1', h, body);
  assert.throws(() => c.check(key, 'n1', h, body), /stale or replayed/);
});

test('another key, another node, another body, a stale time or no header: refused', () => {
  const c = new CsvAuthChecker();
  const other = randomBytes(32).toString('base64');
  assert.throws(() => c.check(key, 'n1', signCsvRequest(other, 'n1', body), body), /not signed with this cluster's key/);
  assert.throws(() => c.check(key, 'n1', signCsvRequest(key, 'n3', body), body), /not signed/);
  assert.throws(() => c.check(key, 'n1', signCsvRequest(key, 'n1', body), body.replace('a.vhdx', 'b.vhdx')), /not signed/);
  assert.throws(() => c.check(key, 'n1', signCsvRequest(key, 'n1', body, Date.now() - 120_000), body), /stale/);
  assert.throws(() => c.check(key, 'n1', undefined, body), /not signed/);
});
