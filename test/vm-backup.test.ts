// Incremental backup of a VM (issue 13): a test guest writes a pattern to a 64 MiB data disk
// while Start-VMBackup takes a full point and three incrementals into a restic repository.
// At each point the guest's writer is held (the VM runs on) and the guest's own sha256 of the
// whole disk is the reference; the incrementals read only the changed blocks (bytes printed
// against the disk's size); each running point is application-consistent (the agent answers the
// freeze; the test guest has no block-device file system to freeze — the real Debian guest's
// freeze is proven in debian-backup.test.ts); Restore-VMBackup of every point equals that point's
// sha256. Then the VM is turned off: an off VM's point reads its files, still only the changed
// blocks; a disk written outside the block server makes the next point full and says why;
// -KeepLast keeps the newest points, rebasing the oldest kept incremental as full (it restores
// alone to its sha256); Restore-VMBackup -NewVMName registers a new VM (new id, new MAC, Off)
// on the restored disks, -VMName restores over the off VM's own disk; Remove-VMBackup removes a point with the later points of its chain;
// a corrupted pack file is detected on restore (restic's error, no restored file left).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { sha256OfDisk } from './support/disk-hash.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';

const MiB = 1 << 20;
const SIZE = 64 * MiB;

interface Backup {
  BackupId: string; Kind: string; Point: number; ChangedBytes: number; DataBytes: number; StoredBytes: number; VirtualSize: number;
  ConsistencyLevel: string; ConsistencyNote?: string; VMState: string; Drives: Array<{ FullReason?: string }>; Removed?: string[]; Rebased?: string[];
}
interface Restored { Path: string; PointsApplied: number }

/** A write with our own engine, as another tool would change the file while the VM is off (a new DataWriteGuid). */
async function writeDisk(path: string, offset: number, data: Uint8Array): Promise<void> {
  const d = await openDiskFile(path);
  try {
    await d.write(data, offset);
    await d.flush();
  } finally {
    await d.close();
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await files(p));
    else out.push(p);
  }
  return out;
}

