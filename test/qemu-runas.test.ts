// QEMU does not keep root (issue 16 item 6): a daemon running as root starts every QEMU with
// `-runas vmhost-qemu`, and what QEMU reaches after dropping root still works — SCSI hot-add
// (NBD socket), Connect-VMNetworkAdapter (switch port socket), Set-VMDvdDrive (the ISO, which
// must be readable by that user), Save-VM (the save socket) and the restore. The data dir stays
// 0700/0600; the sockets QEMU reaches sit in the short root, 0710/0660 of the QEMU user's group.
// Also: an unknown --qemu-user stops the daemon before it starts anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shortSocketRoot } from '../src/host/index.ts';
import { ROOT, TestDaemon, freePort, waitFor } from './support/daemon.ts';
import { cliTools } from './support/cli-tools.ts';

const isRoot = process.getuid?.() === 0;
const QEMU_USER = 'vmhost-qemu';

/** uid and gid of the QEMU user (scripts/install-deps.sh creates it). */
function qemuIds(): { uid: number; gid: number } {
  const [, , uid, gid] = execFileSync('getent', ['passwd', QEMU_USER]).toString().trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The fields of /proc/<pid>/status that say what the process may do. */
async function rights(pid: number): Promise<Record<string, string>> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const out: Record<string, string> = {};
  for (const k of ['Uid', 'Gid', 'Groups', 'CapEff', 'CapPrm', 'NoNewPrivs', 'Seccomp']) {
    out[k] = new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim().replace(/\s+/g, ' ') ?? '';
  }
  return out;
}

