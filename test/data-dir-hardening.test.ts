// The data dir is the daemon's alone (issue 16 items 2, 4, 5), with real daemons: one daemon
// per data dir held by a kernel lock (a stale or reused pid never blocks a start, a race has
// one winner, SIGKILL frees it); a full disk fails a change cleanly (old file, no temp file,
// memory unchanged); the short socket root in the temp dir is refused when someone else made
// it; after a guest ran, was saved and captured, nothing in the data dir is group/other-accessible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ROOT, TestDaemon, freePort, waitFor } from './support/daemon.ts';

const isRoot = process.getuid?.() === 0;

/** Run vmhostd until it prints 'listening on' (→ 'up') or exits (→ its output). */
function runDaemon(dataDir: string, port: number): { result: Promise<{ up: boolean; output: string }>; kill(): void } {
  const p = spawn(join(ROOT, 'bin/vmhostd'), ['--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const result = new Promise<{ up: boolean; output: string }>((ok) => {
    const on = (b: Buffer): void => { output += b.toString(); if (output.includes('listening on')) ok({ up: true, output }); };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.on('exit', () => ok({ up: false, output }));
  });
  return { result, kill: () => { try { p.kill('SIGKILL'); } catch { /* gone */ } } };
}

test('data-dir lock: a stale pid file naming a live process does not block; two racing daemons: one wins; SIGKILL frees the lock', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-lock-'));
  // A pid file from a dead daemon whose pid now belongs to another program (this test runner).
  await writeFile(join(dir, 'vmhostd.pid'), `${process.pid}\n`);
  const d = await TestDaemon.start(dir);
  try {
    assert.equal((await readFile(join(dir, 'vmhostd.pid'), 'utf8')).trim(), String(d.proc!.pid));
    // While it runs, a second daemon on the same dir (through a symlink to it, too) refuses.
    const link = `${dir}-link`;
    await symlink(dir, link);
    for (const path of [dir, link]) {
      const second = runDaemon(path, await freePort());
      const r = await second.result;
      second.kill();
      assert.equal(r.up, false, `a second daemon must not start on ${path}: ${r.output}`);
      assert.match(r.output, /another vmhostd already serves/);
    }
    await rm(link);
    // SIGKILL: the kernel drops the lock with the process; the pid file stays behind, stale.
    await d.kill();
    const racers = [runDaemon(dir, await freePort()), runDaemon(dir, await freePort())];
    const results = await Promise.all(racers.map((r) => r.result));
    for (const r of racers) r.kill();
    assert.equal(results.filter((r) => r.up).length, 1, `exactly one of two racing daemons runs: ${results.map((r) => r.output).join(' | ')}`);
    assert.match(results.find((r) => !r.up)!.output, /another vmhostd already serves/);
  } finally {
    await d.stop();
  }
});

test('full disk: Set-VMNetworkAdapter fails, vm.json is the old one, no temp file, the daemon still shows the old policy', { skip: !isRoot && 'needs root to mount a tmpfs', timeout: 120_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'vmhost-full-'));
  const dataDir = join(base, 'data');
  await mkdir(dataDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dataDir]);
  let d: TestDaemon | undefined;
  try {
    d = await TestDaemon.start(dataDir);
    const ok = (...args: string[]) => d!.ok(...args);
    await ok('New-VM', 'full1');
    await ok('Add-VMNetworkAdapter', '-VMName', 'full1');
    const id = (JSON.parse(await ok('Get-VM', 'full1', '-Json')) as { Id: string }).Id;
    const vmDir = join(dataDir, 'vms', id);
    const before = await readFile(join(vmDir, 'vm.json'), 'utf8');
    // Fill the file system to the last page.
    const filler = await open(join(dataDir, 'filler'), 'w');
    const chunk = Buffer.alloc(64 << 10);
    try {
      for (;;) await filler.write(chunk);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      await filler.close();
    }
    const r = await d.cli('Set-VMNetworkAdapter', '-VMName', 'full1', '-MacAddressSpoofing', 'On');
    assert.notEqual(r.code, 0, 'the change must fail on a full disk');
    assert.match(r.stderr, /no space left on device|ENOSPC/i);
    assert.equal(await readFile(join(vmDir, 'vm.json'), 'utf8'), before, 'vm.json is the old one');
    assert.deepEqual((await readdir(vmDir)).filter((f) => f.includes('tmp')), [], 'no temp file behind');
    const [nic] = JSON.parse(await ok('Get-VMNetworkAdapter', '-VMName', 'full1', '-Json')) as { MacAddressSpoofing: string }[];
    assert.equal(nic?.MacAddressSpoofing, 'Off', 'memory was not changed before the write succeeded');
    // Space again: the same change now succeeds.
    await rm(join(dataDir, 'filler'));
    await ok('Set-VMNetworkAdapter', '-VMName', 'full1', '-MacAddressSpoofing', 'On');
    assert.match(await readFile(join(vmDir, 'vm.json'), 'utf8'), /"macAddressSpoofing": "On"/);
  } finally {
    await d?.kill();
    execFileSync('umount', [dataDir]);
    await rm(base, { recursive: true, force: true });
  }
});

