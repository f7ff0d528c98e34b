// Compression's channels follow the CPU the source has spare: one per spare core, at least one,
// at most QEMU's four; the sample of spare CPU is a share of this machine's cores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { compressionChannels, tuningFor } from './migration-settings.ts';
import { spareCores } from './spare-cpu.ts';

test('Compression: one channel per spare core, from 1 to 4; SMB keeps 4', async () => {
  assert.deepEqual([0, 0.4, 0.99, 1, 1.7, 2, 3.2, 4, 31].map(compressionChannels), [1, 1, 1, 1, 1, 2, 3, 4, 4]);
  assert.deepEqual(tuningFor('Compression', 2).multifd, { channels: 2, compression: 'zstd' });
  assert.equal(tuningFor('SMB').multifd?.channels, 4, 'SMB compresses nothing: its channels do not follow the CPU');
  const spare = await spareCores(100);
  assert.ok(spare >= 0 && spare <= cpus().length, `spare ${spare} of ${cpus().length} cores`);
});
