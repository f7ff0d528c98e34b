// Move-VMStorage (issue 11 point 3): a running guest writes 4 KiB blocks with O_DIRECT, each
// with a pattern the test can check, while its disk chain (a base disk and the checkpoint's
// differencing leaf) and the checkpoint record move to another folder — first with the daemon
// SIGKILLed mid-move (the restarted daemon settles the journal: rolled back before the drive's
// switch, finished after it), then through. After: no write error in the guest, every
// acknowledged write in the moved leaf, the chain intact at the destination (Get-VHD's
// ParentPath), the old files gone, Test-VHD and qemu-img check clean. Then an Off VM's move
// (files copied) and the refusals, each before anything is copied. Last, the storage
// migration slots: with -MaximumStorageMigrations 1 a second move waits Queued, and Stop-Job
// cancels it there and a running one mid-mirror, the VM running on with its own file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, { maxBuffer: 64 << 20 }, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

const MiB = 1 << 20;
const FILLED = 64 * MiB;
const BLOCKS = FILLED / 4096;
/** The guest's i-th write: 4 KiB of byte i % 16 + 1 at block (i * 7919) mod 2^14 — distinct for i < 2^14. */
const blockOf = (i: number) => (i * 7919) % BLOCKS;

describe('Move-VMStorage', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const guest = async (vm: string, script: string) => (await ok('Invoke-Command', '-VMName', vm, '-ScriptBlock', script, '-TimeoutSeconds', '60')).trim();
  const leaf = async (vm: string) => (JSON.parse(await ok('Get-VMHardDiskDrive', vm, '-ControllerType', 'SCSI', '-Json')) as { Path: string }[])[0]!.Path;

  test('a running guest that writes moves with its checkpoint chain: no write lost, chain intact at the destination, old files gone', { timeout: 180_000 }, async () => {
    const vm = 'mv1';
    const t = Date.now();
    const mark = (what: string) => console.log(`${((Date.now() - t) / 1000).toFixed(1)} s: ${what}`);
    const src = join(d.dataDir, 'src');
    mkdirSync(src);
    const base = join(src, `${vm}.vhdx`);
    await ok('New-VHD', '-Path', base, '-SizeBytes', '1GB', '-Dynamic');
    await ok('New-VM', vm, '-MemoryStartupBytes', '256MB');
    await ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', base, '-ControllerType', 'SCSI');
    await ok('Checkpoint-VM', vm, '-SnapshotName', 'ck');
    const child = await leaf(vm);
    const { NbdUri } = JSON.parse(await ok('Mount-VHD', '-Path', child, '-Json')) as { NbdUri: string };
    const fill = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x61 0 ${FILLED}`, NbdUri]);
    await ok('Dismount-VHD', '-Path', child);
    assert.equal(fill.code, 0, fill.stderr);
    const snapshotDir = (JSON.parse(await ok('Get-VMSnapshot', vm, '-Json')) as Array<{ Path: string }>)[0]!.Path;
    const records = readdirSync(snapshotDir);
    const vmId = (JSON.parse(await ok('Get-VM', vm, '-Json')) as { Id: string }).Id;

    mark('chain ready');
    await ok('Start-VM', vm);
    await waitFor(`${vm} heartbeat`, 60_000, async () => (JSON.parse(await ok('Get-VM', vm, '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    const writer = `i=0; while [ ! -e /tmp/stop ]; do o=$(( (i * 7919) % ${BLOCKS} )); `
      + `dd if=/tmp/p$(( i % 16 + 1 )) of=/dev/$dev bs=4096 seek=$o count=1 oflag=direct conv=notrunc 2>/dev/null || { echo ERR $i >> /tmp/wlog; exit 1; }; `
      + 'echo $i >> /tmp/wlog; i=$((i+1)); done; echo DONE >> /tmp/wlog';
    // One call: the patterns, the writer detached (setsid, no inherited output: the agent's exec must not wait for it).
    await guest(vm, 'dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); for b in $(seq 1 16); do awk -v b=$b \'BEGIN { s = sprintf("%c", b); for (i = 0; i < 4096; i++) printf "%s", s }\' > /tmp/p$b; done; : > /tmp/wlog; '
      + `export dev; setsid sh -c '${writer}' >/dev/null 2>&1 & sleep 1; echo started`);
    await waitFor('the writer under way', 30_000, async () => Number(await guest(vm, 'wc -l < /tmp/wlog')) >= 5);
    mark('writer under way');

    // 1. The daemon SIGKILLed once the move is past its file copies (the job's progress, polled over the API).
    const dest = join(d.dataDir, 'moved');
    const newLeaf = join(dest, basename(child));
    const started = JSON.parse(await ok('Move-VMStorage', vm, '-DestinationStoragePath', dest, '-AsJob', '-Json')) as { Id: string } | Array<{ Id: string }>;
    const jobId = (Array.isArray(started) ? started[0]! : started).Id;
    let percent = 0;
    await waitFor('the move mirroring', 60_000, async () => {
      const j = (await d.api('GET', `/api/v1/jobs/${jobId}`)).json as { PercentComplete: number; State: string };
      percent = j.PercentComplete;
      return j.PercentComplete >= 50 || j.State !== 'Running';
    });
    await d.kill();
    await d.launch();
    const after = await leaf(vm);
    console.log(`daemon SIGKILLed at ${percent} %: the restarted daemon ${after === newLeaf ? 'finished the move' : 'rolled it back'}`);
    assert.ok(after === child || after === newLeaf, `the drive names ${after}`);
    const moved = after === newLeaf;
    for (const f of moved ? [child, base] : [newLeaf, join(dest, basename(base))]) assert.equal(existsSync(f), false, `${f} was removed`);
    assert.equal(existsSync(join(d.dataDir, 'vms', vmId, 'move-storage.json')), false, 'the journal is settled');
    assert.deepEqual(JSON.parse(await ok('Test-VHD', after, '-Json')), true);
    assert.equal((JSON.parse(await ok('Get-VM', vm, '-Json')) as { State: string }).State, 'Running');
    mark('recovered');

    // 2. The move through (back to src when the killed one finished: either way a live move of the chain).
    const to = moved ? join(d.dataDir, 'again') : dest;
    const finalLeaf = join(to, basename(child)), finalBase = join(to, basename(base));
    const from = [after, moved ? join(dest, basename(base)) : base];
    // The writer stalls while the restarted daemon's exports come back: the move starts once it writes again.
    const resumed = Number(await guest(vm, 'wc -l < /tmp/wlog'));
    await waitFor('the writer going again after the restart', 60_000, async () => Number(await guest(vm, 'wc -l < /tmp/wlog')) >= resumed + 3);
    const beforeMove = Number(await guest(vm, 'wc -l < /tmp/wlog'));
    const t0 = Date.now();
    await ok('Move-VMStorage', vm, '-DestinationStoragePath', to);
    const seconds = (Date.now() - t0) / 1000;
    const during = Number(await guest(vm, 'wc -l < /tmp/wlog')) - beforeMove;
    console.log(`Move-VMStorage of a running VM (${FILLED / MiB} MiB in its leaf): ${seconds.toFixed(1)} s, ${during} guest writes meanwhile`);
    assert.ok(during > 0, 'the guest wrote during the move');
    assert.equal((JSON.parse(await ok('Get-VM', vm, '-Json')) as { State: string }).State, 'Running');
    assert.equal(await leaf(vm), finalLeaf, 'the drive names the moved leaf');
    const info = JSON.parse(await ok('Get-VHD', finalLeaf, '-Json')) as { ParentPath: string; VhdType: string };
    assert.equal(info.VhdType, 'Differencing');
    assert.equal(info.ParentPath, finalBase, 'the leaf\'s parent is the moved base');
    for (const f of from) assert.equal(existsSync(f), false, `${f} is gone`);
    const snap = (JSON.parse(await ok('Get-VMSnapshot', vm, '-Json')) as Array<{ Path: string; HardDrives: string[] }>)[0]!;
    assert.equal(snap.Path, join(to, 'Snapshots'), 'the checkpoint records moved');
    assert.deepEqual(snap.HardDrives, [finalBase], 'the checkpoint names the moved base');
    for (const r of records) assert.equal(existsSync(join(snapshotDir, r)), false, `${r} left the old folder`);
    assert.equal(existsSync(join(d.dataDir, 'vms', vmId, 'move-storage.json')), false, 'the journal is gone');
    mark('checked the move');

    await guest(vm, 'touch /tmp/stop');
    const log = await waitFor('the writer to stop', 30_000, async () => {
      const l = await guest(vm, 'cat /tmp/wlog');
      return /DONE|ERR/.test(l) ? l : undefined;
    });
    assert.doesNotMatch(log, /ERR/, 'a guest write failed');
    const writes = log.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    await ok('Stop-VM', vm, '-TurnOff');

    const expect = new Map<number, number>(writes.map((i) => [blockOf(i), i % 16 + 1]));
    const disk = await openDiskFile(finalLeaf, { readOnly: true });
    try {
      const buf = new Uint8Array(FILLED);
      await disk.read(buf, 0);
      for (let blk = 0; blk < BLOCKS; blk++) {
        const want = expect.get(blk) ?? 0x61;
        for (let k = blk * 4096; k < (blk + 1) * 4096; k += 512) if (buf[k] !== want) assert.fail(`block ${blk}: byte ${buf[k]}, want ${want}`);
      }
    } finally {
      await disk.close();
    }
    assert.deepEqual(JSON.parse(await ok('Test-VHD', finalLeaf, '-Json')), true);
    const check = await run('qemu-img', ['check', '-f', 'vhdx', finalBase]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    mark('verified');
  });

  test('refusals (relative destination, same as source, a file already there, -VirtualMachinePath, a file not the VM\'s), then an Off VM moved with -Vhds', { timeout: 120_000 }, async () => {
    const vm = 'mv2';
    const dir = join(d.dataDir, 'mv2');
    mkdirSync(dir);
    const disk = join(dir, 'mv2.vhdx');
    await ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic');
    await ok('New-VM', vm, '-MemoryStartupBytes', '128MB');
    await ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', disk, '-ControllerType', 'SCSI');
    const refused = async (args: string[], code: string, words: RegExp) => {
      const r = await d.cli('Move-VMStorage', vm, ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr, words, r.stderr);
      const api = await d.api('POST', `/api/v1/vms/${vm}/move-storage`, bodyOf(args));
      assert.equal((api.json as { code?: string }).code, code, api.text);
    };
    const bodyOf = (args: string[]) => Object.fromEntries(args.reduce<Array<[string, unknown]>>((out, a, i) => (a.startsWith('-') ? [...out, [a.slice(1), args[i + 1]]] : out), []));
    await refused(['-DestinationStoragePath', dir], 'INVALID_ARGUMENT', /same as the source/);
    const taken = join(d.dataDir, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'mv2.vhdx'), 'x');
    await refused(['-DestinationStoragePath', taken], 'ALREADY_EXISTS', /already exists/);
    await refused(['-VirtualMachinePath', join(d.dataDir, 'elsewhere')], 'MOVE_STORAGE_UNSUPPORTED', /configuration stays/);
    const api = await d.api('POST', `/api/v1/vms/${vm}/move-storage`, { DestinationStoragePath: 'relative/dir' });
    assert.equal((api.json as { code?: string }).code, 'INVALID_ARGUMENT', api.text);
    assert.match(api.text, /absolute/);
    const bad = await d.api('POST', `/api/v1/vms/${vm}/move-storage`, { Vhds: [{ SourceFilePath: '/no/such.vhdx', DestinationFilePath: '/tmp/x.vhdx' }] });
    assert.match(bad.text, /not a disk file of VM/);
    const extra = await d.api('POST', `/api/v1/vms/${vm}/move-storage`, { Destination: '/tmp' });
    assert.equal(extra.status, 400, 'unknown body fields are refused by the schema');
    assert.equal(await leaf(vm), disk, 'nothing moved');
    assert.deepEqual(readdirSync(taken), ['mv2.vhdx']);

    // Off, with a checkpoint: every file copied (-Vhds names one destination), the chain re-pointed, the old files gone.
    await ok('Checkpoint-VM', vm, '-SnapshotName', 'ck');
    const child = await leaf(vm);
    const off = join(d.dataDir, 'off');
    await ok('Move-VMStorage', vm, '-DestinationStoragePath', off, '-Vhds', `@{SourceFilePath=${disk};DestinationFilePath=${join(off, 'renamed.vhdx')}}`);
    const moved = join(off, basename(child));
    assert.equal(await leaf(vm), moved);
    assert.equal((JSON.parse(await ok('Get-VHD', moved, '-Json')) as { ParentPath: string }).ParentPath, join(off, 'renamed.vhdx'));
    assert.deepEqual(JSON.parse(await ok('Test-VHD', moved, '-Json')), true);
    assert.equal(existsSync(disk) || existsSync(child), false, 'the old files are gone');
    assert.deepEqual((JSON.parse(await ok('Get-VMSnapshot', vm, '-Json')) as Array<{ HardDrives: string[] }>)[0]!.HardDrives, [join(off, 'renamed.vhdx')]);
  });

  test('-MaximumStorageMigrations 1: a second move waits Queued; Stop-Job cancels it queued and the first mid-mirror, the VM keeps its file', { timeout: 120_000 }, async () => {
    const vm = 'mv3';
    const src = join(d.dataDir, 'mv3');
    mkdirSync(src);
    const disk = join(src, 'mv3.vhdx');
    // 1 GiB of data: a mirror long enough to be caught running (the kernel copies it at a GB/s or more).
    await ok('New-VHD', '-Path', disk, '-SizeBytes', '2GB', '-Dynamic');
    const fill = await run('qemu-io', ['-f', 'vhdx', '-c', 'write -P 0x61 0 1G', disk]);
    assert.equal(fill.code, 0, fill.stderr);
    await ok('New-VM', vm, '-MemoryStartupBytes', '128MB');
    await ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', disk, '-ControllerType', 'SCSI');
    await ok('Start-VM', vm);
    await ok('Set-VMHost', '-MaximumStorageMigrations', '1');
    type Job = { Id: string; State: string; StatusDescription: string };
    const job = async (id: string) => (await d.api('GET', `/api/v1/jobs/${id}`)).json as Job;
    const startMove = async (to: string) => {
      const r = await d.api('POST', `/api/v1/vms/${vm}/move-storage?wait=false`, { DestinationStoragePath: join(d.dataDir, to) });
      assert.equal(r.status, 202, r.text);
      return (r.json as Job).Id;
    };
    const ended = (id: string) => waitFor(`job ${id} to end`, 60_000, async () => { const j = await job(id); return j.State !== 'Running' && j.State !== 'Queued' && j; });
    const first = await startMove('c1');
    const second = await startMove('c2');
    assert.equal((await job(second)).State, 'Queued', 'the second move waits for the one slot');
    assert.equal((await d.api('DELETE', `/api/v1/jobs/${second}`)).status, 200);
    // The first, caught while it mirrors (polled closely, API calls only: the copy takes about a second).
    for (let j = await job(first); !/Mirroring/.test(j.StatusDescription); j = await job(first)) {
      assert.equal(j.State, 'Running', `the move ended before it was caught mirroring: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await d.api('DELETE', `/api/v1/jobs/${first}`)).status, 200);
    assert.equal((await ended(second)).State, 'Stopped');
    const stopped = await ended(first);
    assert.equal(stopped.State, 'Stopped', JSON.stringify(stopped));
    assert.match(stopped.StatusDescription, /cancelled \(Stop-Job\)/);
    assert.equal(await leaf(vm), disk, 'the drive keeps its file');
    // Folders the move made may stay (as after a failure); no file does.
    const files = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => f.name) : []);
    for (const to of ['c1', 'c2']) assert.deepEqual(files(join(d.dataDir, to)), [], `no file left in ${to}`);
    const vmId = (JSON.parse(await ok('Get-VM', vm, '-Json')) as { Id: string; State: string });
    assert.equal(vmId.State, 'Running');
    assert.equal(existsSync(join(d.dataDir, 'vms', vmId.Id, 'move-storage.json')), false, 'the journal is settled');
    // The guest reads its disk through the export, which went on serving the source.
    await waitFor(`${vm} heartbeat`, 60_000, async () => (JSON.parse(await ok('Get-VM', vm, '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    assert.equal(await guest(vm, 'dd if=/dev/sda bs=4096 skip=1000 count=1 2>/dev/null | od -An -tx1 | head -1 | tr -d " "'), '61'.repeat(16));
    await ok('Stop-VM', vm, '-TurnOff');
    assert.deepEqual(JSON.parse(await ok('Test-VHD', disk, '-Json')), true);
    await ok('Set-VMHost', '-MaximumStorageMigrations', '2');
  });
});
