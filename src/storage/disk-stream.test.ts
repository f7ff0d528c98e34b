// The disk stream of a shared-nothing move, on its own: a listener whose certificate is not the
// expected one is refused before the secret is sent; a connection without the secret or for
// an unknown disk is refused; writes, trims and flushes land in order; `finish` is reported as
// finished and a close before it as lost (the destination then drops its copy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/errors.ts';
import { testTlsIdentity } from '../../test/support/tls-identity.ts';
import { RemoteDisk, serveDiskStream } from './disk-stream.ts';
import { createMirrorFile } from './mirror-file.ts';
import { openDiskFile } from './open-disk.ts';

test('disk stream: the secret and the name open it; writes land in order; finish versus a close before it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-ds-'));
  const shape = { format: 'VHDX' as const, type: 'Dynamic' as const, virtualSize: 16 << 20, logicalSectorSize: 512, physicalSectorSize: 4096 };
  const targets = new Map([['a', await createMirrorFile(shape, join(dir, 'a.vhdx'))], ['b', await createMirrorFile(shape, join(dir, 'b.vhdx'))]]);
  const secret = Buffer.alloc(32, 7);
  const seen: string[] = [];
  const identity = await testTlsIdentity();
  const fp = identity.fingerprint;
  const server = await serveDiskStream('127.0.0.1', identity, secret, {
    open: (n) => targets.get(n)?.disk,
    finished: (n) => seen.push(`finished ${n}`),
    lost: (n) => seen.push(`lost ${n}`),
  });
  try {
    const refused = (e: unknown) => isVmhostError(e, 'STORAGE_REMOTE_FAILED');
    // Another certificate than the prepare answered (someone in between): refused before the secret is sent.
    const other = fp.replace(/^../, fp.startsWith('00') ? '11' : '00');
    await assert.rejects(RemoteDisk.connect('127.0.0.1', server.port, other, secret, 'a'),
      (e: unknown) => isVmhostError(e, 'TLS_CERTIFICATE_CHANGED') && (e as Error).message.includes(other) && (e as Error).message.includes(fp));
    await assert.rejects(RemoteDisk.connect('127.0.0.1', server.port, fp, Buffer.alloc(32, 8), 'a'), refused);
    await assert.rejects(RemoteDisk.connect('127.0.0.1', server.port, fp, secret, 'nope'), refused);

    const a = await RemoteDisk.connect('127.0.0.1', server.port, fp, secret, 'a');
    assert.deepEqual([a.virtualSize, a.logicalSectorSize, a.physicalSectorSize, a.format], [16 << 20, 512, 4096, 'VHDX']);
    const x = new Uint8Array(1 << 20).fill(1);
    // Sent together, applied in order: the later, overlapping writes win.
    await Promise.all([a.write(x, 0), a.write(new Uint8Array(4096).fill(2), 4096), a.trim(1 << 19, 4096), a.flush()]);
    await a.finish();
    await assert.rejects(a.write(x, 0), (e: unknown) => isVmhostError(e, 'STORAGE_REMOTE_FAILED') && /finished/.test((e as Error).message));
    await a.close();
    await assert.rejects(a.write(x, 0), refused);

    const b = await RemoteDisk.connect('127.0.0.1', server.port, fp, secret, 'b');
    await b.write(x, 0);
    await b.close();
    await waitUntil(() => seen.length === 2);
    assert.deepEqual(seen, ['finished a', 'lost b']);
  } finally {
    await server.close();
    for (const t of targets.values()) await t.disk.close();
  }
  const disk = await openDiskFile(join(dir, 'a.vhdx'), { readOnly: true });
  try {
    const buf = new Uint8Array(3 * 4096);
    await disk.read(buf, 0);
    assert.deepEqual([buf[0], buf[4096], buf[8191], buf[8192]], [1, 2, 2, 1]);
    await disk.read(buf.subarray(0, 4096), 1 << 19);
    assert.equal(buf[0], 0, 'the trim landed after the first write');
  } finally {
    await disk.close();
    await rm(dir, { recursive: true, force: true });
  }
});

async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}
