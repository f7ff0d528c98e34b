// The real Debian 12 guest (issue 9) in integration tests: the cached image is the read-only
// parent of each VM's differencing disk, and a boot waits for what a user waits for — the
// agent (Heartbeat OK), the KVP items and the end of systemd's start-up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDebianImage } from '../../src/guest/index.ts';
import { openDiskFile } from '../../src/storage/index.ts';
import { waitFor, type TestDaemon } from './daemon.ts';
import type { CliTools } from './cli-tools.ts';

/** Systemd start-up under TCG: tens of seconds on an idle machine, more when the suite runs two files at once. */
export const DEBIAN_BOOT_MS = 480_000;

export interface DebianParent {
  /** The cached Debian VHDX: never written, only a parent. */
  disk: string;
  /** Where the ext4 root partition (3) starts, in bytes. */
  rootStart: number;
  /** Its length in bytes. */
  rootLength: number;
}

/** Builds or finds the Debian image; where its root file system starts. */
export async function debianParent(): Promise<DebianParent> {
  const image = await ensureDebianImage();
  const manifest = JSON.parse(await readFile(image.manifest, 'utf8')) as { partitions: { number: number; startSector: number; sectors: number }[] };
  const root = manifest.partitions.find((p) => p.number === 3)!;
  return { disk: image.disk, rootStart: root.startSector * 512, rootLength: root.sectors * 512 };
}

/**
 * The host's word on the ext4 file system at [start, start + length) of a disk file (a restored
 * backup, a crash-consistent recovery point): copied out as a sparse raw file (data extents
 * only), its superblock's needs_recovery flag (a journal left to replay: copied mounted, not
 * frozen) and `e2fsck -fn` on it. With `replayJournal`, a journal left to replay is replayed into
 * the copy first (`e2fsck -E journal_only`, as a mount would), so the check judges the file
 * system a boot sees rather than one whose last transactions are still in the journal.
 */
export async function hostFsck(disk: string, start: number, length: number, scratch: string, o: { replayJournal?: boolean } = {}): Promise<{ needsRecovery: boolean; status: number | null; output: string }> {
  const sb = Buffer.alloc(1024);
  try {
    const d = await openDiskFile(disk, { readOnly: true });
    const fh = await open(scratch, 'wx+', 0o600);
    try {
      await fh.truncate(length);
      const buf = new Uint8Array(4 << 20);
      for (const x of await d.blockStatus(start, length)) {
        if (x.zero) continue;
        for (let o = 0; o < x.length; o += buf.length) {
          const n = Math.min(buf.length, x.length - o);
          await d.read(buf.subarray(0, n), x.offset + o);
          await fh.write(buf, 0, n, x.offset + o - start);
        }
      }
      await fh.read(sb, 0, 1024, 1024);
    } finally {
      await fh.close();
      await d.close();
    }
    assert.equal(sb.readUInt16LE(0x38), 0xef53, 'ext4 superblock magic');
    const needsRecovery = (sb.readUInt32LE(0x60) & 0x4) !== 0;
    let replayed = '';
    if (needsRecovery && o.replayJournal) {
      const r = spawnSync('e2fsck', ['-E', 'journal_only', '-p', scratch], { encoding: 'utf8' });
      if (r.error) throw r.error;
      replayed = `journal replay (e2fsck -E journal_only -p) exit ${r.status}\n${r.stdout}${r.stderr}`;
    }
    const fsck = spawnSync('e2fsck', ['-fn', scratch], { encoding: 'utf8' });
    if (fsck.error) throw fsck.error; // no e2fsck: a failure, never a skip
    return { needsRecovery, status: fsck.status, output: replayed + fsck.stdout + fsck.stderr };
  } finally {
    await rm(scratch, { force: true });
  }
}

/** A VM on its own differencing child `<dir>/<name>.vhdx` of the Debian disk; returns the child's path. `newVmArgs` go to New-VM (e.g. -SwitchName). */
export async function newDebianVm(t: CliTools, parent: string, dir: string, name: string, generation: '1' | '2', ...newVmArgs: string[]): Promise<string> {
  const disk = join(dir, `${name}.vhdx`);
  await t.ok('New-VHD', '-Path', disk, '-ParentPath', parent, '-Differencing');
  await t.ok('New-VM', '-Name', name, '-Generation', generation, '-MemoryStartupBytes', '512MB', '-VHDPath', disk, ...newVmArgs);
  assert.equal((await t.json<{ BootSource: string }>('Get-VM', name)).BootSource, 'Firmware', 'a disk with a boot loader boots through the firmware');
  return disk;
}

/** Start, then wait for the agent (Heartbeat OK), the KVP items and the end of systemd's start-up; returns how long it took (ms). */
export async function bootDebian(d: TestDaemon, t: CliTools, name: string): Promise<number> {
  const started = Date.now();
  await t.ok('Start-VM', name);
  await debianReady(d, t, name);
  return Date.now() - started;
}

/** Wait for a started Debian VM's agent (Heartbeat OK), its KVP items and the end of systemd's start-up. */
export async function debianReady(d: TestDaemon, t: CliTools, name: string): Promise<void> {
  type Vm = { Heartbeat: string; GuestKvp: Record<string, unknown> };
  await waitFor(`${name} heartbeat`, DEBIAN_BOOT_MS, async () => (await t.json<Vm>('Get-VM', name)).Heartbeat === 'OK');
  const kvp = await waitFor(`${name} KVP`, 60_000, async () => { const k = (await t.json<Vm>('Get-VM', name)).GuestKvp; return typeof k.OSName === 'string' && k; });
  assert.match(String(kvp.OSName), /^Debian GNU\/Linux 12/);
  const state = await d.cli('Invoke-Command', '-VMName', name, '-ScriptBlock', 'systemctl is-system-running --wait', '-TimeoutSeconds', String(DEBIAN_BOOT_MS / 1000));
  assert.match(state.stdout.trim(), /^(running|degraded)$/, state.stdout + state.stderr);
}
