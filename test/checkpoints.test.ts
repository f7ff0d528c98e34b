// Checkpoints of a running guest (issue 10): Checkpoint-VM while the guest writes; it keeps
// running on a new .avhdx; Restore-VMSnapshot brings back the checkpoint's moment — the
// guest's memory (a counter in RAM), its uptime and its disk content — and the guest runs on.
// Also: checkpoints of an off VM, Rename-VMSnapshot, the tree's parents, the 50 limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';

interface Snap { Name: string; Id: string; State: string; ParentSnapshotName: string | null; ParentSnapshotId: string | null; HardDrives: string[]; SnapshotType: string }
interface Vm { State: string; Heartbeat: string; ParentSnapshotName: string | null; ParentSnapshotId: string | null }

describe('checkpoints', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const guest = async (vm: string, script: string) => (await ok('Invoke-Command', '-VMName', vm, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  const vm = async (name: string) => JSON.parse(await ok('Get-VM', name, '-Json')) as Vm;
  const snaps = async (name: string) => JSON.parse(await ok('Get-VMSnapshot', name, '-Json')) as Snap[];
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

    await ok('New-VM', 'ck3', '-MemoryStartupBytes', '256MB');
    for (let i = 1; i <= 50; i++) assert.equal((await d.api('POST', '/api/v1/vms/ck3/snapshots', { SnapshotName: `c${i}` })).status, 200, `checkpoint ${i}`);
    const over = await d.cli('Checkpoint-VM', 'ck3');
    assert.equal(over.code, 4, over.stderr);
    assert.match(over.stderr, /already has 50 checkpoints/);
  });
});