describe('incremental backup', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const guest = async (script: string) => (await ok('Invoke-Command', '-VMName', 'bk', '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();

  test('full + 3 incrementals of a running VM, then off: only changed blocks read, every point restores to its sha256, retention, a new VM, corruption detected', { timeout: 600_000 }, async () => {
    const disk = join(d.dataDir, 'bk-data.vhdx');
    const repo = join(d.dataDir, 'repo');
    await ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic', '-BlockSizeBytes', '1MB');
    await ok('New-VM', 'bk', '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await ok('Add-VMHardDiskDrive', '-VMName', 'bk', '-Path', disk, '-ControllerType', 'SCSI');
    const boot = Date.now();
    await ok('Start-VM', 'bk');
    await waitFor('bk heartbeat', 180_000, async () => (JSON.parse(await ok('Get-VM', 'bk', '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    console.log(`booted in ${((Date.now() - boot) / 1000).toFixed(1)} s`);
    const dev = await guest('ls /sys/bus/scsi/devices/0:0:0:0/block/');
    // The writer: 64 KiB of random bytes at a time into the first 16 MiB (stride 37 × 4 KiB), holding at /tmp/hold.
    const loop = 'touch /tmp/detached; i=0; while :; do '
      + 'if [ -e /tmp/hold ]; then echo $i > /tmp/held; while [ -e /tmp/hold ]; do sleep 0.1; done; rm -f /tmp/held; fi; '
      + `dd if=/dev/urandom of=/dev/${dev} bs=4096 count=16 seek=$(( (i * 37) % 4096 )) oflag=direct conv=notrunc 2>/dev/null; `
      + 'i=$((i+1)); echo $i > /tmp/n; done';
    await guest(`setsid sh -c '${loop}' >/dev/null 2>&1 & while [ ! -f /tmp/detached ]; do sleep 0.1; done; echo started`);
    // One guest call: let the writer go on (again) for 8 writes, hold it (the VM runs on), hash the disk: the point's reference.
    const writeAndHash = async () => (await guest('rm -f /tmp/hold; n0=$(cat /tmp/n 2>/dev/null || echo 0); '
      + 'while [ "$(cat /tmp/n 2>/dev/null || echo 0)" -lt $((n0 + 8)) ]; do sleep 0.1; done; '
      + 'touch /tmp/hold; while [ ! -e /tmp/held ]; do sleep 0.1; done; '
      + `dd if=/dev/${dev} bs=1M iflag=direct 2>/dev/null | sha256sum`)).split(/\s+/)[0]!;
    const backup = async (...extra: string[]) => JSON.parse(await ok('Start-VMBackup', '-VMName', 'bk', '-Destination', repo, ...extra, '-Json')) as Backup;
    const report = (b: Backup) => console.log(`backup point ${b.Point} (${b.Kind}, ${b.VMState}, ${b.ConsistencyLevel}): read ${b.ChangedBytes} of ${b.VirtualSize} bytes (${(100 * b.ChangedBytes / b.VirtualSize).toFixed(1)} %), ${b.DataBytes} bytes of data streamed, ${b.StoredBytes} new bytes stored`);
    const restoresTo = async (b: Backup, sha: string, points: number) => {
      const dest = join(d.dataDir, `restore-${b.Point}-${points}`);
      const [r] = [JSON.parse(await ok('Restore-VMBackup', '-Path', repo, '-BackupId', b.BackupId, '-DestinationPath', dest, '-Json')) as Restored | Restored[]].flat();
      assert.equal(r!.PointsApplied, points);
      assert.equal(await sha256OfDisk(r!.Path), sha, `point ${b.Point} restores to the disk's sha256 at that point`);
    };
    const t0 = Date.now();
    const points: Array<{ b: Backup; sha: string }> = [];
    for (let k = 0; k < 4; k++) {
      const sha = await writeAndHash();
      const b = await backup();
      report(b);
      assert.equal(b.Point, k);
      assert.equal(b.Kind, k === 0 ? 'Full' : 'Incremental');
      assert.equal(b.VirtualSize, SIZE);
      assert.equal(b.ConsistencyLevel, 'ApplicationConsistent', `the agent froze the guest for point ${k}: ${b.ConsistencyNote ?? ''}`);
      if (k > 0) {
        assert.ok(b.ChangedBytes > 0, 'the writer changed blocks since the last point');
        // The writer touched at most its 16 MiB region (plus 64 KiB) since the last point.
        assert.ok(b.ChangedBytes <= 16 * MiB + 128 * 1024, `point ${k} read ${b.ChangedBytes} bytes: more than the writer's region`);
      }
      points.push({ b, sha });
    }
    console.log(`4 points in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(new Set(points.map((p) => p.sha)).size, 4, 'the disk changed between points');
    const listed = JSON.parse(await ok('Get-VMBackup', '-Path', repo, '-VMName', 'bk', '-Json')) as Backup[];
    assert.deepEqual(listed.map((x) => x.BackupId), points.map((p) => p.b.BackupId));
    assert.deepEqual(listed.map((x) => x.ConsistencyLevel), points.map(() => 'ApplicationConsistent'));

    const t1 = Date.now();
    for (const { b, sha } of points) await restoresTo(b, sha, b.Point + 1);
    console.log(`4 restores in ${((Date.now() - t1) / 1000).toFixed(1)} s`);

    // Off: the point reads the file, only the blocks written since point 3.
    const offSha = await writeAndHash();
    await ok('Stop-VM', 'bk', '-TurnOff');
    assert.equal(await sha256OfDisk(disk), offSha, 'the guest\'s writes are in the file');
    const off = await backup();
    report(off);
    assert.deepEqual([off.Point, off.Kind, off.VMState, off.ConsistencyLevel], [4, 'Incremental', 'Off', 'CrashConsistent']);
    assert.ok(off.ChangedBytes > 0 && off.ChangedBytes <= 16 * MiB + 128 * 1024, `the off point read ${off.ChangedBytes} bytes: the writer's blocks only`);

    // Written outside the block server (a new DataWriteGuid the tracker never saw): the next point is full, and says why.
    await writeDisk(disk, 40 * MiB, Buffer.alloc(MiB, 0xab));
    const outsideSha = await sha256OfDisk(disk);
    const full = await backup();
    report(full);
    assert.deepEqual([full.Point, full.Kind], [5, 'Full']);
    assert.match(full.Drives[0]!.FullReason ?? '', /DataWriteGuid/);
    console.log(`full again: ${full.Drives[0]!.FullReason}`);

    // -KeepLast 3: points 4, 5 and the new 6 stay; 4 (an incremental whose full point 0 goes) is rebased as full first.
    const kept = await backup('-KeepLast', '3');
    report(kept);
    assert.equal(kept.Point, 6);
    assert.equal(kept.ChangedBytes, 0, 'nothing written since point 5');
    assert.deepEqual(kept.Removed?.sort(), points.map((p) => p.b.BackupId).sort());
    assert.deepEqual(kept.Rebased, [off.BackupId]);
    assert.deepEqual((JSON.parse(await ok('Get-VMBackup', '-Path', repo, '-Json')) as Backup[]).map((x) => [x.Point, x.Kind]), [[4, 'Full'], [5, 'Full'], [6, 'Incremental']]);
    await restoresTo(off, offSha, 1);

    // A new VM from point 6: new id and MAC, Off, on the restored disk.
    const vm = JSON.parse(await ok('Restore-VMBackup', '-Path', repo, '-BackupId', kept.BackupId, '-NewVMName', 'bk-restored', '-Json')) as { Name: string; Id: string; State: string };
    const old = JSON.parse(await ok('Get-VM', 'bk', '-Json')) as { Id: string };
    assert.deepEqual([vm.Name, vm.State], ['bk-restored', 'Off']);
    assert.notEqual(vm.Id, old.Id);
    const mac = async (name: string) => [JSON.parse(await ok('Get-VMNetworkAdapter', '-VMName', name, '-Json')) as { MacAddress: string } | Array<{ MacAddress: string }>].flat()[0]!.MacAddress;
    assert.notEqual(await mac('bk-restored'), await mac('bk'), 'a new dynamic MAC');
    const [drive] = [JSON.parse(await ok('Get-VMHardDiskDrive', '-VMName', 'bk-restored', '-Json')) as { Path: string } | Array<{ Path: string }>].flat();
    assert.equal(drive!.Path, join(d.dataDir, 'Virtual Hard Disks', 'bk-restored', 'bk-data.vhdx'));
    assert.equal(await sha256OfDisk(drive!.Path), outsideSha, 'the new VM\'s disk is point 6');
    // A generation 2 VM's UEFI variable store came with the point (bk was off from point 4 on: its file is point 6's).
    const varsOf = async (id: string) => {
      const names = (await readdir(join(d.dataDir, 'vms', id))).filter((f) => /^OVMF_VARS.*\.fd$/.test(f));
      return Promise.all(names.map(async (f) => [f, (await readFile(join(d.dataDir, 'vms', id, f))).toString('base64')]));
    };
    const oldVars = await varsOf(old.Id);
    assert.equal(oldVars.length, 1, 'the source VM has one variable store');
    assert.deepEqual(await varsOf(vm.Id), oldVars, 'the new VM has the point\'s UEFI variables, not fresh ones');

    // Over the VM's own disk (it is off): the file is point 4 again; a point of another VM is refused.
    const [over] = [JSON.parse(await ok('Restore-VMBackup', '-Path', repo, '-BackupId', off.BackupId, '-VMName', 'bk', '-Json')) as Restored | Restored[]].flat();
    assert.equal(over!.Path, disk);
    assert.equal(await sha256OfDisk(disk), offSha, 'the VM\'s disk is point 4 again');
    const other = await d.cli('Restore-VMBackup', '-Path', repo, '-BackupId', off.BackupId, '-VMName', 'bk-restored');
    assert.match(other.stderr, /is of VM 'bk'.*not of 'bk-restored'/);

    // Remove-VMBackup cuts the chain from point 5 on (point 6 builds on it).
    await ok('Remove-VMBackup', '-Path', repo, '-BackupId', full.BackupId);
    assert.deepEqual((JSON.parse(await ok('Get-VMBackup', '-Path', repo, '-Json')) as Backup[]).map((x) => x.Point), [4]);

    // Corrupt the largest pack (the point's data, which its restore needs): restic's blob check refuses it.
    const packs = await Promise.all((await files(join(repo, 'data'))).map(async (p) => ({ p, size: (await stat(p)).size })));
    const big = packs.sort((x, y) => y.size - x.size)[0]!;
    const bytes = await readFile(big.p);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 3) + i * 97]! ^= 0x5a;
    await writeFile(big.p, bytes);
    const dest = join(d.dataDir, 'restore-corrupt');
    const bad = await d.cli('Restore-VMBackup', '-Path', repo, '-BackupId', off.BackupId, '-DestinationPath', dest);
    assert.notEqual(bad.code, 0, 'a restore from a corrupted pack fails');
    assert.match(bad.stderr, /restic dump .* failed/);
    console.log(`corrupted pack detected on restore: ${bad.stderr.split('\n').find((l) => /restic dump/.test(l))}`);
    assert.equal(existsSync(join(dest, 'bk-data.vhdx')), false, 'no partial restored file is left');
  });
});
