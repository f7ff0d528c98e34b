// The event log on disk: events.jsonl is rotated at a size and keeps a bounded number of old
// files; opening reads only a bounded tail (a huge log is neither read whole nor lost) and
// the sequence number continues, even right after a rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, type HostEvent } from './events.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-events-'));
  try { await fn(dir); } finally { await rm(dir, { recursive: true, force: true }); }
}

const lines = async (path: string): Promise<HostEvent[]> =>
  (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as HostEvent);

test('events.jsonl is rotated at rotateBytes, keeping keepFiles old files, with no event lost between them', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'events.jsonl');
    const log = await EventLog.open(path, { rotateBytes: 4096, keepFiles: 2 });
    for (let i = 0; i < 200; i++) log.emit({ Level: 'Information', Code: 'TEST', Message: `event ${i} ${'x'.repeat(40)}` });
    await log.settled();
    assert.deepEqual((await readdir(dir)).sort(), ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    for (const f of ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']) assert.ok((await stat(join(dir, f))).size < 4096 + 200, `${f} stays near the rotation size`);
    const seqs = [...await lines(`${path}.2`), ...await lines(`${path}.1`), ...await lines(path)].map((e) => e.Seq);
    assert.equal(seqs.at(-1), 200);
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + i), 'consecutive across the files');
    assert.equal(log.list().length, 200, 'the ring is not affected');
  });
});

test('right after a rotation (no current file) a restart continues the sequence from the rotated files', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'events.jsonl');
    const first = await EventLog.open(path, { rotateBytes: 1, keepFiles: 3 });
    for (let i = 1; i <= 5; i++) first.emit({ Level: 'Information', Code: 'TEST', Message: `e${i}` });
    await first.settled();
    assert.deepEqual((await readdir(dir)).sort(), ['events.jsonl.1', 'events.jsonl.2', 'events.jsonl.3']);
    const again = await EventLog.open(path, { rotateBytes: 1, keepFiles: 3 });
    assert.deepEqual(again.list().map((e) => e.Message), ['e3', 'e4', 'e5']);
    assert.equal(again.emit({ Level: 'Information', Code: 'TEST', Message: 'e6' }).Seq, 6);
    await again.settled();
  });
});

test('opening a 1 GiB log reads only its tail: the newest events are loaded and the sequence continues', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'events.jsonl');
    // A sparse gigabyte (costs no disk), then real events: reading it whole would need a
    // gigabyte of memory and a string longer than V8 allows.
    await appendFile(path, '');
    await truncate(path, 1 << 30);
    const tail = Array.from({ length: 50 }, (_, i) => JSON.stringify({ Seq: 1_000_001 + i, Time: new Date(0).toISOString(), Level: 'Information', Code: 'OLD', Message: `old ${i}` }) + '\n').join('');
    await appendFile(path, '\n' + tail);
    const log = await EventLog.open(path);
    assert.equal(log.list().length, 50);
    assert.equal(log.list()[0]!.Seq, 1_000_001);
    assert.equal(log.emit({ Level: 'Information', Code: 'TEST', Message: 'new' }).Seq, 1_000_051);
    await log.settled();
    // Beyond the rotation size: the first append rotated it; the sparse file is now events.jsonl.1.
    assert.equal((await stat(`${path}.1`)).size > 1 << 30, true);
    assert.equal((await stat(path).catch(() => undefined)), undefined);
  });
});
