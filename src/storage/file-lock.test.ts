// Disk-file ownership (file-lock.ts through HostFile.lock and openDiskFile): exclusive against
// everything, shared against shared only, released on close, and held against another process
// (flock(1) run by the test, as a second daemon or qemu-img with locking would hold it). Each
// test runs twice: with flock(2) from the native addon, and with the flock(1) fallback.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { HostFile } from './host-file.ts';
import { holeMapStatus } from '../blockio/index.ts';
import { openDiskFile } from './open-disk.ts';
import { createDifferencingFile, createDiskFile } from './disk-create.ts';

const dir = mkdtempSync(join(tmpdir(), 'file-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Registers `fn` twice: flock(2) through the addon (required under CI), then the flock(1) fallback. */
function both(name: string, fn: (tag: string) => Promise<void>): void {
  test(`${name} (flock(2))`, async () => {
    const s = holeMapStatus();
    if (!s.native) {
      if (process.env.CI === 'true') assert.fail(`native addon not loaded: ${s.reason}`);
      return;
    }
    await fn('n');
  });
  test(`${name} (flock(1) fallback)`, async () => {
    process.env.VMHOST_NO_NATIVE_LOCK = '1';
    try {
      await fn('f');
    } finally {
      delete process.env.VMHOST_NO_NATIVE_LOCK;
    }
  });
}

const inUse = (e: unknown): boolean => isVmhostError(e, 'VHD_IN_USE') && /is in use by another process/.test((e as Error).message);

async function disk(name: string): Promise<string> {
  const path = join(dir, name);
  await createDiskFile(path, { format: 'VHDX', type: 'Dynamic', size: 8 << 20 });
  return path;
}

both('exclusive refuses any second open; shared admits shared only; close releases', async (tag) => {
  const path = await disk(`a-${tag}.vhdx`);
  const writer = await openDiskFile(path);
  await assert.rejects(openDiskFile(path), inUse, 'a second writer');
  await assert.rejects(openDiskFile(path, { readOnly: true }), inUse, 'a reader while written');
  await writer.close();
  const r1 = await openDiskFile(path, { readOnly: true });
  const r2 = await openDiskFile(path, { readOnly: true });
  await assert.rejects(openDiskFile(path), inUse, 'a writer while read');
  await r1.close();
  await assert.rejects(openDiskFile(path), inUse, 'a writer while one reader is left');
  await r2.close();
  await (await openDiskFile(path)).close();
});

both('a parent is locked shared by its child: two children read it, nobody writes it', async (tag) => {
  const parent = await disk(`p-${tag}.vhdx`);
  const children = [join(dir, `c1-${tag}.vhdx`), join(dir, `c2-${tag}.vhdx`)];
  for (const c of children) await createDifferencingFile(c, parent, { format: 'VHDX' });
  const [a, b] = [await openDiskFile(children[0]!), await openDiskFile(children[1]!)];
  await assert.rejects(openDiskFile(parent), inUse, 'the parent opened for writing');
  await a.close();
  await b.close();
  await (await openDiskFile(parent)).close();
});

both('a lock another process holds refuses us, and our failed open writes nothing', async (tag) => {
  const path = await disk(`held-${tag}.vhdx`);
  const before = readFileSync(path);
  // flock(1) holds the lock for as long as its child runs; "locked" tells us it has it.
  // Its own process group: the sleep inherits the lock's fd and the pipe, so only killing the
  // whole group releases both at once (killing flock alone left them held for the full 30 s).
  const holder = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  try {
    await assert.rejects(openDiskFile(path), inUse);
    await assert.rejects(openDiskFile(path, { readOnly: true }), inUse);
    const f = HostFile.open(path, { readOnly: true });
    await assert.rejects(f.lock('shared'), inUse, 'HostFile.lock by itself');
    await f.close();
  } finally {
    process.kill(-holder.pid!, 'SIGKILL');
    await new Promise((r) => holder.once('close', r));
  }
  assert.deepEqual(readFileSync(path), before, 'the refused opens left the file byte-identical');
  await (await openDiskFile(path)).close();
  // And the other way round: while we hold it, flock(1) -n cannot take it.
  const d = await openDiskFile(path);
  assert.throws(() => execFileSync('flock', ['-n', '-s', path, 'true']), /Command failed/);
  await d.close();
  execFileSync('flock', ['-n', '-x', path, 'true']);
});
