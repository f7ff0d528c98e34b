import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSize, parseSize } from './size.ts';

test('plain integers and every suffix, powers of 1024, case-insensitive', () => {
  assert.equal(parseSize('0'), 0);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('512KB'), 512 * 1024);
  assert.equal(parseSize('256MB'), 256 * 1024 ** 2);
  assert.equal(parseSize('256mb'), 256 * 1024 ** 2);
  assert.equal(parseSize('1GB'), 1024 ** 3);
  assert.equal(parseSize('2TB'), 2 * 1024 ** 4);
  assert.equal(parseSize('1PB'), 1024 ** 5);
});

test('decimals are accepted when they give whole bytes', () => {
  assert.equal(parseSize('1.5GB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('0.5KB'), 512);
  assert.equal(parseSize('1.25MB'), 1.25 * 1024 ** 2);
  assert.equal(parseSize('1.3KB'), undefined); // 1331.2 bytes
  assert.equal(parseSize('1.5'), undefined);
});

test('rejects what is not a size', () => {
  for (const bad of ['', '3XB', 'GB', '-1', '1 G', '1e9', '0x10', '1GBB', 'abc', '9PB']) {
    assert.equal(parseSize(bad), undefined, bad);
  }
});

test('formatSize picks the largest exact unit', () => {
  assert.equal(formatSize(1024 ** 3), '1GB');
  assert.equal(formatSize(1536 * 1024 ** 2), '1536MB');
  assert.equal(formatSize(1000), '1000');
  assert.equal(formatSize(0), '0');
});
