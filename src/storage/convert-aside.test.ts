// Convert-VHD's destination appears only when complete (disk-create.ts, creatingAside): the
// conversion writes under a hidden name and links the flushed file in. A conversion SIGKILLed
// halfway (the child stops itself at half its progress, then is killed: placed by a count, no
// sleep) leaves nothing at the destination's name; a finished one leaves the file, which
// qemu-img checks and compares equal, and no hidden file; an existing destination is
// ALREADY_EXISTS, refused before any work.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVmhostError } from '../common/errors.ts';
import { convertDiskFile } from './disk-create.ts';
import { pattern, run, tempDir } from './test-support.ts';

const MiB = 1 << 20;
const tmp = tempDir('convert-aside-');
after(() => tmp.cleanup());

/** 32 MiB raw: data in every other MiB (16 data chunks: many progress steps). */
function rawSource(path: string): void {
  const fd = openSync(path, 'wx');
  try {
    ftruncateSync(fd, 32 * MiB);
    for (let m = 0; m < 32; m += 2) writeSync(fd, pattern(MiB, m + 1), 0, MiB, m * MiB);
  } finally {
    closeSync(fd);
  }
}

const hidden = () => readdirSync(tmp.dir).filter((n) => n.includes('.converting-'));

test('a finished conversion is linked in whole; an existing destination is refused before any work', async () => {
  const src = join(tmp.dir, 'a.img'), dst = join(tmp.dir, 'a.vhdx');
  rawSource(src);
  await convertDiskFile(src, dst, { format: 'VHDX', blockSize: MiB });
  assert.equal((await run('qemu-img', ['check', dst])).code, 0);
  const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', src, dst]);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
  assert.deepEqual(hidden(), []);
  let progressed = 0;
  await assert.rejects(convertDiskFile(src, dst, { format: 'VHDX', onProgress: () => progressed++ }), (e: unknown) => isVmhostError(e, 'ALREADY_EXISTS'));
  assert.equal(progressed, 0);
  assert.deepEqual(hidden(), []);
});

test('a conversion killed halfway leaves nothing at the destination name', async () => {
  const src = join(tmp.dir, 'b.img'), dst = join(tmp.dir, 'b.vhdx');
  rawSource(src);
  const module = fileURLToPath(new URL('./disk-create.ts', import.meta.url));
  // Stops (blocks its thread) at the first progress report past half, after saying so.
  const code = `
    const { convertDiskFile } = await import(${JSON.stringify(module)});
    const stop = new Int32Array(new SharedArrayBuffer(4));
    await convertDiskFile(${JSON.stringify(src)}, ${JSON.stringify(dst)}, { format: 'VHDX', blockSize: ${MiB}, onProgress: (done, total) => {
      if (done * 2 >= total && done < total) { process.stdout.write('half\\n'); Atomics.wait(stop, 0, 0); }
    } });
    process.stdout.write('finished\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let out = '';
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve();
    });
    child.on('exit', () => resolve());
  });
  assert.equal(out, 'half\n', 'the child stopped halfway');
  assert.equal(hidden().length, 1, 'the copy is under its hidden name');
  child.kill('SIGKILL');
  await exited;
  assert.equal(existsSync(dst), false);
});
