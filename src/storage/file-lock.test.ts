// Disk-file ownership (file-lock.ts through HostFile.lock and openDiskFile): exclusive against
// everything, shared against shared only, released on close, and held against another process
// (flock(1) run by the test, as a second daemon or qemu-img with locking would hold it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { HostFile } from './host-file.ts';
import { openDiskFile } from './open-disk.ts';
import { createDifferencingFile, createDiskFile } from './disk-create.ts';

const dir = mkdtempSync(join(tmpdir(), 'file-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const inUse = (e: unknown): boolean => isVmhostError(e, 'VHD_IN_USE') && /is in use by another process/.test((e as Error).message);

async function disk(name: string): Promise<string> {
  const path = join(dir, name);
  await createDiskFile(path, { format: 'VHDX', type: 'Dynamic', size: 8 << 20 });
  return path;
}

test('exclusive refuses any second open; shared admits shared only; close releases', async () => {
  const path = await disk('a.vhdx');
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

test('a parent is locked shared by its child: two children read it, nobody writes it', async () => {
  const parent = await disk('p.vhdx');
  const children = [join(dir, 'c1.vhdx'), join(dir, 'c2.vhdx')];
  for (const c of children) await createDifferencingFile(c, parent, { format: 'VHDX' });
  const [a, b] = [await openDiskFile(children[0]!), await openDiskFile(children[1]!)];
  await assert.rejects(openDiskFile(parent), inUse, 'the parent opened for writing');
  await a.close();
  await b.close();
  await (await openDiskFile(parent)).close();
});

test('a lock another process holds refuses us, and our failed open writes nothing', async () => {
  const path = await disk('held.vhdx');
  const before = readFileSync(path);
  // flock(1) holds the lock for as long as its child runs; "locked" tells us it has it.
  const holder = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  try {
    await assert.rejects(openDiskFile(path), inUse);
    await assert.rejects(openDiskFile(path, { readOnly: true }), inUse);
    const f = HostFile.open(path, { readOnly: true });
    await assert.rejects(f.lock('shared'), inUse, 'HostFile.lock by itself');
    await f.close();
  } finally {
    holder.kill();
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
