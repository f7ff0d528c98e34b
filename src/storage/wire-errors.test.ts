// A failure in the I/O pipeline reaches a real NBD client (qemu-io) as the errno the one error
// table (common/error-codes.ts) gives its code. The server runs in a child under a file size
// limit (prlimit --fsize), so a write past it fails in the kernel with EFBIG: the pipeline
// turns that into STORAGE_NO_SPACE and the client reads "No space left on device" (ENOSPC),
// for a raw disk and for a dynamic VHDX whose new block would land past the limit. Writes
// below the limit still succeed on the same connection's export.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nbdErrnoOf } from '../common/index.ts';
import { tempDir, makeVhdx, run, startChildServer, killChild } from './test-support.ts';
import { ioFailure, Pipeline, type IoRequest } from './pipeline.ts';
import { openDiskFile } from './open-disk.ts';

const MiB = 1 << 20;
const tmp = tempDir('nbd-errno-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

async function writeAt(socketPath: string, exportName: string, offset: number) {
  return run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${offset} 64k`, `nbd+unix:///${exportName}?socket=${socketPath}`]);
}

for (const format of ['raw', 'vhdx'] as const) {
  test(`${format}: a write the host file cannot take reaches qemu-io as ENOSPC`, async () => {
    assert.equal(nbdErrnoOf('STORAGE_NO_SPACE'), 'ENOSPC');
    const disk = join(tmp.dir, `d.${format === 'raw' ? 'img' : 'vhdx'}`);
    if (format === 'raw') {
      writeFileSync(disk, '');
      truncateSync(disk, 16 * MiB);
    } else await makeVhdx(disk, { size: 64 * MiB, blockSize: MiB });
    // Raw: writes past 4 MiB fail. VHDX: room for the file as it is plus one 1 MiB block, which
    // the first write allocates; the next new block cannot be.
    const limit = format === 'raw' ? 4 * MiB : statSync(disk).size + MiB;
    const srv = await startChildServer(disk, join(tmp.dir, `sock-${format}`), format, children, { fileSizeLimit: limit });
    try {
      const below = await writeAt(srv.socketPath, format, 0);
      assert.equal(below.code, 0, below.stdout + below.stderr);
      assert.doesNotMatch(below.stdout, /failed/);
      const past = await writeAt(srv.socketPath, format, 12 * MiB);
      assert.match(past.stdout + past.stderr, /write failed: No space left on device/);
      assert.equal((await writeAt(srv.socketPath, format, 0)).code, 0, 'the export still serves');
    } finally {
      await killChild(srv.child, 'SIGTERM');
    }
  });
}

test('the pipeline rejects with typed errors: raw errnos keep their meaning, stage names are checked', async () => {
  const req: IoRequest = { kind: 'write', offset: 4096, length: 512, data: new Uint8Array(512), fua: false, noHole: false, exportName: 'x' };
  const errno = (code: string) => Object.assign(new Error(`fs said ${code}`), { code });
  assert.equal(ioFailure(errno('ENOSPC'), req).code, 'STORAGE_NO_SPACE');
  assert.equal(ioFailure(errno('EROFS'), req).code, 'STORAGE_READ_ONLY');
  assert.equal(ioFailure(errno('EIO'), req).code, 'STORAGE_IO_ERROR');
  assert.equal(ioFailure(new TypeError('bug'), req).code, 'STORAGE_IO_ERROR');
  const e = ioFailure(errno('EDQUOT'), req);
  assert.deepEqual([e.code, e.context.errno, e.context.offset, e.context.export], ['STORAGE_NO_SPACE', 'EDQUOT', 4096, 'x']);
  assert.equal(nbdErrnoOf(e.code), 'ENOSPC');

  const img = join(tmp.dir, 'p.img');
  writeFileSync(img, Buffer.alloc(MiB));
  const disk = await openDiskFile(img, { readOnly: false });
  const p = new Pipeline(disk);
  p.add({ name: 'refuse', handle: () => { throw errno('ENOSPC'); } });
  await assert.rejects(p.run(req), (x: unknown) => (x as { code?: string }).code === 'STORAGE_NO_SPACE');
  assert.throws(() => p.add({ name: 'refuse', handle: (r, next) => next(r) }), { code: 'STORAGE_STAGE_EXISTS' });
  assert.throws(() => p.add({ name: 'other', handle: (r, next) => next(r) }, { before: 'nope' }), { code: 'STORAGE_NO_SUCH_STAGE' });
  p.close();
  await disk.close();
});
