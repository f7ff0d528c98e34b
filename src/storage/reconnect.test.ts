// QEMU's NBD client rides out a block-server crash (the issue's "a daemon crash is not a
// power loss", at the storage level): qemu-img bench writes through
// -blockdev-style options with reconnect-delay while the serving process is SIGKILLed and
// started again on the same socket path. The run ends without an I/O error and every
// byte it wrote is in the VHDX, which passes checkVhdx.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { NodeFile } from '../blockio/index.ts';
import { checkVhdx } from '../vhd/index.ts';
import { openDiskFile } from './index.ts';
import { tempDir, makeVhdx, run, startChildServer, killChild } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('nbd-reconnect-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

test('qemu-img bench with reconnect-delay survives a SIGKILL and restart of the server', async () => {
  const disk = join(tmp.dir, 'r.vhdx');
  const sockDir = join(tmp.dir, 'sock');
  await makeVhdx(disk, { size: 64 * MiB, blockSize: MiB });
  const first = await startChildServer(disk, sockDir, 'r', children);
  const COUNT = 8192; // 32 MiB of 4 KiB writes
  const bench = run('qemu-img', ['bench', '--image-opts', '-w', '-t', 'none', '-s', '4k', '-d', '4', '-c', String(COUNT), '--pattern=0x5a',
    `driver=nbd,server.type=unix,server.path=${first.socketPath},export=r,reconnect-delay=20`], 120_000);
  let finished = false;
  void bench.then(() => (finished = true));
  // Kill on progress, not on a clock: once a few MiB of blocks have been allocated the run is
  // well under way yet far from its 32 MiB end, however fast this machine is.
  const base = statSync(disk).size;
  while (!finished && statSync(disk).size < base + 4 * MiB) await new Promise((r) => setTimeout(r, 5));
  await killChild(first.child);
  assert.equal(finished, false, 'the kill came after the run ended');
  const second = await startChildServer(disk, sockDir, 'r', children);
  const res = await bench;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /Run completed/);
  await killChild(second.child, 'SIGTERM');

  const f = await NodeFile.open(disk, { readOnly: true });
  assert.deepEqual(await checkVhdx(f), []);
  await f.close();
  const d = await openDiskFile(disk, { readOnly: true });
  const b = new Uint8Array(COUNT * 4096);
  await d.read(b, 0);
  await d.close();
  const bad = b.findIndex((x) => x !== 0x5a);
  assert.equal(bad, -1, `byte ${bad} is ${b[bad]}`);
});
