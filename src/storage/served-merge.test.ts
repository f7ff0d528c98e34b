// Live merge (served-merge.ts) under a client that keeps writing: the leaf shape (C → P, the
// export ends on P) and the frozen-layer shape (B → A → P, B re-linked to P), checked against
// a model of every byte, by our checker and by qemu-img; then daemon-style crashes: the
// serving process SIGKILLed at points placed by the merge's own progress lines while
// qemu-img bench writes through reconnect-delay, restarted on the leaf its commit recorded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlockServer } from './block-server.ts';
import { createDifferencingFile, describeDiskFile, openDiskFile, testDiskFile } from './index.ts';
import { NbdTestClient } from './nbd/test-client.ts';
import { killChild, makeVhdx, pattern, run, startChildServer, tempDir } from './test-support.ts';

const MiB = 1 << 20;
const SIZE = 32 * MiB;
const tmp = tempDir('live-merge-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

/** Apply writes to a disk file through our engine and to the model. */
async function writeFile(path: string, model: Uint8Array, writes: Array<[number, Uint8Array]>): Promise<void> {
  const d = await openDiskFile(path);
  for (const [o, b] of writes) {
    await d.write(b, o);
    model.set(b, o);
  }
  await d.close();
}

/** A chain base ← mid ← … in `dir`, each layer with its own data (whole and partial blocks), and its model. */
async function chain(dir: string, names: string[]): Promise<{ files: string[]; model: Uint8Array }> {
  const model = new Uint8Array(SIZE);
  const files = names.map((n) => join(dir, n));
  await makeVhdx(files[0]!, { size: SIZE, blockSize: MiB });
  await writeFile(files[0]!, model, [[0, pattern(16 * MiB, 1)]]);
  for (let i = 1; i < files.length; i++) {
    await createDifferencingFile(files[i]!, files[i - 1]!, { format: 'VHDX' });
    await writeFile(files[i]!, model, [[(2 + 4 * i) * MiB, pattern(6 * MiB, 10 + i)], [(20 + i) * MiB + 4096, pattern(300 * 1024, 20 + i)]]);
  }
  return { files, model };
}

async function readAll(c: NbdTestClient): Promise<Uint8Array> {
  const out = new Uint8Array(SIZE);
  for (let o = 0; o < SIZE; o += 4 * MiB) out.set(await c.read(o, 4 * MiB), o);
  return out;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Our checker and qemu-img's on a finished file, and qemu-img compare against the model. */
async function verifyFile(path: string, model: Uint8Array): Promise<void> {
  assert.deepEqual(await testDiskFile(path), [], path);
  const raw = `${path}.model.raw`;
  writeFileSync(raw, model);
  const info = await describeDiskFile(path);
  if (info.VhdType !== 'Differencing') {
    const check = await run('qemu-img', ['check', '-f', 'vhdx', path]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const cmp = await run('qemu-img', ['compare', '-f', 'vhdx', '-F', 'raw', path, raw]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
  }
}

/** Writes spread over the disk (merged, not yet merged and never-defined chunks alike), 64 KiB each, never overlapping. */
function writePlan(n: number, seed: number): Array<[number, Uint8Array]> {
  return Array.from({ length: n }, (_, i) => [((i * 7919) % 500) * 64 * 1024, pattern(64 * 1024, seed + i)] as [number, Uint8Array]);
}

/** A fresh chain in its own folder, its leaf served as export 'm', and a client connected to it. */
async function served(name: string, layers: string[]): Promise<{ files: string[]; model: Uint8Array; server: BlockServer; client: NbdTestClient }> {
  const dir = join(tmp.dir, name);
  mkdirSync(dir);
  const { files, model } = await chain(dir, layers);
  const server = new BlockServer({ socketDir: join(dir, 'sock') });
  const s = await server.serve(files[files.length - 1]!, { exportName: 'm' });
  return { files, model, server, client: await NbdTestClient.connect(s.socketPath, 'm') };
}

test('live merge of the served leaf into its parent while a client writes: the export ends on the parent, every byte right', async () => {
  const { files, model, server, client } = await served('leaf', ['p.vhdx', 'c.avhdx']);
  const [p, c] = files as [string, string];
  try {
    const plan = writePlan(40, 100);
    const inFlight: Array<Promise<void>> = [];
    let next = 0, committed = false, progressCalls = 0;
    const leaf = await server.merge('m', {
      child: c, target: p,
      // Writes placed by the copy's progress: each chunk copied lets two more go, so they land before, inside and after merged ranges.
      progress: () => {
        progressCalls++;
        for (let k = 0; k < 2 && next < plan.length; k++, next++) {
          const [o, b] = plan[next]!;
          model.set(b, o);
          inFlight.push(client.write(o, b));
        }
      },
      commit: () => { committed = true; return Promise.resolve(); },
    });
    await Promise.all(inFlight);
    assert.ok(progressCalls >= 6, `the copy went chunk by chunk (${progressCalls} progress calls)`);
    assert.ok(committed);
    assert.equal(leaf, p);
    assert.equal(server.get('m')!.path, p);
    assert.equal(existsSync(c), false, 'the merged leaf is deleted');
    // Writes after the merge go to the parent alone.
    for (const [o, b] of writePlan(10, 300)) {
      model.set(b, o);
      await client.write(o, b);
    }
    await client.flush();
    assert.equal(firstDiff(await readAll(client), model), -1);
    await client.disconnect();
  } finally {
    await server.close();
  }
  await verifyFile(p, model);
});

test('live merge of a frozen middle layer: the leaf is re-linked to the target, the middle file goes', async () => {
  const { files, model, server, client } = await served('middle', ['base.vhdx', 'a.avhdx', 'b.avhdx']);
  const [base, a, b] = files as [string, string, string];
  try {
    const plan = writePlan(20, 500);
    const inFlight: Array<Promise<void>> = [];
    let next = 0;
    const leaf = await server.merge('m', {
      child: a, target: base,
      progress: () => {
        if (next < plan.length) {
          const [o, d] = plan[next++]!;
          model.set(d, o);
          inFlight.push(client.write(o, d));
        }
      },
      commit: () => Promise.resolve(),
    });
    await Promise.all(inFlight);
    assert.equal(leaf, b);
    assert.equal(existsSync(a), false);
    await client.flush();
    assert.equal(firstDiff(await readAll(client), model), -1);
    await client.disconnect();
  } finally {
    await server.close();
  }
  assert.equal((await describeDiskFile(b)).ParentPath, base);
  await verifyFile(b, model);
  assert.deepEqual(await testDiskFile(base), []);
});

test('a merge refuses a file that is not in the served chain, and a second swap while it runs', async () => {
  const { files, server, client } = await served('refuse', ['p.vhdx', 'c.avhdx']);
  const [p, c] = files as [string, string];
  const other = join(tmp.dir, 'refuse', 'other.vhdx');
  await makeVhdx(other, { size: SIZE });
  try {
    await assert.rejects(server.merge('m', { child: other, target: p, commit: () => Promise.resolve() }), { code: 'STORAGE_INVALID_ARGUMENT' });
    await assert.rejects(server.merge('m', { child: c, target: other, commit: () => Promise.resolve() }), { code: 'STORAGE_INVALID_ARGUMENT' });
    let branchTried: Promise<unknown> | undefined;
    await server.merge('m', {
      child: c, target: p, commit: () => Promise.resolve(),
      progress: () => { branchTried ??= server.branch('m', 'x.avhdx').then(() => 'branched', (e: { code?: string }) => e.code); },
    });
    assert.equal(await branchTried, 'STORAGE_EXPORT_BUSY');
    await client.disconnect();
  } finally {
    await server.close();
  }
});

test('a failing commit abandons the merge: the export stays on the leaf, nothing lost', async () => {
  const { files, model, server, client } = await served('abandon', ['p.vhdx', 'c.avhdx']);
  const [p, c] = files as [string, string];
  try {
    await assert.rejects(server.merge('m', { child: c, target: p, commit: () => Promise.reject(new Error('no disk space for the config')) }), { code: 'STORAGE_MERGE_FAILED' });
    assert.equal(server.get('m')!.path, c);
    for (const [o, b] of writePlan(5, 700)) {
      model.set(b, o);
      await client.write(o, b);
    }
    assert.equal(firstDiff(await readAll(client), model), -1);
    await client.disconnect();
  } finally {
    await server.close();
  }
  await verifyFile(c, model);
});

test('a paused merge (its signal, or its export stopping) leaves the chain whole; the same merge run again completes it', async () => {
  const { files, model, server, client } = await served('pause', ['p.vhdx', 'c.avhdx']);
  const [p, c] = files as [string, string];
  const neverCommit = () => Promise.reject(new Error('a paused merge must not commit'));
  try {
    const pause = new AbortController();
    let calls = 0;
    await assert.rejects(server.merge('m', { child: c, target: p, signal: pause.signal, commit: neverCommit, progress: () => { if (++calls === 3) pause.abort(); } }),
      { code: 'STORAGE_MERGE_PAUSED' });
    assert.equal(calls, 3, 'it paused after the chunk it was copying');
    assert.equal(server.get('m')!.path, c, 'the export is still on the leaf');
    for (const [o, b] of writePlan(5, 900)) {
      model.set(b, o);
      await client.write(o, b);
    }
    await client.flush();
    assert.equal(firstDiff(await readAll(client), model), -1);
    // Stopping the export pauses its merge too, and the stop waits for the pause.
    let stopping: Promise<void> | undefined;
    await assert.rejects(server.merge('m', { child: c, target: p, commit: neverCommit, progress: () => { stopping ??= server.stop('m'); } }), { code: 'STORAGE_MERGE_PAUSED' });
    await stopping;
    assert.equal(server.get('m'), undefined, 'the export stopped');
    await client.disconnect().catch(() => undefined);
  } finally {
    await server.close();
  }
  await verifyFile(c, model);
  const again = new BlockServer({ socketDir: join(tmp.dir, 'pause', 'sock2') });
  await again.serve(c, { exportName: 'm' });
  try {
    assert.equal(await again.merge('m', { child: c, target: p, commit: () => Promise.resolve() }), p);
  } finally {
    await again.close();
  }
  await verifyFile(p, model);
});

// Kill points as fractions of the copy; 1 is "copied, not yet committed" (or just after).
const KILLS = process.env['VMHOST_LONG'] === '1' ? [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1] : [0.1, 0.5, 1];
for (const at of KILLS) {
  test(`SIGKILL of the serving process at ${Math.round(at * 100)} % of a live merge: restarted on the recorded leaf, no acknowledged write lost, files clean, merge resumable`, async () => {
    const dir = join(tmp.dir, `kill-${at}`);
      mkdirSync(dir);
    const { files, model } = await chain(dir, ['p.vhdx', 'c.avhdx']);
    const [p, c] = files as [string, string];
    const sockDir = join(dir, 'sock');
    let total = 0, done = 0;
    const progressed: Array<() => void> = [];
    const first = await startChildServer(c, sockDir, 'm', children, {
      args: ['--merge', c, p],
      onLine: (l) => {
        const m = /^progress (\d+) (\d+)$/.exec(l);
        if (m) [done, total] = [Number(m[1]), Number(m[2])];
        for (const f of progressed.splice(0)) f();
      },
    });
    // qemu-img bench writes 0x5a over the first 16 MiB, riding out the kill with reconnect-delay.
    const COUNT = 4096;
    const bench = run('qemu-img', ['bench', '--image-opts', '-w', '-t', 'none', '-s', '4k', '-d', '4', '-c', String(COUNT), '--pattern=0x5a',
      `driver=nbd,server.type=unix,server.path=${first.socketPath},export=m,reconnect-delay=20`], 120_000);
    let finished = false;
    void bench.then(() => (finished = true));
    // The merge starts once the writer is under way (its writes have started landing in c).
    const c0 = statSync(c).size;
    while (!finished && statSync(c).size <= c0) await new Promise((r) => setTimeout(r, 2));
    first.child.stdin!.write('go\n');
    while (total === 0 || done < at * total) await new Promise<void>((r) => progressed.push(r));
    await killChild(first.child);
    const leaf = existsSync(join(sockDir, 'committed')) ? readFileSync(join(sockDir, 'committed'), 'utf8') : c;
    const second = await startChildServer(leaf, sockDir, 'm', children);
    const res = await bench;
    assert.equal(res.code, 0, res.stdout + res.stderr);
    await killChild(second.child, 'SIGTERM');
    model.fill(0x5a, 0, COUNT * 4096);
    const d = await openDiskFile(leaf, { readOnly: true });
    const got = new Uint8Array(SIZE);
    await d.read(got, 0);
    await d.close();
    assert.equal(firstDiff(got, model), -1, `after the kill (leaf ${leaf})`);
    for (const f of [c, p].filter(existsSync)) assert.deepEqual(await testDiskFile(f), [], f);
    // Resume: the same merge again, in-process, to the end.
    if (leaf === c) {
      const server = new BlockServer({ socketDir: sockDir });
      try {
        await server.serve(c, { exportName: 'm' });
        assert.equal(await server.merge('m', { child: c, target: p, commit: () => Promise.resolve() }), p);
      } finally {
        await server.close();
      }
    }
    await verifyFile(p, model);
  });
}
