// The monitor's guest-side check, run by /bin/sh here as the agent runs it in a guest: a process
// that runs reports 0, one that does not a non-zero code, and parseCheck reads both (a line it
// does not understand is no verdict).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { checkScript, parseCheck } from './vm-monitor.ts';

const run = promisify(execFile);

test('checkScript reports a running process as 0 and a missing one as not running; parseCheck reads the lines', async () => {
  // `node` runs: it is this test. No process is named like this one.
  const missing = `vmhost-absent-${process.pid}`;
  const { stdout } = await run('/bin/sh', ['-c', checkScript(['node', missing])]);
  const seen = parseCheck(stdout);
  assert.deepEqual([...seen], [['node', true], [missing, false]]);
  assert.deepEqual([...parseCheck('garbage\nx 0\n')], [['x', true]]);
});
