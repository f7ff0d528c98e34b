// Incremental backup of a running VM (issue 13): a test guest writes a pattern to a 64 MiB data
// disk while Start-VMBackup takes a full point and three incrementals into a restic repository.
// At each point the guest's writer is held (the VM runs on) and the guest's own sha256 of the
// whole disk is the reference; the incrementals read only the changed blocks (bytes printed
// against the disk's size); Restore-VMBackup of every point equals that point's sha256; a
// corrupted pack file is detected on restore (restic's error, no restored file left); Remove-VMBackup
// removes a point with the later points of its chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';

const MiB = 1 << 20;
const SIZE = 64 * MiB;

interface Backup { BackupId: string; Kind: string; Point: number; ChangedBytes: number; DataBytes: number; StoredBytes: number; VirtualSize: number }
interface Restored { Path: string; PointsApplied: number }

async function sha256OfDisk(path: string): Promise<string> {
  const d = await openDiskFile(path, { readOnly: true });
  try {
    const h = createHash('sha256');
    const buf = new Uint8Array(4 * MiB);
    for (let o = 0; o < d.virtualSize; o += buf.length) {
      await d.read(buf, o);
      h.update(buf);
    }
    return h.digest('hex');
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

  test('full + 3 incrementals of a running VM: only changed blocks read, every point restores to its sha256, corruption detected', { timeout: 600_000 }, async () => {
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
    const t0 = Date.now();
    const points: Array<{ b: Backup; sha: string }> = [];
    for (let k = 0; k < 4; k++) {
      // One guest call: let the writer go on (again) for 8 writes, hold it (the VM runs on), hash the disk: the point's reference.
      const sha = (await guest('rm -f /tmp/hold; n0=$(cat /tmp/n 2>/dev/null || echo 0); '
        + 'while [ "$(cat /tmp/n 2>/dev/null || echo 0)" -lt $((n0 + 8)) ]; do sleep 0.1; done; '
        + 'touch /tmp/hold; while [ ! -e /tmp/held ]; do sleep 0.1; done; '
        + `dd if=/dev/${dev} bs=1M iflag=direct 2>/dev/null | sha256sum`)).split(/\s+/)[0]!;
      const b = JSON.parse(await ok('Start-VMBackup', '-VMName', 'bk', '-Destination', repo, '-Json')) as Backup;
      console.log(`backup point ${b.Point} (${b.Kind}): read ${b.ChangedBytes} of ${b.VirtualSize} bytes (${(100 * b.ChangedBytes / b.VirtualSize).toFixed(1)} %), ${b.DataBytes} bytes of data streamed, ${b.StoredBytes} new bytes stored`);
      assert.equal(b.Point, k);
      assert.equal(b.Kind, k === 0 ? 'Full' : 'Incremental');
      assert.equal(b.VirtualSize, SIZE);
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

    const t1 = Date.now();
    for (const { b, sha } of points) {
      const dest = join(d.dataDir, `restore-${b.Point}`);
      const [r] = [JSON.parse(await ok('Restore-VMBackup', '-Path', repo, '-BackupId', b.BackupId, '-DestinationPath', dest, '-Json')) as Restored | Restored[]].flat();
      assert.equal(r!.PointsApplied, b.Point + 1);
      assert.equal(await sha256OfDisk(r!.Path), sha, `point ${b.Point} restores to the guest's sha256 at that point`);
    }

    console.log(`4 restores in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    // Remove-VMBackup cuts the chain from point 2 on (they build on it).
    await ok('Remove-VMBackup', '-Path', repo, '-BackupId', points[2]!.b.BackupId);
    assert.deepEqual((JSON.parse(await ok('Get-VMBackup', '-Path', repo, '-Json')) as Backup[]).map((x) => x.Point), [0, 1]);

    // Corrupt the largest pack (the full point's data, which every restore needs): restic's blob check refuses it.
    const packs = await Promise.all((await files(join(repo, 'data'))).map(async (p) => ({ p, size: (await stat(p)).size })));
    const big = packs.sort((x, y) => y.size - x.size)[0]!;
    const bytes = await readFile(big.p);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 3) + i * 97]! ^= 0x5a;
    await writeFile(big.p, bytes);
    const dest = join(d.dataDir, 'restore-corrupt');
    const bad = await d.cli('Restore-VMBackup', '-Path', repo, '-BackupId', points[1]!.b.BackupId, '-DestinationPath', dest);
    assert.notEqual(bad.code, 0, 'a restore from a corrupted pack fails');
    assert.match(bad.stderr, /restic dump .* failed/);
    console.log(`corrupted pack detected on restore: ${bad.stderr.split('\n').find((l) => /restic dump/.test(l))}`);
    assert.equal(existsSync(join(dest, 'bk-data.vhdx')), false, 'no partial restored file is left');
  });
});
