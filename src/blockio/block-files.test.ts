// MemoryFile, NodeFile and CrashFile behave as BlockFile promises: zeros past the end,
// growth on write, truncate both ways; CrashFile keeps only what was flushed (or variants).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFile, NodeFile, CrashFile, type BlockFile } from './index.ts';

async function contract(f: BlockFile): Promise<void> {
  assert.equal(await f.size(), 0);
  await f.write(new Uint8Array([1, 2, 3]), 70000);
  assert.equal(await f.size(), 70003);
  const b = new Uint8Array(6);
  await f.read(b, 69999);
  assert.deepEqual([...b], [0, 1, 2, 3, 0, 0]);
  await f.truncate(70001);
  await f.read(b, 69999);
  assert.deepEqual([...b], [0, 1, 0, 0, 0, 0]);
  await f.truncate(200000);
  await f.read(b, 70000);
  assert.deepEqual([...b], [1, 0, 0, 0, 0, 0]);
  await f.flush();
  await f.close();
}

test('MemoryFile contract', async () => contract(new MemoryFile()));

test('NodeFile contract', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bf-'));
  try {
    await contract(await NodeFile.open(join(dir, 'f'), { create: true }));
    const ro = await NodeFile.open(join(dir, 'f'), { readOnly: true });
    assert.equal(ro.readOnly, true);
    assert.equal(await ro.size(), 200000);
    await assert.rejects(ro.write(new Uint8Array(1), 0));
    await ro.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CrashFile: flushed-only, torn-last and random-subset states', async () => {
  const c = new CrashFile(new MemoryFile());
  await contract(c);
  const c2 = new CrashFile(new MemoryFile());
  await c2.write(new Uint8Array(1024).fill(1), 0);
  await c2.flush();
  await c2.write(new Uint8Array(1024).fill(2), 0);
  await c2.write(new Uint8Array(2048).fill(3), 4096);
  assert.equal(c2.opCount, 4);
  assert.deepEqual(c2.writeBoundaries(), [1, 3, 4]);
  const s = c2.stateAt(4);
  const b = new Uint8Array(1024);
  await s.read(b, 0);
  assert.ok(b.every((v) => v === 1));
  assert.equal(await s.size(), 1024);
  // torn-last: the first unflushed write lands, the last lands sector by sector.
  let sawTorn = false;
  for (let seed = 1; seed < 20; seed++) {
    const t = c2.stateAt(4, { kind: 'torn-last', seed });
    await t.read(b, 0);
    assert.ok(b.every((v) => v === 2));
    const tail = new Uint8Array(2048);
    await t.read(tail, 4096);
    const sectors = [0, 512, 1024, 1536].map((o) => tail[o]);
    if (sectors.includes(3) && sectors.includes(0)) sawTorn = true;
  }
  assert.ok(sawTorn);
  const r = c2.stateAt(3, { kind: 'random-subset', seed: 5 });
  await r.read(b, 0);
  assert.ok(b.every((v) => v === 1 || v === 2));
  const live = new Uint8Array(1024);
  await c2.read(live, 0);
  assert.ok(live.every((v) => v === 2));
});
