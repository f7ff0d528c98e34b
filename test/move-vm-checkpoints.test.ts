// Move-VM of a VM with a checkpoint, shared-nothing, between two daemons: the checkpoint is
// taken while the guest runs (so it has memory), then the guest changes a file in its memory
// (/tmp/marker) and a block of its disk. A move that fails on B once it has written the
// checkpoint's record leaves nothing there. The move takes the frozen parent as a file, re-points
// it on B, mirrors the running leaf over it and brings the record and its memory into
// -SnapshotFilePath: on B Get-VMSnapshot shows the checkpoint with its files there, the guest
// still sees the changed marker and block, and A has none of the VM's files left. Restore-
// VMSnapshot on B brings back the checkpoint's marker and block. Then the VM moves back to A
// with -RetainVhdCopiesOnSource: its checkpoint comes along, and B's disk files stay, held by
// nobody (opened writable here, locked exclusive). Last, to B on shared storage: the chain stays
// in A's folder, the record and its memory move to B's default checkpoint folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { runCli } from './support/daemon.ts';
import { type CliTools } from './support/cli-tools.ts';
import { twoMigrationHosts, type TwoHosts } from './support/two-hosts.ts';

type Vm = { Id: string; Name: string; State: string };
type Snap = { Id: string; Name: string; State: string; Path: string; HardDrives: string[]; ParentSnapshotId: string | null };
const one = <T>(x: T | T[]): T => (Array.isArray(x) ? x[0]! : x);
const many = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