test('as root, QEMU runs as vmhost-qemu: start, SCSI hot-add, Connect-VMNetworkAdapter, Set-VMDvdDrive, Save-VM and restore work', { skip: !isRoot && 'needs root (QEMU can only change user from root)', timeout: 300_000 }, async () => {
  const { uid, gid } = qemuIds();
  const media = await mkdtemp(join(tmpdir(), 'vmhost-media-'));
  let d: TestDaemon | undefined;
  try {
    // Media the QEMU user may read (an admin's ISO library), and one it may not (a private dir).
    await chmod(media, 0o755);
    const iso = join(media, 'data.iso');
    await writeFile(iso, Buffer.alloc(1 << 20, 0x41), { mode: 0o644 });
    const hidden = await mkdtemp(join(tmpdir(), 'vmhost-hidden-'));
    const secretIso = join(hidden, 'secret.iso');
    await writeFile(secretIso, Buffer.alloc(1 << 20), { mode: 0o600 });

    d = await TestDaemon.start();
    assert.match(d.output, /QEMU as vmhost-qemu/);
    const t = cliTools(d);
    await t.ok('New-VMSwitch', 'LAN', '-SwitchType', 'Private');
    await t.ok('New-VM', 'ra', '-MemoryStartupBytes', '256MB');
    await t.ok('Add-VMNetworkAdapter', '-VMName', 'ra');
    await t.ok('Add-VMDvdDrive', '-VMName', 'ra');
    // The admin's disk (New-VHD runs in the CLI, under the test's umask): kept outside the data dir.
    const hot = join(media, 'hot.vhdx');
    await t.ok('New-VHD', '-Path', hot, '-SizeBytes', '64MB', '-Dynamic');
    await t.ok('Start-VM', 'ra');
    await t.heartbeat('ra');

    const [pid] = await d.qemuPids();
    assert.ok(pid);
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    assert.deepEqual(argv.slice(argv.indexOf('-runas'), argv.indexOf('-runas') + 2), ['-runas', QEMU_USER]);
    assert.equal(argv[argv.indexOf('-sandbox') + 1], 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
    const r = await rights(pid);
    process.stdout.write(`# QEMU ${pid} rights: ${JSON.stringify(r)}\n`);
    assert.equal(r.Uid, `${uid} ${uid} ${uid} ${uid}`, 'real, effective, saved and fs uid are the QEMU user\'s');
    assert.equal(r.Gid, `${gid} ${gid} ${gid} ${gid}`);
    assert.equal(r.Groups, `${gid}`, 'no supplementary group of root\'s');
    assert.equal(r.CapEff, '0000000000000000');
    assert.equal(r.CapPrm, '0000000000000000');
    assert.equal(r.NoNewPrivs, '1');
    assert.equal(r.Seccomp, '2');

    // SCSI hot-add: QEMU connects to a new NBD socket as vmhost-qemu; the guest sees a 64 MiB disk.
    await t.ok('Add-VMHardDiskDrive', '-VMName', 'ra', '-Path', hot, '-ControllerType', 'SCSI', '-ControllerLocation', '1');
    await waitFor('the hot-added disk in the guest', 30_000, async () => / 65536 sd[a-z]$/m.test((await t.sh('ra', 'cat /proc/partitions')).out));

    // Connect-VMNetworkAdapter: QEMU connects its NIC to the switch port's socket.
    await t.ok('Connect-VMNetworkAdapter', '-VMName', 'ra', '-SwitchName', 'LAN');
    await waitFor('the NIC connected to its port', 30_000, async () => {
      const [nic] = [await t.json<{ Connected: boolean } | { Connected: boolean }[]>('Get-VMNetworkAdapter', '-VMName', 'ra')].flat();
      return nic?.Connected === true;
    });

    // Set-VMDvdDrive while running: QEMU opens the ISO itself, as vmhost-qemu.
    await t.ok('Set-VMDvdDrive', '-VMName', 'ra', '-Path', iso);
    await t.fails(/secret\.iso is not readable by vmhost-qemu, the user VM 'ra' runs as/, 'Set-VMDvdDrive', '-VMName', 'ra', '-Path', secretIso);
    const [dvd] = [await t.json<{ Path: string } | { Path: string }[]>('Get-VMDvdDrive', 'ra')].flat();
    assert.equal(dvd?.Path, iso, 'the refused change left the ISO in');
    await rm(hidden, { recursive: true, force: true });

    // Save-VM: QEMU streams its state into the daemon's save socket; Start-VM restores from an fd.
    await t.ok('Save-VM', 'ra');
    assert.equal((await d.qemuPids()).length, 0, 'saved: no QEMU');
    await t.ok('Start-VM', 'ra');
    await t.heartbeat('ra');
    const [restored] = await d.qemuPids();
    assert.equal((await rights(restored!)).Uid, `${uid} ${uid} ${uid} ${uid}`, 'the restored QEMU runs as vmhost-qemu too');
    assert.match((await t.sh('ra', 'cat /proc/partitions')).out, / 65536 sd[a-z]$/m, 'the hot-added disk survived save and restore');

    // Where the sockets are: the short root and its nbd/ and sw/ dirs are root:vmhost-qemu 0710, the sockets 0660.
    const root = shortSocketRoot(d.dataDir);
    for (const dir of [root, join(root, 'nbd'), join(root, 'sw')]) {
      const st = await stat(dir);
      assert.deepEqual([st.mode & 0o777, st.uid, st.gid], [0o710, 0, gid], dir);
    }
    for (const dir of ['nbd', 'sw']) {
      const socks = (await readdir(join(root, dir))).filter((f) => f.endsWith('.sock'));
      assert.ok(socks.length > 0, `sockets in ${dir}/`);
      for (const s of socks) {
        const st = await stat(join(root, dir, s));
        assert.deepEqual([st.mode & 0o777, st.uid, st.gid], [0o660, 0, gid], `${dir}/${s}`);
      }
    }
    const found = execFileSync('find', [d.dataDir, '-perm', '/077']).toString();
    assert.equal(found, '', `group/other-accessible entries in the data dir:\n${found}`);
    await t.ok('Stop-VM', 'ra', '-TurnOff');
  } finally {
    if (d) {
      const root = shortSocketRoot(d.dataDir);
      await d.stop();
      await rm(root, { recursive: true, force: true });
    }
    await rm(media, { recursive: true, force: true });
  }
});

test('an unknown --qemu-user stops the daemon before it starts', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-nouser-'));
  try {
    const p = spawn(join(ROOT, 'bin/vmhostd'), ['--data-dir', dir, '--listen', `127.0.0.1:${await freePort()}`, '--qemu-user', 'no-such-user-vmh'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    p.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    const code = await new Promise<number | null>((ok) => p.on('exit', (c) => ok(c)));
    assert.equal(code, 1, output);
    assert.match(output, /QEMU user 'no-such-user-vmh' does not exist/);
    assert.deepEqual(await readdir(dir), [], 'nothing created in the data dir');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
