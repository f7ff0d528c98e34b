// Application-consistent backup of the real Debian 12 guest (issue 13), the long form (the short
// one — one frozen point restored and checked — runs in debian-guest.test.ts's generation 1 boot).
// While a writer in the guest keeps creating files on the root file system (never syncing),
// Start-VMBackup takes a full point with the guest frozen around the point-in-time pause
// (ApplicationConsistent, '/' among the frozen mount points), then — the VSS integration service
// disabled — an incremental one without (CrashConsistent, the reason given). Restored on the
// host, the root file system of the frozen point passes `e2fsck -fn` with no journal to replay;
// the crash-consistent one still has its journal to replay (the contrast that shows the freeze
// did it). One more systemd boot under TCG plus two restores of the ~400 MB image: VMHOST_LONG=1 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestDaemon } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { bootDebian, debianParent, hostFsck, newDebianVm } from './support/debian-guest.ts';

const long = process.env.VMHOST_LONG === '1';

interface Backup { BackupId: string; Point: number; Kind: string; ConsistencyLevel: string; ConsistencyNote?: string; FrozenFileSystems?: string[]; ChangedBytes: number; VirtualSize: number; StoredBytes: number }
interface Restored { Path: string }

describe('application-consistent backup of the real Debian 12 guest', { skip: !long && 'VMHOST_LONG=1 only: a systemd boot plus two restores of the image', timeout: 30 * 60_000 }, () => {
  let d: TestDaemon;
  let t: CliTools;
  before(async () => { d = await TestDaemon.start(); t = cliTools(d); });
  after(async () => { await d?.stop(); });

  test('frozen point: e2fsck -fn clean, no journal to replay; the point taken without VSS has its journal to replay', async (tc) => {
    const { disk: parent, rootStart, rootLength } = await debianParent();
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
    tc.diagnostic(`full point: ${app.ConsistencyLevel} (frozen: ${app.FrozenFileSystems?.join(' ')}), read ${app.ChangedBytes} of ${app.VirtualSize} bytes, ${app.StoredBytes} stored, in ${((Date.now() - t0) / 1000).toFixed(1)} s (loaded machine)`);
    assert.deepEqual([app.Kind, app.ConsistencyLevel], ['Full', 'ApplicationConsistent'], app.ConsistencyNote);
    assert.ok(app.FrozenFileSystems?.includes('/'), 'the root file system was frozen');

    await t.ok('Disable-VMIntegrationService', '-VMName', 'debk', '-Name', 'VSS');
    const crash = await t.json<Backup>('Start-VMBackup', '-VMName', 'debk', '-Destination', repo);
    tc.diagnostic(`incremental point: ${crash.ConsistencyLevel} (${crash.ConsistencyNote}), read ${crash.ChangedBytes} bytes`);
    assert.deepEqual([crash.Kind, crash.ConsistencyLevel], ['Incremental', 'CrashConsistent']);
    assert.match(crash.ConsistencyNote ?? '', /VSS integration service is disabled/);
    await t.ok('Stop-VM', 'debk', '-TurnOff');

    for (const [b, frozen] of [[app, true], [crash, false]] as const) {
      const [r] = [await t.json<Restored | Restored[]>('Restore-VMBackup', '-Path', repo, '-BackupId', b.BackupId, '-DestinationPath', join(d.dataDir, `restore-${b.Point}`))].flat();
      const fsck = await hostFsck(r!.Path, rootStart, rootLength, join(d.dataDir, `root-${b.Point}.img`));
      tc.diagnostic(`point ${b.Point} (${b.ConsistencyLevel}): needs_recovery ${fsck.needsRecovery}, e2fsck -fn exit ${fsck.status}: ${fsck.output.trim().split('\n').at(-1)}`);
      if (frozen) {
        assert.equal(fsck.needsRecovery, false, 'the frozen file system left no journal to replay');
        assert.equal(fsck.status, 0, `e2fsck -fn on the frozen point's root: ${fsck.output}`);
      } else {
        assert.equal(fsck.needsRecovery, true, 'a file system copied mounted and unfrozen has its journal to replay');
      }
    }
  });
});
