// The MAC table's int32 keys: MACs equal in their low 32 bits share a key and are chained;
// each must still be learned, found, aged out and flushed on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MacTable } from './mac-table.ts';

test('MAC table: entries sharing a key (same low 32 bits, same MAC in two domains) stay apart', () => {
  const t = new MacTable(1000);
  const a = 0x525400000001, b = 0x5256_00000001, c = 0x5258_00000001; // one low half, three MACs
  t.learn(1, a, 'pa', 0);
  t.learn(1, b, 'pb', 0);
  t.learn(1, c, 'pc', 500);
  t.learn(2, a, 'pd', 500); // the same MAC in another domain
  assert.equal(t.size, 4);
  assert.deepEqual([t.lookup(1, a, 600), t.lookup(1, b, 600), t.lookup(1, c, 600), t.lookup(2, a, 600), t.lookup(3, a, 600)], ['pa', 'pb', 'pc', 'pd', undefined]);
  t.learn(1, b, 'pb2', 600); // moved: updated in place, not added
  assert.equal(t.size, 4);
  // a ages out (learned at 0); the others are found after it is unlinked from the chain.
  assert.equal(t.lookup(1, a, 1200), undefined);
  assert.deepEqual([t.lookup(1, b, 1200), t.lookup(1, c, 1200), t.lookup(2, a, 1200)], ['pb2', 'pc', 'pd']);
  assert.equal(t.size, 3);
  t.flushPort('pc');
  assert.deepEqual(t.entries(1300).map((e) => [e.domain, e.mac, e.port]).sort(), [[1, b, 'pb2'], [2, a, 'pd']]);
  t.sweep(1550); // pd learned at 500: gone; pb2 at 600: kept
  assert.deepEqual(t.entries(1550).map((e) => e.port), ['pb2']);
  assert.equal(t.lookup(1, b, 1550), 'pb2');
});
