import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmhostError } from '../common/index.ts';
import { CliErrorCode } from './errors.ts';
import { ExitCode, exitCodeFor } from './exit-codes.ts';

test('every CLI usage error exits 2', () => {
  for (const code of Object.values(CliErrorCode)) {
    if (code === CliErrorCode.invalidDefinition) continue;
    assert.equal(exitCodeFor(new VmhostError(code, 'x')), 2, code);
  }
  assert.equal(exitCodeFor(new VmhostError(CliErrorCode.invalidDefinition, 'x')), 1);
});

test('not found 3, invalid state 4, connection/auth 5, a failure or a non-VmhostError 1', () => {
  assert.equal(exitCodeFor(new VmhostError('NOT_FOUND', 'x')), ExitCode.notFound);
  assert.equal(exitCodeFor(new VmhostError('VM_NOT_FOUND', 'x')), 3);
  assert.equal(exitCodeFor(new VmhostError('INVALID_STATE', 'x')), 4);
  assert.equal(exitCodeFor(new VmhostError('CONNECTION_FAILED', 'x')), 5);
  assert.equal(exitCodeFor(new VmhostError('AUTH_FAILED', 'x')), 5);
  assert.equal(exitCodeFor(new VmhostError('DAEMON_ERROR', 'x')), 1);
  assert.equal(exitCodeFor(new Error('plain')), 1);
  assert.equal(exitCodeFor('a string'), 1);
});
