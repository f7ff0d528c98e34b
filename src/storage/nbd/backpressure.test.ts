// Reply backpressure (issue 16, item 8): a client that sends READs and never reads the
// replies must not grow the server's memory without bound — replies count against the
// connection's cap until the socket has drained them, and the server stops reading
// requests meanwhile. A slow client that does read gets every reply once it catches up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryFile } from '../../blockio/index.ts';
import { createVhdx, openVhdx } from '../../vhd/index.ts';
import { BlockServer, type ServedDisk } from '../index.ts';
import { NbdTestClient, requestPacket } from './test-client.ts';
import { tempDir, pattern, makeVhdx, startChildServer, killChild } from '../test-support.ts';
import { CMD_READ } from './protocol.ts';

const MiB = 1 << 20;
const DISK = 64 * MiB;
const tmp = tempDir('nbd-backpressure-');
const server = new BlockServer({ socketDir: tmp.dir });
const children = new Set<ChildProcess>();
let served: ServedDisk;

before(async () => {
  const f = new MemoryFile('mem');
  await createVhdx(f, { type: 'Dynamic', virtualSize: DISK, blockSize: MiB });
  const d = await openVhdx(f);
  for (let o = 0; o < DISK; o += 8 * MiB) await d.write(pattern(MiB, o / MiB), o);
  served = await server.serve(d, { exportName: 'bp', closeDisk: true });
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server.close();
  tmp.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

test('a client that never reads replies: 50,000 queued 1 MiB READs keep the server\'s RSS bounded', async () => {
  // The server runs in its own process so that its memory is measured alone and a runaway
  // server cannot starve this test's timers.
  const disk = join(tmp.dir, 'bp.vhdx');
  await makeVhdx(disk, { size: DISK, blockSize: MiB }, [[8 * MiB, pattern(MiB, 8)]]);
  const { child, socketPath } = await startChildServer(disk, join(tmp.dir, 'child'), 'bp', children);
  const COUNT = 50_000;
  const requests = Buffer.concat(Array.from({ length: COUNT }, (_, i) => requestPacket(CMD_READ, 0, i + 1, (i % (DISK / MiB)) * MiB, MiB)));
  const greedy = await NbdTestClient.connect(socketPath, 'bp');
  // Stop reading: replies pile up in the kernel and then in the server's socket buffer.
  greedy.socket.pause();
  const base = rssOf(child.pid!);
  greedy.socket.write(requests);
  // Sample until the growth levels off (no more than 4 MiB in the last 1.5 s) or passes
  // 512 MiB (the unbounded server would go on to queue ~50 GiB of replies), at most 20 s.
  let growth = 0;
  const t0 = Date.now();
  const history: Array<[number, number]> = [];
  for (;;) {
    await sleep(50);
    const now = Date.now() - t0;
    growth = Math.max(growth, rssOf(child.pid!) - base);
    history.push([now, growth]);
    const earlier = history.find(([t]) => t >= now - 1500)!;
    if (growth >= 512 * MiB || now > 20_000 || (now > 2000 && growth - earlier[1] <= 4 * MiB)) break;
  }
  const elapsed = Date.now() - t0;
  if (growth >= 1024 * MiB) await killChild(child);
  greedy.destroy();
  console.log(`never-reading client: server RSS grew ${(growth / MiB).toFixed(0)} MiB in ${elapsed} ms after ${COUNT} 1 MiB READs`);
  assert.ok(growth < 256 * MiB, `server RSS grew ${(growth / MiB).toFixed(0)} MiB for a client that reads no replies`);
  // The server goes on serving others.
  const c = await NbdTestClient.connect(socketPath, 'bp');
  assert.deepEqual(await c.read(8 * MiB, 4096), Buffer.from(pattern(MiB, 8).subarray(0, 4096)));
  await c.disconnect();
  await killChild(child, 'SIGTERM');
});

test('a client that stops reading for a while gets every reply, in full, once it reads again', async () => {
  const c = await NbdTestClient.connect(served.socketPath, 'bp');
  c.socket.pause();
  // 200 MiB of replies: three times the connection's cap.
  const reads = Array.from({ length: 200 }, (_, i) => c.read((i % 8) * 8 * MiB, MiB));
  await sleep(300);
  c.socket.resume();
  const got = await Promise.all(reads);
  got.forEach((b, i) => assert.ok(b.equals(Buffer.from(pattern(MiB, (i % 8) * 8))), `reply ${i}`));
  await c.disconnect();
});
