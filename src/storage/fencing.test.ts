// The fencing stage (fencing.ts) with a real NBD client on a served VHDX: while the token is
// known valid writes pass; once its validity runs out or the token is revoked as stale, writes,
// trims and write-zeroes fail with STORAGE_FENCED (EPERM on the wire) and reach nothing, while
// reads still answer. No sleeps: the fence's clock is the test's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { BlockServer } from './index.ts';
import { FencingStage, OwnershipFence } from './fencing.ts';
import { tempDir, makeVhdx, pattern } from './test-support.ts';
import { NbdError, NbdTestClient } from './nbd/test-client.ts';
import type { IoRequest } from './pipeline.ts';

const MiB = 1 << 20;
const EPERM = 1;
const tmp = tempDir('nbd-fence-');
const server = new BlockServer({ socketDir: join(tmp.dir, 'sock') });
after(async () => {
  await server.close();
  tmp.cleanup();
});

test('a stale or expired ownership token refuses writes with a typed error; reads pass', async () => {
  await makeVhdx(join(tmp.dir, 'f.vhdx'), { size: 8 * MiB }, [[0, pattern(MiB, 1)]]);
  let now = 1000;
  const fence = new OwnershipFence(42, () => now);
  const stage = new FencingStage(fence);
  const s = await server.serve(join(tmp.dir, 'f.vhdx'), { exportName: 'f' });
  server.addStage('f', stage, { before: 'metering' });
  assert.deepEqual(server.pipeline('f').names, ['fencing', 'metering', 'qos']);
  const c = await NbdTestClient.connect(s.socketPath, 'f');
  try {
    // Never renewed: not known valid.
    await assert.rejects(c.write(0, pattern(4096, 2)), (e: NbdError) => e.errno === EPERM);
    fence.renew(now + 3000);
    await c.write(0, pattern(4096, 3));
    assert.deepEqual(await c.read(0, 4096), Buffer.from(pattern(4096, 3)));

    now += 3000; // the lease keepalive did not come back in time
    await assert.rejects(c.write(0, pattern(4096, 4)), (e: NbdError) => e.errno === EPERM);
    await assert.rejects(c.writeZeroes(0, 4096), (e: NbdError) => e.errno === EPERM);
    assert.deepEqual(await c.read(0, 4096), Buffer.from(pattern(4096, 3)), 'the refused writes changed nothing');

    fence.renew(now + 3000);
    await c.write(4096, pattern(4096, 5));
    assert.equal(fence.revoked, false, 'a lapsed guarantee is not a revoked token');
    fence.revoke('owner key now at revision 57');
    assert.equal(fence.revoked, true);
    fence.renew(now + 9000); // a renewal after a revoke does not bring the token back
    await assert.rejects(c.write(4096, pattern(4096, 6)), (e: NbdError) => e.errno === EPERM);
    assert.deepEqual(await c.read(4096, 4096), Buffer.from(pattern(4096, 5)));
    assert.deepEqual(await c.read(MiB - 4096, 4096), Buffer.from(pattern(MiB, 1).subarray(MiB - 4096)));
    await c.flush();
    assert.equal(stage.refused, 4);
  } finally {
    c.destroy();
    await server.stop('f');
  }
});

test('the stage\'s refusal is STORAGE_FENCED with the export, the operation and the token', async () => {
  const fence = new OwnershipFence(7, () => 0);
  fence.revoke('another node owns the VM');
  const req: IoRequest = { kind: 'trim', offset: 512, length: 512, fua: false, noHole: false, exportName: 'disk-x' };
  await assert.rejects(new FencingStage(fence).handle(req, () => Promise.resolve({})), (e: unknown) => {
    assert.ok(isVmhostError(e));
    assert.equal(e.code, 'STORAGE_FENCED');
    assert.deepEqual([e.context.op, e.context.export, e.context.token], ['trim', 'disk-x', 7]);
    assert.match(e.message, /stale: another node owns the VM/);
    return true;
  });
  const read: IoRequest = { ...req, kind: 'read', data: new Uint8Array(512) };
  assert.deepEqual(await new FencingStage(fence).handle(read, () => Promise.resolve({ zero: true })), { zero: true });
});