describe('Move-VM of a VM with checkpoints', () => {
  let hosts: TwoHosts | undefined;
  before(async () => { hosts = await twoMigrationHosts(); });
  after(() => hosts?.stop());

  test('shared-nothing with a live checkpoint: the tree and its memory on B, Restore-VMSnapshot there; back with -RetainVhdCopiesOnSource; then on shared storage', { timeout: 300_000 }, async () => {
    const { a, b, ta, tb, bDest, cliA } = hosts!;
    const t0 = Date.now();
    const mark = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const vm = 'mc1';
    const aDir = join(a.dataDir, 'disks');
    const bDir = join(b.dataDir, 'disks');
    const bSnap = join(b.dataDir, 'checkpoints');
    await mkdir(aDir);
    const disk = join(aDir, 'mc1.vhdx');
    await ta.ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic');
    await ta.ok('New-VM', vm, '-MemoryStartupBytes', '256MB');
    await ta.ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', disk, '-ControllerType', 'SCSI');
    await ta.ok('Start-VM', vm);
    await ta.heartbeat(vm);
    const mark1 = async (t: CliTools, word: string) => {
      const r = await t.sh(vm, `dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); echo ${word} > /tmp/marker; (printf ${word}; head -c ${512 - word.length} /dev/zero) > /tmp/blk; `
        + 'dd if=/tmp/blk of=/dev/$dev bs=512 count=1 oflag=direct conv=notrunc 2>/dev/null && echo written');
      assert.match(r.out, /written/, r.out);
    };
    const seen = async (t: CliTools) => {
      const r = await t.sh(vm, 'dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); cat /tmp/marker; dd if=/dev/$dev bs=512 count=1 iflag=direct 2>/dev/null | head -c 6; echo');
      const [memory, block] = r.out.trim().split('\n').map((l) => l.replace(/\0/g, '').trim());
      return { memory, block };
    };
    await mark1(ta, 'BEFORE');
    await ta.ok('Checkpoint-VM', vm, '-SnapshotName', 'cp1');
    await mark1(ta, 'AFTER');
    const cp = one(await ta.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.equal(cp.State, 'Running', 'the checkpoint holds memory');
    const leafA = one(await ta.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path;
    const { Id } = await ta.json<Vm>('Get-VM', vm);
    mark('checkpoint taken on A, guest changed since');

    // A move that fails on B after it wrote the checkpoint record into -SnapshotFilePath (its disk folder cannot be made): nothing of it stays on B.
    const notDir = join(b.dataDir, 'not-a-dir');
    await writeFile(notDir, '');
    const failed = await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', join(notDir, 'disks'), '-SnapshotFilePath', bSnap);
    assert.notEqual(failed.code, 0, 'the move into a path under a file failed');
    assert.deepEqual([await readdir(bSnap).catch(() => []), await readdir(join(b.dataDir, 'vms'))], [[], []], `B removed what the failed move wrote: ${failed.stderr.trim()}`);
    assert.equal((await ta.json<Vm>('Get-VM', vm)).State, 'Running');

    const moved = await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', bDir, '-SnapshotFilePath', bSnap, '-Json');
    assert.equal(moved.code, 0, moved.stderr);
    assert.deepEqual([(JSON.parse(moved.stdout) as Vm).Id, (JSON.parse(moved.stdout) as Vm).State], [Id, 'Running']);
    mark('moved to B');
    const onB = many(await tb.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.deepEqual(onB.map((s) => [s.Id, s.Name, s.State, s.ParentSnapshotId, s.Path]), [[cp.Id, 'cp1', 'Running', null, bSnap]], 'B shows the same tree');
    assert.deepEqual(onB[0]!.HardDrives, [join(bDir, 'mc1.vhdx')], 'the checkpoint names its frozen file\'s copy on B');
    assert.equal(one(await tb.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path, join(bDir, basename(leafA)));
    assert.deepEqual((await readdir(bSnap)).sort(), [`${cp.Id}.json`, `${cp.Id}.state`], 'the record and its memory are in -SnapshotFilePath');
    assert.deepEqual([existsSync(disk), existsSync(leafA), (await readdir(join(a.dataDir, 'vms'))).length], [false, false, 0], 'A kept none of the VM\'s files');
    assert.deepEqual(await seen(tb), { memory: 'AFTER', block: 'AFTER' }, 'the guest goes on with its memory and disk');

    await tb.ok('Restore-VMSnapshot', vm, 'cp1');
    await tb.heartbeat(vm);
    assert.deepEqual(await seen(tb), { memory: 'BEFORE', block: 'BEFORE' }, 'Restore-VMSnapshot on B brought back the checkpoint\'s memory and disk');
    mark('restored on B');

    // Back to A, keeping B's copies: B's CLI holds A's credential.
    const cliB = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    const runB = (...args: string[]) => runCli(args, { VMHOST_URL: b.url, VMHOST_TOKEN: b.token, VMHOST_CONFIG_DIR: cliB });
    assert.equal((await runB('Set-VMHostCredential', '-ComputerName', `127.0.0.1:${a.port}`, '-Token', a.token)).code, 0);
    const bFiles = (await readdir(bDir)).map((f) => join(bDir, f));
    const back = join(a.dataDir, 'back');
    // -Vhds names the checkpoint's frozen file (read-only, not a drive's): it goes where it is named, the leaf to -DestinationStoragePath over it.
    const base = join(a.dataDir, 'base', 'mc1-base.vhdx');
    const r = await runB('Move-VM', vm, '-DestinationHost', `127.0.0.1:${a.port}`, '-IncludeStorage', '-DestinationStoragePath', back,
      '-Vhds', `@{SourceFilePath=${join(bDir, 'mc1.vhdx')};DestinationFilePath=${base}}`, '-RetainVhdCopiesOnSource');
    assert.equal(r.code, 0, r.stderr);
    await rm(cliB, { recursive: true, force: true });
    mark('moved back to A');
    assert.equal((await ta.json<Vm>('Get-VM', vm)).State, 'Running');
    assert.deepEqual(many(await ta.json<Snap | Snap[]>('Get-VMSnapshot', vm)).map((s) => [s.Id, s.HardDrives]), [[cp.Id, [base]]]);
    assert.deepEqual(await seen(ta), { memory: 'BEFORE', block: 'BEFORE' });
    assert.deepEqual(((await b.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'B let the VM go');
    assert.equal(bFiles.length, 2, `B had the frozen file and the leaf: ${bFiles.join(', ')}`);
    for (const f of bFiles) {
      assert.ok(existsSync(f), `-RetainVhdCopiesOnSource kept ${f}`);
      const d = await openDiskFile(f, { readOnly: false, noParent: true }); // locked exclusive: nobody holds it
      await d.close();
    }
    assert.equal(existsSync(join(bSnap, `${cp.Id}.json`)), false, 'the checkpoint record left B with the VM');

    // Shared storage (B reaches A's folder): the chain stays where it is, the record and its memory go to B's checkpoint folder.
    const leafBack = one(await ta.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path;
    const shared = await cliA('Move-VM', vm, '-DestinationHost', bDest);
    assert.equal(shared.code, 0, shared.stderr);
    mark('moved to B on shared storage');
    const sharedSnaps = many(await tb.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.deepEqual(sharedSnaps.map((s) => [s.Id, s.State, s.HardDrives, s.Path]), [[cp.Id, 'Running', [base], join(b.dataDir, 'vms', Id, 'snapshots')]]);
    assert.equal(one(await tb.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path, leafBack, 'the disks stayed');
    assert.deepEqual((await readdir(join(b.dataDir, 'vms', Id, 'snapshots'))).sort(), [`${cp.Id}.json`, `${cp.Id}.state`]);
    assert.deepEqual([existsSync(base), existsSync(leafBack), (await readdir(join(a.dataDir, 'vms'))).length], [true, true, 0]);
    assert.deepEqual(await seen(tb), { memory: 'BEFORE', block: 'BEFORE' });
  });
});
