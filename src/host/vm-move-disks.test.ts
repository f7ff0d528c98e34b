// Move-VM's disk part on the source, without a VM: where a shared-nothing move puts the frozen
// files of a VM's chains (planChains; -Vhds may name them), and files sent as files over a real disk stream into the
// destination's IncomingFiles — leaving from the migration network's source address (a proxy
// in front of the listener sees where each connection comes from), holes kept, bytes equal;
// frozen disk files re-pointed at their parents' copies, a leaf made over them only once they
// are there, and an abandoned move's files all removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { testTlsIdentity } from '../../test/support/tls-identity.ts';
import { chainFiles, createDifferencingFile, createDiskFile, openDiskFile, serveDiskStream, type DiskStreamServer, type MirrorTarget } from '../storage/index.ts';
import { IncomingFiles, leafAfterFiles, type IncomingFile } from './move-incoming-files.ts';
import { DiskCopies, planChains, plannedDisks } from './vm-move-disks.ts';
import type { VmConfig } from './vm-config.ts';
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

test('-Vhds may name a frozen file (a checkpoint\'s read-only parent): it goes there, the rest as before; an unknown file is refused', () => {
  const vm = { name: 'vm', hardDrives: [{ id: 'd1', path: '/a/x_2.avhdx' }, { id: 'd2', path: '/a/y.vhdx' }] } as unknown as VmConfig;
  const frozen = new Set(['/a/x_1.avhdx', '/a/x.vhdx']);
  const r = { destinationStoragePath: '/c', vhds: [{ SourceFilePath: '/a/x.vhdx', DestinationFilePath: '/base/x-base.vhdx' }, { SourceFilePath: '/a/y.vhdx', DestinationFilePath: '/d/y.vhdx' }] };
  const leaves = plannedDisks(vm, r, frozen);
  assert.deepEqual(leaves, { d1: '/c/x_2.avhdx', d2: '/d/y.vhdx' });
  const plan = planChains('vm', leaves, [{ driveId: 'd1', chain: ['/a/x_2.avhdx', '/a/x_1.avhdx', '/a/x.vhdx'] }, { driveId: 'd2', chain: ['/a/y.vhdx'] }], [{ driveId: 'd1', chain: ['/a/x_1.avhdx', '/a/x.vhdx'] }], r);
  assert.deepEqual(plan.frozen, [
    { from: '/a/x.vhdx', to: '/base/x-base.vhdx', parent: null },
    { from: '/a/x_1.avhdx', to: '/c/x_1.avhdx', parent: '/base/x-base.vhdx' },
  ]);
  assert.throws(() => plannedDisks(vm, { ...r, vhds: [{ SourceFilePath: '/a/other.vhdx', DestinationFilePath: '/d/o.vhdx' }] }, frozen),
    (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && /has no disk \/a\/other\.vhdx \(its disks: .*\/a\/x\.vhdx/.test((e as Error).message));
  assert.throws(() => plannedDisks(vm, { ...r, vhds: [{ SourceFilePath: '/a/x.vhdx', DestinationFilePath: '/c/x_2.avhdx' }] }, frozen),
    (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && /both become \/c\/x_2\.avhdx/.test((e as Error).message), 'a frozen file named onto a leaf\'s destination');
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
  const server = await listen(secret, files, {}, (n) => lost.push(n));
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
    await copies.start({ MoveId: 'm', Address: '127.0.0.1', Port: 0, Secret: secret.toString('base64'), Fingerprint: (await testTlsIdentity()).fingerprint, DiskPort: port }, '127.0.0.1', '127.0.0.2', (f) => seen.push(f), new AbortController());
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

/** A destination's listener for `files` (and `leaves`, by name) with the move's secret. */
async function listen(secret: Buffer, files: IncomingFiles, leaves: Record<string, MirrorTarget> = {}, lost: (name: string) => void = () => undefined): Promise<DiskStreamServer> {
  return serveDiskStream('127.0.0.1', await testTlsIdentity(), secret, { open: (n) => leaves[n]?.disk ?? files.disk(n), finished: (n) => files.finished(n), lost });
}

test('frozen files arrive as files, re-pointed at their parents\' copies; the leaf over them waits for them; an abandoned move removes every file it made', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-mvd-'));
  const secret = randomBytes(32);
  const storage = new VmStorage(dir);
  const src = (n: string) => join(dir, 'a', n);
  const dst = (n: string) => join(dir, 'b', n);
  await mkdir(join(dir, 'a'));
  await createDiskFile(src('base.vhdx'), { format: 'VHDX', type: 'Dynamic', size: 16 << 20 });
  const put = async (path: string, byte: number, at: number) => {
    const d = await openDiskFile(path);
    try { await d.write(new Uint8Array(4096).fill(byte), at); await d.flush(); } finally { await d.close(); }
  };
  await put(src('base.vhdx'), 1, 0);
  await put(src('base.vhdx'), 1, 1 << 20);
  await createDifferencingFile(src('mid.avhdx'), src('base.vhdx'), { format: 'VHDX' });
  await put(src('mid.avhdx'), 2, 1 << 20);
  const incoming = async (to: (n: string) => string): Promise<IncomingFile[]> => [
    { stream: 'file:0', kind: 'disk', path: to('base.vhdx'), parent: null, size: (await stat(src('base.vhdx'))).size },
    { stream: 'file:1', kind: 'disk', path: to('mid.avhdx'), parent: to('base.vhdx'), size: (await stat(src('mid.avhdx'))).size },
  ];
  const outgoing = [{ from: src('base.vhdx'), stream: 'file:0' }, { from: src('mid.avhdx'), stream: 'file:1' }];
  const shape = { format: 'VHDX' as const, type: 'Differencing' as const, virtualSize: 16 << 20, logicalSectorSize: 512, physicalSectorSize: 4096 };
  try {
    const files = await IncomingFiles.create(await incoming(dst), join(dir, 'b', 'snapshots'));
    const leaf = leafAfterFiles(files, shape, dst('leaf.avhdx'), dst('mid.avhdx'));
    // A leaf's write before its parents are here waits for them.
    const early = leaf.disk.write(new Uint8Array(4096).fill(3), 0);
    assert.equal(existsSync(dst('leaf.avhdx')), false);
    const server = await listen(secret, files, { d1: leaf });
    try {
      await new DiskCopies(storage, [], outgoing).start({ MoveId: 'm', Address: '127.0.0.1', Port: 0, Secret: secret.toString('base64'), Fingerprint: (await testTlsIdentity()).fingerprint, DiskPort: server.port }, '127.0.0.1', undefined, () => undefined, new AbortController());
      await early;
      await leaf.disk.flush();
      await leaf.disk.close();
    } finally {
      await server.close();
    }
    const d = await openDiskFile(dst('leaf.avhdx'), { readOnly: true });
    try {
      assert.deepEqual(chainFiles(d), [dst('leaf.avhdx'), dst('mid.avhdx'), dst('base.vhdx')], 'each copy names its parent\'s copy');
      const buf = new Uint8Array(4096);
      const at = async (o: number) => { await d.read(buf, o); return buf[0]; };
      assert.deepEqual([await at(0), await at(1 << 20), await at(2 << 20)], [3, 2, 0]);
    } finally {
      await d.close();
    }

    // Abandoned before its files arrived: the leaf's waiting write fails, and every file made goes.
    const gone = (n: string) => join(dir, 'c', n);
    const files2 = await IncomingFiles.create([...await incoming(gone), { stream: 'file:2', kind: 'memory', name: 'x.state', size: 12345 }], join(dir, 'c', 'snapshots'));
    const leaf2 = leafAfterFiles(files2, shape, gone('leaf.avhdx'), gone('mid.avhdx'));
    const waiting = leaf2.disk.write(new Uint8Array(4096), 0);
    assert.deepEqual([existsSync(gone('base.vhdx')), existsSync(join(dir, 'c', 'snapshots', 'x.state'))], [true, true]);
    const refused = assert.rejects(waiting, (e: unknown) => isVmhostError(e, 'MIGRATION_FAILED'));
    await files2.discard();
    await refused;
    await leaf2.discard();
    assert.deepEqual((await readdir(join(dir, 'c'), { recursive: true })).filter((f) => !f.endsWith('snapshots')), [], 'nothing the move made is left');
  } finally {
    await storage.server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