test('short socket root: a pre-created symlink or a 0777 dir at the predictable name makes the daemon refuse', { timeout: 120_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'vmhost-deep-'));
  // Deep enough that the NBD and switch sockets move to <tmpdir>/vmhost-<hash>.
  const dataDir = join(base, 'a-data-dir-path-long-enough-to-overflow-sun-path', 'for-every-socket');
  await mkdir(dataDir, { recursive: true });
  const root = join(tmpdir(), `vmhost-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
  const elsewhere = await mkdtemp(join(tmpdir(), 'vmhost-attacker-'));
  try {
    await symlink(elsewhere, root);
    let r = await runDaemon(dataDir, await freePort()).result;
    assert.equal(r.up, false, r.output);
    assert.match(r.output, new RegExp(`socket directory '${root}' is not private \\(it is a symbolic link\\)`));
    await rm(root);

    await mkdir(root);
    await chmod(root, 0o777);
    r = await runDaemon(dataDir, await freePort()).result;
    assert.equal(r.up, false, r.output);
    // Not 0700 (or 0710 of the QEMU user's group when the daemon is root: test/qemu-runas.test.ts).
    assert.match(r.output, /is not private \(its mode is 0777, not 07[01]0\)/);
    await rm(root, { recursive: true });

    // Nobody got there first: the daemon creates it 0700 and runs.
    const run = runDaemon(dataDir, await freePort());
    r = await run.result;
    run.kill();
    assert.equal(r.up, true, r.output);
    assert.equal(execFileSync('stat', ['-c', '%a %U', root]).toString().trim(), `${isRoot ? 710 : 700} ${execFileSync('id', ['-un']).toString().trim()}`);
  } finally {
    await rm(root, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
    await rm(base, { recursive: true, force: true });
  }
});

test('private data dir: after a guest ran, was saved and captured (and a gen 2 VM got its vars), find -perm /077 prints nothing', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-private-'));
  // What an older daemon under umask 022 left: readable by everyone until this daemon starts.
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'events.jsonl'), '', { mode: 0o644 });
  const old = process.umask(0o022);
  let d: TestDaemon | undefined;
  try {
    d = await TestDaemon.start(dir);
    const ok = (...args: string[]) => d!.ok(...args);
    await ok('New-VMSwitch', 'cap', '-SwitchType', 'Private');
    await ok('New-VM', 'p1', '-MemoryStartupBytes', '256MB');
    await ok('Add-VMNetworkAdapter', '-VMName', 'p1', '-SwitchName', 'cap');
    await ok('Start-VMSwitchCapture', 'cap', '-Path', join(dir, 'cap.pcap'), '-MaxBytes', '1MB');
    await ok('Start-VM', 'p1');
    await waitFor('p1 heartbeat', 120_000, async () => (JSON.parse(await ok('Get-VM', 'p1', '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    await ok('Save-VM', 'p1');
    // Restored from the file (QEMU reads it from an fd: no exec: under its sandbox), then saved again.
    await ok('Start-VM', 'p1');
    await waitFor('p1 heartbeat after restore', 120_000, async () => (JSON.parse(await ok('Get-VM', 'p1', '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    await ok('Save-VM', 'p1');
    const stopped = await ok('Stop-VMSwitchCapture', 'cap', '-Json');
    assert.match(stopped, /"Frames": \d+/);
    const tshark = spawnSync('tshark', ['-r', join(dir, 'cap.pcap')], { encoding: 'utf8' });
    assert.equal(tshark.status, 0, tshark.stderr);
    await ok('New-VM', 'p2', '-Generation', '2', '-MemoryStartupBytes', '128MB');
    await ok('Start-VM', 'p2');
    await ok('Stop-VM', 'p2', '-TurnOff');
    const found = execFileSync('find', [dir, '-perm', '/077']).toString();
    assert.equal(found, '', `group/other-accessible entries in the data dir:\n${found}`);
    const files = execFileSync('find', [dir, '-name', 'saved-state.bin', '-o', '-name', 'serial.log', '-o', '-name', 'OVMF_VARS.fd', '-o', '-name', 'cap.pcap']).toString().trim().split('\n');
    for (const name of ['saved-state.bin', 'serial.log', 'OVMF_VARS.fd', 'cap.pcap']) assert.ok(files.some((f) => f.endsWith(`/${name}`)), `${name} exists: ${files.join(', ')}`);
  } finally {
    process.umask(old);
    await d?.stop();
  }
});
