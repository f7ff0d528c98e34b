// Application-consistent backup of the real Debian 12 guest (issue 13): the agent's freeze
// (FIFREEZE) is what makes a point's file systems clean. While a writer in the guest keeps
// creating files on the root file system (never syncing), Start-VMBackup takes a full point
// with the guest frozen around the point-in-time pause (ApplicationConsistent, '/' among the
// frozen mount points), then — the VSS integration service disabled — an incremental one
// without (CrashConsistent, the reason given). Restored on the host, the root file system of
// the frozen point passes `e2fsck -fn` with no journal to replay; the crash-consistent one
// still needs its journal replayed (the contrast that shows the freeze did it). One systemd
// boot under TCG plus a full backup and restore of the ~400 MB image: VMHOST_LONG=1 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { bootDebian, debianParent, newDebianVm } from './support/debian-guest.ts';

const long = process.env.VMHOST_LONG === '1';
const MiB = 1 << 20;

interface Backup { BackupId: string; Point: number; Kind: string; ConsistencyLevel: string; ConsistencyNote?: string; ChangedBytes: number; VirtualSize: number; StoredBytes: number }
interface Restored { Path: string }

/** The partition [start, start + length) of a disk file as a sparse raw file (data extents only), for e2fsck. */
async function extractPartition(disk: string, start: number, length: number, out: string): Promise<void> {
  const d = await openDiskFile(disk, { readOnly: true });
  const fh = await open(out, 'wx', 0o600);
  try {
    await fh.truncate(length);
    const buf = new Uint8Array(4 * MiB);
    for (const x of await d.blockStatus(start, length)) {
      if (x.zero) continue;
      for (let o = 0; o < x.length; o += buf.length) {
        const n = Math.min(buf.length, x.length - o);
        await d.read(buf.subarray(0, n), x.offset + o);
        await fh.write(buf, 0, n, x.offset + o - start);
      }
    }
  } finally {
    await fh.close();
    await d.close();
  }
}

/** The ext4 superblock's needs_recovery flag: a journal left to replay (mounted, not frozen, at the point). */
async function needsRecovery(part: string): Promise<boolean> {
  const fh = await open(part, 'r');
  try {
    const sb = Buffer.alloc(1024);
    await fh.read(sb, 0, 1024, 1024);
    assert.equal(sb.readUInt16LE(0x38), 0xef53, 'ext4 superblock magic');
    return (sb.readUInt32LE(0x60) & 0x4) !== 0;
  } finally {
    await fh.close();
  }
}

describe('application-consistent backup of the real Debian 12 guest', { skip: !long && 'VMHOST_LONG=1 only: a systemd boot plus a full backup of the image', timeout: 30 * 60_000 }, () => {
  let d: TestDaemon;
  let t: CliTools;
  before(async () => { d = await TestDaemon.start(); t = cliTools(d); });
  after(async () => { await d?.stop(); });

  test('frozen point: e2fsck -fn clean, no journal to replay; the point taken without VSS needs its journal', async (tc) => {
    const { disk: parent, rootStart } = await debianParent();
    const rootLength = (4096 - 66 - 1) * MiB; // build-debian-guest.sh's layout: 66 MiB … end − 1 MiB
    const repo = join(d.dataDir, 'repo');
    await newDebianVm(t, parent, d.dataDir, 'debk', '1');
    try {
      tc.diagnostic(`multi-user after ${await bootDebian(d, t, 'debk')} ms`);
    } catch (e) {
      tc.diagnostic(`serial console:\n${(await d.api('GET', '/api/v1/vms/debk/console?TailBytes=4000')).text}`);
      throw e;
    }
    const w = await d.cli('Invoke-Command', '-VMName', 'debk', '-ScriptBlock',
      // Files created, written and removed without end, never synced: the journal is always busy.
      'setsid sh -c \'i=0; while :; do dd if=/dev/urandom of=/root/w.$((i % 40)) bs=64k count=4 2>/dev/null; rm -f /root/w.$(((i + 20) % 40)); i=$((i+1)); done\' </dev/null >/dev/null 2>&1 & echo started');
    assert.equal(w.stdout.trim(), 'started', w.stderr);

    const t0 = Date.now();
    const app = await t.json<Backup>('Start-VMBackup', '-VMName', 'debk', '-Destination', repo);
    tc.diagnostic(`full point: ${app.ConsistencyLevel}, read ${app.ChangedBytes} of ${app.VirtualSize} bytes, ${app.StoredBytes} stored, in ${((Date.now() - t0) / 1000).toFixed(1)} s (loaded machine)`);
    assert.deepEqual([app.Kind, app.ConsistencyLevel], ['Full', 'ApplicationConsistent'], app.ConsistencyNote);

    await t.ok('Disable-VMIntegrationService', '-VMName', 'debk', '-Name', 'VSS');
    const crash = await t.json<Backup>('Start-VMBackup', '-VMName', 'debk', '-Destination', repo);
    tc.diagnostic(`incremental point: ${crash.ConsistencyLevel} (${crash.ConsistencyNote}), read ${crash.ChangedBytes} bytes`);
    assert.deepEqual([crash.Kind, crash.ConsistencyLevel], ['Incremental', 'CrashConsistent']);
    assert.match(crash.ConsistencyNote ?? '', /VSS integration service is disabled/);
    await t.ok('Stop-VM', 'debk', '-TurnOff');

    for (const [b, clean] of [[app, true], [crash, false]] as const) {
      const [r] = [await t.json<Restored | Restored[]>('Restore-VMBackup', '-Path', repo, '-BackupId', b.BackupId, '-DestinationPath', join(d.dataDir, `restore-${b.Point}`))].flat();
      const part = join(d.dataDir, `root-${b.Point}.img`);
      await extractPartition(r!.Path, rootStart, rootLength, part);
      const recovery = await needsRecovery(part);
      const fsck = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
      tc.diagnostic(`point ${b.Point} (${b.ConsistencyLevel}): needs_recovery ${recovery}, e2fsck -fn exit ${fsck.status}: ${fsck.stdout.trim().split('\n').at(-1)}`);
      if (clean) {
        assert.equal(recovery, false, 'the frozen file system left no journal to replay');
        assert.equal(fsck.status, 0, `e2fsck -fn on the frozen point's root: ${fsck.stdout}${fsck.stderr}`);
      } else {
        assert.equal(recovery, true, 'a file system copied mounted and unfrozen has its journal to replay');
      }
    }
  });
});
