// The dynamic MAC pool, pure: spellings, Hyper-V's validation rules, the default pool per host
// id, and allocation (free addresses only, all of them reachable, a full pool refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { allocateMac, checkMacPool, colonMac, defaultMacPool, inMacPool, macPoolSize, parseMacText, type MacPool } from './mac-pool.ts';

const refused = (fn: () => unknown, param: string, re: RegExp) => assert.throws(fn, (e: unknown) => {
  assert.ok(isVmhostError(e, 'INVALID_ARGUMENT'), String(e));
  assert.equal(e.context.param, param);
  assert.match(e.message, re);
  return true;
});

test('the spellings Hyper-V accepts, and what is not a MAC', () => {
  for (const t of ['00-15-5D-38-1F-00', '00:15:5d:38:1f:00', '00155D381F00', ' 00155d381f00 ']) assert.equal(parseMacText(t, 'X'), '00155D381F00');
  refused(() => parseMacText('00-15-5D-38-1F', 'MacAddressMinimum'), 'MacAddressMinimum', /not a MAC address/);
  refused(() => parseMacText('00-15-5D-38-1F-0G', 'MacAddressMaximum'), 'MacAddressMaximum', /not a MAC address/);
  assert.equal(colonMac('00155D381F00'), '00:15:5D:38:1F:00');
});

test('a pool: unicast, inside one OUI, minimum ≤ maximum', () => {
  checkMacPool({ minimum: '00155D000000', maximum: '00155DFFFFFF' });
  checkMacPool({ minimum: '02AB00000010', maximum: '02AB00000010' });
  refused(() => checkMacPool({ minimum: '01005E000001', maximum: '01005E0000FF' }), 'MacAddressMinimum', /multicast/);
  refused(() => checkMacPool({ minimum: '00155D000001', maximum: '03155D0000FF' }), 'MacAddressMaximum', /multicast/);
  refused(() => checkMacPool({ minimum: '00155D0000FF', maximum: '00155E000000' }), 'MacAddressMaximum', /another OUI/);
  refused(() => checkMacPool({ minimum: '00155D000200', maximum: '00155D0001FF' }), 'MacAddressMinimum', /above MacAddressMaximum/);
});

test('the default pool: 256 addresses in 00-15-5D, two bytes from the host id; different ids, different pools', () => {
  const a = defaultMacPool('5b0d9a0e-0f7c-4a55-9d0b-0c7c0e3e1a11');
  const b = defaultMacPool('e3c1f0aa-51b4-4c0e-8f5e-2a4d7f1b9c22');
  for (const p of [a, b]) {
    assert.match(p.minimum, /^00155D[0-9A-F]{4}00$/);
    assert.equal(p.maximum, p.minimum.slice(0, 10) + 'FF');
    assert.equal(macPoolSize(p), 256);
    checkMacPool(p);
  }
  assert.notEqual(a.minimum, b.minimum);
  assert.deepEqual(defaultMacPool('5b0d9a0e-0f7c-4a55-9d0b-0c7c0e3e1a11'), a, 'the same id, the same pool');
  // The 16 bits spread: no two of these 20 ids share a pool (a collision is 1 in 65536 per pair).
  const seen = new Set(Array.from({ length: 20 }, (_, i) => defaultMacPool(`host-${i}`).minimum));
  assert.equal(seen.size, 20);
});

test('allocation: inside the pool, never a used address (either spelling), every address reachable, then MAC_POOL_EXHAUSTED', () => {
  const pool: MacPool = { minimum: '00155D4242F0', maximum: '00155D4242FF' };
  const used = new Set<string>(['00:15:5D:42:42:F0', '00155d4242f1']);
  const got: string[] = [];
  for (let i = 0; i < 14; i++) {
    const mac = allocateMac(pool, used, () => 0.99);
    assert.match(mac, /^00:15:5D:42:42:F[0-9A-F]$/);
    assert.ok(inMacPool(pool, mac));
    assert.ok(!used.has(mac) && !got.includes(mac));
    got.push(mac);
    used.add(mac);
  }
  assert.equal(new Set(got).size, 14);
  assert.throws(() => allocateMac(pool, used), (e: unknown) => isVmhostError(e, 'MAC_POOL_EXHAUSTED') && /16 addresses/.test(e.message));
  assert.equal(inMacPool(pool, '00:15:5D:42:43:00'), false);
});
