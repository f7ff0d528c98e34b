import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHashtable } from './hashtable.ts';

test('a hashtable literal: quoted values keep ; and =, \'\' is a quote', () => {
  assert.deepEqual(parseHashtable('P', [`@{Command='apt-get update; echo ''a=b'''; Mode="x \\"y\\""}`]), { Command: 'apt-get update; echo \'a=b\'', Mode: 'x "y"' });
});

test('Name=value items and bare values', () => {
  assert.deepEqual(parseHashtable('P', ['Command=true', 'Other = two words']), { Command: 'true', Other: 'two words' });
  assert.deepEqual(parseHashtable('P', ['@{}']), {});
});

test('not a hashtable: refused with the parameter', () => {
  assert.throws(() => parseHashtable('CauPluginArguments', ['just text']), /-CauPluginArguments: 'just text'/);
  assert.throws(() => parseHashtable('P', [`@{Command='unterminated}`]), /-P:/);
});
