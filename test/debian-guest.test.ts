// The real Debian 12 guest (issue 9) run by vmhost as a user would run it: each VM boots a
// differencing child of the cached Debian VHDX, served by our block server, through the VM's
// own firmware — generation 1 via SeaBIOS from IDE, generation 2 via OVMF with secure boot On
// (shim → signed GRUB → signed kernel) from SCSI. The integration agent is the systemd service
// the image installs, so Heartbeat, KVP, Invoke-Command and a graceful Stop-VM are the same
// paths the test guest uses; the generation 1 VM also takes a checkpoint, is restored to it
// and merges it back live (issue 10). Two full systemd boots under TCG: a few minutes in all.
// Metering, Move-VMStorage and Move-VM on this guest: debian-move.test.ts (helpers in support/debian-guest.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { DEBIAN_BOOT_MS as BOOT_MS, bootDebian, debianParent, newDebianVm as newVm } from './support/debian-guest.ts';

interface Vm { State: string; Heartbeat: string }

/** Whether the ext4 file system at `partStart` (bytes) of a disk file was unmounted cleanly: state "clean", no journal to replay. */
async function ext4Clean(disk: string, partStart: number): Promise<{ clean: boolean; needsRecovery: boolean }> {
  const d = await openDiskFile(disk, { readOnly: true });
  try {
    const sb = new Uint8Array(1024);
    await d.read(sb, partStart + 1024);
    const v = new DataView(sb.buffer);
    assert.equal(v.getUint16(0x38, true), 0xef53, 'ext4 superblock magic');
    const EXT4_VALID_FS = 1, INCOMPAT_RECOVER = 0x4;
    return { clean: (v.getUint16(0x3a, true) & EXT4_VALID_FS) !== 0, needsRecovery: (v.getUint32(0x60, true) & INCOMPAT_RECOVER) !== 0 };
  } finally {
    await d.close();
  }
}

describe('real Debian 12 guest under vmhost', { timeout: 30 * 60_000 }, () => {
  let d: TestDaemon;
  let t: CliTools;
  let parent: string;
  let rootStart: number;
  before(async () => {
    const [daemon, image] = await Promise.all([TestDaemon.start(), debianParent()]);
    d = daemon;
    t = cliTools(d);
    ({ disk: parent, rootStart } = image);
  });
  after(async () => { await d?.stop(); });

  const vm = (name: string) => t.json<Vm>('Get-VM', name);
  const guest = async (name: string, script: string) => {
    const r = await d.cli('Invoke-Command', '-VMName', name, '-ScriptBlock', script);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const newDebianVm = (name: string, generation: '1' | '2') => newVm(t, parent, d.dataDir, name, generation);
  const boot = (name: string) => bootDebian(d, t, name);
  /** Graceful Stop-VM through the agent; the root file system must come out clean (no fsck on the next boot). */
  const stopClean = async (name: string, disk: string) => {
    await t.ok('Stop-VM', name);
    assert.equal((await vm(name)).State, 'Off');
    assert.deepEqual(await ext4Clean(disk, rootStart), { clean: true, needsRecovery: false }, 'root file system unmounted cleanly');
  };

  test('generation 1: SeaBIOS boots GRUB from the IDE disk; agent, KVP, Invoke-Command; a checkpoint taken, applied and merged live; Stop-VM leaves the root clean', async (tc) => {
    const disk = await newDebianVm('deb1', '1');
    tc.diagnostic(`multi-user after ${await boot('deb1')} ms`);
    assert.match(await readFile(join(d.dataDir, 'vms', (await t.json<{ Id: string }>('Get-VM', 'deb1')).Id, 'firmware.log'), 'latin1'), /Booting from Hard Disk/);
    assert.equal(await guest('deb1', 'test -d /sys/firmware/efi && echo uefi || echo bios'), 'bios');
    assert.equal(await guest('deb1', 'systemctl is-active vmhost-agent.service'), 'active');

    // Checkpoints on the real system: taken running, applied (memory and disk back to that
    // moment, the guest goes on), then removed while it runs (live merge back into its disk).
    await guest('deb1', 'echo before > /root/ck-marker; sync');
    await t.ok('Checkpoint-VM', 'deb1', '-SnapshotName', 'debck');
    assert.notEqual((await t.json<{ Path: string }[]>('Get-VMHardDiskDrive', 'deb1'))[0]!.Path, disk, 'the guest runs on a new .avhdx');
    await guest('deb1', 'echo after > /root/ck-marker; echo new > /root/ck-new; sync');
    await t.ok('Restore-VMSnapshot', 'deb1', 'debck');
    await waitFor('deb1 heartbeat after the restore', BOOT_MS, async () => (await vm('deb1')).Heartbeat === 'OK');
    assert.equal(await guest('deb1', 'cat /root/ck-marker; test -e /root/ck-new && echo present || echo absent'), 'before\nabsent');
    await guest('deb1', 'echo merged > /root/ck-marker; sync');
    await t.ok('Remove-VMSnapshot', 'deb1', 'debck');
    assert.equal((await t.json<{ Path: string }[]>('Get-VMHardDiskDrive', 'deb1'))[0]!.Path, disk, 'merged live back into its disk');
    assert.equal(await guest('deb1', 'cat /root/ck-marker'), 'merged');
    await stopClean('deb1', disk);
  });

  test('generation 2: OVMF secure boot On runs shim → signed GRUB → signed kernel; a SCSI disk hot-added is seen by udev; Stop-VM leaves the root clean', async (tc) => {
    const disk = await newDebianVm('deb2', '2');
    assert.equal((await t.json<{ SecureBoot: string }>('Get-VMFirmware', 'deb2')).SecureBoot, 'On');
    tc.diagnostic(`multi-user after ${await boot('deb2')} ms`);
    assert.match(await guest('deb2', 'mokutil --sb-state'), /SecureBoot enabled/);

    const hot = join(d.dataDir, 'deb2-data.vhdx');
    await t.ok('New-VHD', '-Path', hot, '-SizeBytes', '64MB', '-Dynamic');
    await t.ok('Add-VMHardDiskDrive', '-VMName', 'deb2', '-Path', hot, '-ControllerType', 'SCSI', '-ControllerLocation', '3');
    // udev has processed the new disk once it has a by-path link for SCSI target 0:0:3:0.
    const link = await waitFor('udev to see the hot-added disk', 30_000, async () => {
      const out = await guest('deb2', 'udevadm settle; ls /dev/disk/by-path/ | grep -- "-scsi-0:0:3:0$" || true');
      return out !== '' && out;
    });
    const size = await guest('deb2', `blockdev --getsize64 /dev/disk/by-path/${link}`);
    assert.equal(Number(size), 64 * 1024 * 1024);
    await stopClean('deb2', disk);
  });
});
