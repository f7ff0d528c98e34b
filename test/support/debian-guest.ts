// The real Debian 12 guest (issue 9) in integration tests: the cached image is the read-only
// parent of each VM's differencing disk, and a boot waits for what a user waits for — the
// agent (Heartbeat OK), the KVP items and the end of systemd's start-up.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDebianImage } from '../../src/guest/index.ts';
import { waitFor, type TestDaemon } from './daemon.ts';
import type { CliTools } from './cli-tools.ts';

/** Systemd start-up under TCG: tens of seconds on an idle machine, more when the suite runs two files at once. */
export const DEBIAN_BOOT_MS = 480_000;

export interface DebianParent {
  /** The cached Debian VHDX: never written, only a parent. */
  disk: string;
  /** Where the ext4 root partition (3) starts, in bytes. */
  rootStart: number;
}

/** Builds or finds the Debian image; where its root file system starts. */
export async function debianParent(): Promise<DebianParent> {
  const image = await ensureDebianImage();
  const manifest = JSON.parse(await readFile(image.manifest, 'utf8')) as { partitions: { number: number; startSector: number }[] };
  return { disk: image.disk, rootStart: manifest.partitions.find((p) => p.number === 3)!.startSector * 512 };
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
