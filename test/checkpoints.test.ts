// Checkpoints of a running guest (issue 10): Checkpoint-VM while the guest writes; it keeps
// running on a new .avhdx; Restore-VMSnapshot brings back the checkpoint's moment — the
// guest's memory (a counter in RAM), its uptime and its disk content — and the guest runs on.
// Also: checkpoints of an off VM, Rename-VMSnapshot, the tree's parents, the 50 limit, and
// Remove-VMSnapshot merging the disks of an off VM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { basename, join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

interface Snap { Name: string; Id: string; State: string; ParentSnapshotName: string | null; ParentSnapshotId: string | null; HardDrives: string[]; SnapshotType: string }
interface Vm { State: string; Heartbeat: string; ParentSnapshotName: string | null; ParentSnapshotId: string | null }

describe('checkpoints', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const guest = async (vm: string, script: string) => (await ok('Invoke-Command', '-VMName', vm, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  const vm = async (name: string) => JSON.parse(await ok('Get-VM', name, '-Json')) as Vm;
  const snaps = async (name: string) => JSON.parse((await ok('Get-VMSnapshot', name, '-Json')) || '[]') as Snap[]; // nothing at all when there are none
  const heartbeat = (name: string) => waitFor(`${name} heartbeat`, 120_000, async () => (await vm(name)).Heartbeat === 'OK');

  test('a running guest: checkpoint, change memory and disk, restore: memory, uptime and disk are the checkpoint\'s; the guest runs on', { timeout: 600_000 }, async () => {
    const disk = join(d.dataDir, 'ck-data.vhdx');
    await ok('New-VHD', '-Path', disk, '-SizeBytes', '256MB', '-Dynamic');
    await ok('New-VM', 'ck1', '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await ok('Add-VMHardDiskDrive', '-VMName', 'ck1', '-Path', disk, '-ControllerType', 'SCSI');
    await ok('Start-VM', 'ck1');
    await heartbeat('ck1');
    const dev = await guest('ck1', 'ls /sys/bus/scsi/devices/0:0:0:0/block/');
    const region = `dd if=/dev/${dev} bs=1M count=4 iflag=direct 2>/dev/null | sha256sum`;
    await guest('ck1', `echo 1 > /tmp/counter; dd if=/dev/urandom of=/dev/${dev} bs=1M count=4 oflag=direct 2>/dev/null; sync`);
    const diskAtCheckpoint = await guest('ck1', region);

    await ok('Checkpoint-VM', 'ck1', '-SnapshotName', 'before');
    const [taken] = await snaps('ck1');
    assert.equal(taken?.Name, 'before');
    assert.equal(taken?.SnapshotType, 'Standard');
    assert.equal(taken?.State, 'Running');
    assert.deepEqual(taken?.HardDrives, [disk], 'the checkpoint froze the disk the VM was on');
    const afterCk = await vm('ck1');
    assert.equal(afterCk.State, 'Running', 'the VM kept running');
    assert.equal(afterCk.ParentSnapshotName, 'before');
    const drive = JSON.parse(await ok('Get-VMHardDiskDrive', 'ck1', '-Json')) as { Path: string }[];
    const child = drive[0]!.Path;
    assert.equal(basename(child), `ck-data_${taken!.Id}.avhdx`, 'the VM runs on a new differencing disk named as Hyper-V names it');
    const parent = JSON.parse(await ok('Get-VHD', child, '-Json')) as { ParentPath: string; VhdType: string };
    assert.deepEqual([parent.VhdType, parent.ParentPath], ['Differencing', disk]);
    // The guest did not notice: it still reads what it wrote, and goes on writing.
    assert.equal(await guest('ck1', region), diskAtCheckpoint);
    const upAtCheckpoint = Number((await guest('ck1', 'cat /proc/uptime')).split(' ')[0]);
    await guest('ck1', `echo 2 > /tmp/counter; dd if=/dev/urandom of=/dev/${dev} bs=1M count=4 oflag=direct 2>/dev/null; sync`);
    assert.notEqual(await guest('ck1', region), diskAtCheckpoint);
    await new Promise((r) => setTimeout(r, 3000));
    const upBeforeRestore = Number((await guest('ck1', 'cat /proc/uptime')).split(' ')[0]);

    await ok('Restore-VMSnapshot', 'ck1', 'before');
    assert.equal((await vm('ck1')).State, 'Running', 'a running VM goes on running after the restore');
    await heartbeat('ck1');
    assert.equal(await guest('ck1', 'cat /tmp/counter'), '1', 'the guest\'s memory is the checkpoint\'s');
    const upAfterRestore = Number((await guest('ck1', 'cat /proc/uptime')).split(' ')[0]);
    assert.ok(upAfterRestore < upBeforeRestore, `the guest's uptime went back (${upBeforeRestore} → ${upAfterRestore}; checkpoint at ${upAtCheckpoint})`);
    assert.equal(await guest('ck1', region), diskAtCheckpoint, 'the disk is the checkpoint\'s');
    const now = (JSON.parse(await ok('Get-VMHardDiskDrive', 'ck1', '-Json')) as { Path: string }[])[0]!.Path;
    assert.notEqual(now, child);
    assert.equal(existsSync(child), false, 'the state after the checkpoint was discarded');
    assert.equal((await vm('ck1')).ParentSnapshotName, 'before');
    await ok('Stop-VM', 'ck1', '-TurnOff');
    // Remove-VMSavedState -VMSnapshot: the checkpoint keeps its disks and configuration, loses its memory.
    await ok('Remove-VMSavedState', 'ck1', '-VMSnapshot', 'before');
    assert.equal((await snaps('ck1'))[0]?.State, 'Off');
    assert.deepEqual(readdirSync(join(d.dataDir, 'vms', (JSON.parse(await ok('Get-VM', 'ck1', '-Json')) as { Id: string }).Id, 'snapshots')).filter((f) => f.endsWith('.state')), []);
    const again = await d.cli('Remove-VMSavedState', 'ck1', '-VMSnapshot', 'before');
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /checkpoint 'before' of VM 'ck1' has no saved state/);
  });

  test('an off VM: a tree of checkpoints, Rename-VMSnapshot, restore while off, the 51st refused', { timeout: 300_000 }, async () => {
    const disk = join(d.dataDir, 'off-data.vhdx');
    await ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic');
    await ok('New-VM', 'ck2', '-MemoryStartupBytes', '256MB', '-Generation', '2', '-VHDPath', disk);
    await ok('Checkpoint-VM', 'ck2', 'one');
    await ok('Checkpoint-VM', 'ck2', 'two');
    await ok('Restore-VMSnapshot', 'ck2', 'one');
    await ok('Checkpoint-VM', 'ck2', 'three'); // a branch beside "two"
    const s = await snaps('ck2');
    assert.deepEqual(s.map((x) => [x.Name, x.ParentSnapshotName, x.State]), [['one', null, 'Off'], ['two', 'one', 'Off'], ['three', 'one', 'Off']]);
    assert.equal((await vm('ck2')).State, 'Off');
    await ok('Rename-VMSnapshot', 'ck2', 'three', 'branch');
    assert.equal((await vm('ck2')).ParentSnapshotName, 'branch');
    const missing = await d.cli('Restore-VMSnapshot', 'ck2', 'nope');
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /has no checkpoint named 'nope'/);

    // "two" froze a file whose only child the restore discarded: removing it deletes that file too.
    const twoFile = (await snaps('ck2')).find((x) => x.Name === 'two')!.HardDrives[0]!;
    await ok('Remove-VMSnapshot', 'ck2', 'two');
    assert.deepEqual((await snaps('ck2')).map((x) => x.Name), ['one', 'branch']);
    assert.equal(existsSync(twoFile), false);

    await ok('New-VM', 'ck3', '-MemoryStartupBytes', '256MB');
    for (let i = 1; i <= 50; i++) assert.equal((await d.api('POST', '/api/v1/vms/ck3/snapshots', { SnapshotName: `c${i}` })).status, 200, `checkpoint ${i}`);
    const over = await d.cli('Checkpoint-VM', 'ck3');
    assert.equal(over.code, 4, over.stderr);
    assert.match(over.stderr, /already has 50 checkpoints/);
  });

  // Data written through a real NBD client (qemu-io over Mount-VHD) between checkpoints; removing
  // them merges the disks while every byte stays where the VM sees it.
  test('Remove-VMSnapshot of an off VM merges: the newest first, then the first into the base disk; the data stays', { timeout: 300_000 }, async () => {
    const base = join(d.dataDir, 'rm-base.vhdx');
    await ok('New-VHD', '-Path', base, '-SizeBytes', '64MB', '-Dynamic');
    await ok('New-VM', 'ck4', '-MemoryStartupBytes', '256MB', '-Generation', '2', '-VHDPath', base);
    const leaf = async () => (JSON.parse(await ok('Get-VMHardDiskDrive', 'ck4', '-Json')) as { Path: string }[])[0]!.Path;
    const io = async (cmds: string[]) => {
      const path = await leaf();
      const { NbdUri } = JSON.parse(await ok('Mount-VHD', '-Path', path, '-Json')) as { NbdUri: string };
      try {
        const r = await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), NbdUri]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.doesNotMatch(r.stdout, /Pattern verification failed/, r.stdout);
      } finally {
        await ok('Dismount-VHD', '-Path', path);
      }
    };
    await io(['write -P 0x11 0 1M']);
    await ok('Checkpoint-VM', 'ck4', 'first');
    await io(['write -P 0x22 1M 1M']);
    await ok('Checkpoint-VM', 'ck4', 'second');
    await io(['write -P 0x33 2M 1M', 'write -P 0x44 0 64k']);
    const all = ['read -P 0x44 0 64k', 'read -P 0x11 64k 960k', 'read -P 0x22 1M 1M', 'read -P 0x33 2M 1M', 'read -P 0 3M 61M'];
    await io(all);

    const second = (await snaps('ck4')).find((x) => x.Name === 'second')!;
    await ok('Remove-VMSnapshot', 'ck4', 'second');
    assert.deepEqual((await snaps('ck4')).map((x) => x.Name), ['first']);
    assert.equal((await vm('ck4')).ParentSnapshotName, 'first', 'the VM hangs from the removed checkpoint\'s parent');
    assert.equal(await leaf(), second.HardDrives[0], 'the current disk was merged into the file "second" froze');
    await io(all);

    await ok('Remove-VMSnapshot', 'ck4', 'first');
    assert.deepEqual(await snaps('ck4'), []);
    assert.equal(await leaf(), base, 'everything is merged into the base disk');
    assert.equal((await vm('ck4')).ParentSnapshotName, null);
    await io(all);
    assert.equal((await run('qemu-img', ['check', '-f', 'vhdx', base])).code, 0);
    assert.deepEqual(readdirSync(d.dataDir).filter((f) => f.startsWith('rm-base_')), [], 'no .avhdx is left');
  });
});
