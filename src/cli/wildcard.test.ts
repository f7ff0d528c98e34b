import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasWildcard, matchesAny, matchWildcard } from './wildcard.ts';

test('hasWildcard finds unescaped * ? [', () => {
  assert.equal(hasWildcard('web1'), false);
  assert.equal(hasWildcard('web*'), true);
  assert.equal(hasWildcard('we?1'), true);
  assert.equal(hasWildcard('web[12]'), true);
  assert.equal(hasWildcard('web`*'), false);
  assert.equal(hasWildcard(''), false);
});

test('* and ? match like -like, case-insensitively, whole string', () => {
  assert.ok(matchWildcard('web*', 'Web1'));
  assert.ok(matchWildcard('web*', 'web'));
  assert.ok(!matchWildcard('web*', 'myweb1'));
  assert.ok(matchWildcard('*web*', 'myWEB1'));
  assert.ok(matchWildcard('w?b', 'WEB'));
  assert.ok(!matchWildcard('w?b', 'wb'));
  assert.ok(matchWildcard('TEST', 'test'));
  assert.ok(!matchWildcard('test', 'test1'));
  assert.ok(matchWildcard('*', ''));
});

test('[set] and [a-c] ranges', () => {
  assert.ok(matchWildcard('vm[abc]', 'vmB'));
  assert.ok(matchWildcard('vm[a-c]', 'vmc'));
  assert.ok(!matchWildcard('vm[a-c]', 'vmd'));
  assert.ok(matchWildcard('vm[0-9][0-9]', 'vm42'));
  assert.ok(matchWildcard('vm[-x]', 'vm-'));
});

test('regex metacharacters are literal, backtick escapes wildcards', () => {
  assert.ok(matchWildcard('a.b', 'a.b'));
  assert.ok(!matchWildcard('a.b', 'axb'));
  assert.ok(matchWildcard('(x)+$', '(x)+$'));
  assert.ok(matchWildcard('a`*', 'a*'));
  assert.ok(!matchWildcard('a`*', 'ab'));
  assert.ok(matchWildcard('a`[1]', 'a[1]'));
});

test('unclosed [ throws a CLI_INVALID_PARAMETER error', () => {
  assert.throws(() => matchWildcard('web[1', 'web1'), { code: 'CLI_INVALID_PARAMETER' });
});

test('matchesAny over several patterns', () => {
  assert.ok(matchesAny(['db*', 'web1'], 'WEB1'));
  assert.ok(matchesAny(['db*', 'web1'], 'db7'));
  assert.ok(!matchesAny(['db*', 'web1'], 'web2'));
  assert.ok(!matchesAny([], 'x'));
});
