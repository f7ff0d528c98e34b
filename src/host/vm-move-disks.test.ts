// Move-VM's disk part on the source, without a VM: where a shared-nothing move puts the frozen
// files of a VM's chains (planChains), and files sent as files over a real disk stream into the
// destination's IncomingFiles — leaving from the migration network's source address (a proxy
// in front of the listener sees where each connection comes from), holes kept, bytes equal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { serveDiskStream } from '../storage/index.ts';
import { IncomingFiles } from './move-incoming-files.ts';
import { DiskCopies, planChains } from './vm-move-disks.ts';
import { VmStorage } from './vm-storage.ts';

test('planChains: frozen files beside their drive\'s leaf or in -DestinationStoragePath, parents first, leaves over their parent\'s copy', () => {
  const drives = [{ driveId: 'd1', chain: ['/a/x_2.avhdx', '/a/x_1.avhdx', '/a/x.vhdx'] }, { driveId: 'd2', chain: ['/a/y.vhdx'] }];
  // A checkpoint's drive names the file it froze.
  const checkpoints = [{ driveId: 'd1', chain: ['/a/x_1.avhdx', '/a/x.vhdx'] }];
  const leaves = { d1: '/b/one/x_2.avhdx', d2: '/b/two/y.vhdx' };
  const beside = planChains('vm', leaves, drives, checkpoints, {});
  assert.deepEqual(beside.frozen, [
    { from: '/a/x.vhdx', to: '/b/one/x.vhdx', parent: null },
    { from: '/a/x_1.avhdx', to: '/b/one/x_1.avhdx', parent: '/b/one/x.vhdx' },
  ]);
  assert.deepEqual(beside.leafParents, { d1: '/b/one/x_1.avhdx' });
  assert.equal(beside.map('/a/x_2.avhdx'), '/b/one/x_2.avhdx');
  const inDir = planChains('vm', leaves, drives, checkpoints, { destinationStoragePath: '/c' });
  assert.deepEqual(inDir.frozen.map((f) => f.to), ['/c/x.vhdx', '/c/x_1.avhdx']);
  // A drive the VM no longer has: its checkpoint's files need a folder.
  assert.throws(() => planChains('vm', leaves, drives, [...checkpoints, { driveId: 'gone', chain: ['/a/z.vhdx'] }], {}), (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && /DestinationStoragePath/.test((e as Error).message));
  assert.throws(() => planChains('vm', { d1: '/b/x.vhdx', d2: '/b/y.vhdx' }, [{ driveId: 'd1', chain: ['/a/1/x.vhdx', '/a/p.vhdx'] }, { driveId: 'd2', chain: ['/a/2/y.vhdx', '/a/2/p.vhdx'] }], [], {}),
    (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && /both become \/b\/p\.vhdx/.test((e as Error).message));
});

test('files sent as files: from the migration network\'s address, holes kept, every byte there', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-mvd-'));
  const secret = randomBytes(32);
  // An odd-sized sparse file, as a checkpoint's memory can be: data at the start and past a hole.
  const src = join(dir, 'src.state');
  const fh = await open(src, 'w');
  await fh.write(randomBytes(100_000), 0, 100_000, 0);
  await fh.write(randomBytes(5000), 0, 5000, 9 << 20);
  await fh.close();
  const size = (await stat(src)).size;
  const files = await IncomingFiles.create([{ stream: 'file:0', size, kind: 'memory', name: 'copy.state' }], join(dir, 'snapshots'));
  const lost: string[] = [];
  const server = await serveDiskStream('127.0.0.1', secret, { open: (n) => files.disk(n), finished: (n) => files.finished(n), lost: (n) => lost.push(n) });
  const peers: string[] = [];
  const proxy = createServer((c) => {
    peers.push(c.remoteAddress ?? '?');
    const up = createConnection({ host: '127.0.0.1', port: server.port });
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const storage = new VmStorage(dir);
  try {
    const copies = new DiskCopies(storage, [], [{ from: src, stream: 'file:0' }]);
    const port = (proxy.address() as { port: number }).port;
    const seen: number[] = [];
    await copies.start({ MoveId: 'm', Address: '127.0.0.1', Port: 0, Secret: secret.toString('base64'), DiskPort: port }, '127.0.0.1', '127.0.0.2', (f) => seen.push(f), new AbortController());
    await files.ready;
    assert.deepEqual(peers, ['127.0.0.2'], 'the stream left from the given local address');
    assert.deepEqual(lost, []);
    assert.equal(seen.at(-1), 1);
    const copy = join(dir, 'snapshots', 'copy.state');
    assert.ok((await readFile(copy)).equals(await readFile(src)), 'the copy holds every byte');
    assert.ok((await stat(copy)).blocks * 512 < size / 2, 'the hole stayed a hole');
  } finally {
    await server.close();
    await new Promise((r) => proxy.close(r));
    await storage.server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
