// writeFileAtomic: a planted symlink is never followed, a full disk leaves the old file and no
// temp file, the mode is exact whatever the umask. The full disk is a real one: a 64 KiB
// tmpfs (needs root to mount; skipped otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { writeFileAtomic } from './atomic-file.ts';

const isRoot = process.getuid?.() === 0;

test('atomic write: a symlink planted at a temp name is not followed; mode is 0600 under umask 0', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-atomic-'));
  const old = process.umask(0);
  try {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious\n');
    const target = join(dir, 'vm.json');
    // The names the old implementation used (fixed per process): an attacker can predict them.
    await symlink(victim, `${target}.tmp-${process.pid}`);
    await writeFileAtomic(target, '{"new":true}\n');
    assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
    assert.equal(await readFile(target, 'utf8'), '{"new":true}\n');
    assert.equal((await stat(target)).mode & 0o777, 0o600, 'mode exact although the umask is 0');
  } finally {
    process.umask(old);
    await rm(dir, { recursive: true, force: true });
  }
});

test('atomic write on a full disk (64 KiB tmpfs): typed error, old file intact, no temp file left', { skip: !isRoot && 'needs root to mount a tmpfs' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-atomic-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
  try {
    const target = join(dir, 'vm.json');
    await writeFileAtomic(target, 'old contents\n');
    const big = Buffer.alloc(256 << 10, 0x61);
    await assert.rejects(writeFileAtomic(target, big), (e) => isVmhostError(e, 'IO_ERROR') && e.context.errno === 'ENOSPC' && e.context.path === target);
    assert.equal(await readFile(target, 'utf8'), 'old contents\n');
    assert.deepEqual(await readdir(dir), ['vm.json'], 'no temp file behind');
    // And the disk is usable again: the temp file's blocks were freed.
    await writeFileAtomic(target, 'new contents\n');
    assert.equal(await readFile(target, 'utf8'), 'new contents\n');
  } finally {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  }
});
