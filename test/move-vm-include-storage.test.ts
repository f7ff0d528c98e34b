// Shared-nothing Move-VM (-IncludeStorage) between two daemons with no directory in common for
// the disk: a running guest writes 4 KiB blocks with O_DIRECT, each with a pattern the test can
// check, while its data disk is mirrored into B's own folder and then its memory moves. First
// the refusals (each before anything moves: the VM untouched on A, nothing on B), then B's
// daemon SIGKILLed once its copy of the disk has grown past 8 MiB: the VM runs on from its own
// file on A, and B — restarted — has neither a staged VM nor the partial file; Stop-Job mid-copy
// likewise (B drops both at once). Then the move
// through: Running on B with the same Id and MAC, A's file removed, every acknowledged write in
// B's copy (still a dynamic VHDX), qemu-img check clean. VMHOST_LONG=1 moves a 1 GiB disk
// holding 512 MiB of data instead of a 128 MiB one holding 32 MiB, then moves the VM back with
// the source's daemon SIGKILLed just after the destination committed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, runCli, waitFor, type CliResult } from './support/daemon.ts';
import { type CliTools } from './support/cli-tools.ts';
import { twoMigrationHosts, type TwoHosts } from './support/two-hosts.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, { maxBuffer: 64 << 20 }, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

const LONG = process.env.VMHOST_LONG === '1';
const MiB = 1 << 20;
const SIZE = LONG ? '1GB' : '128MB';
/** Data written before the guest starts (what the mirror's walker copies), and the region the guest writes in. */
const FILLED = (LONG ? 512 : 32) * MiB;
const BLOCKS = FILLED / 4096;
/** The guest's i-th write: 4 KiB of byte i % 16 + 1 at block (i * 7919) mod BLOCKS. */
const blockOf = (i: number) => (i * 7919) % BLOCKS;
const one = <T>(x: T | T[]): T => (Array.isArray(x) ? x[0]! : x);
type Vm = { Id: string; Name: string; State: string };

describe('Move-VM -IncludeStorage: shared-nothing live migration', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let bDest = '';
  let hosts: TwoHosts | undefined;
  const cliA = (...args: string[]): Promise<CliResult> => hosts!.cliA(...args);

  before(async () => {
    hosts = await twoMigrationHosts();
    ({ a, b, ta, tb, bDest } = hosts);
  });
  after(() => hosts?.stop());

  test('a writing guest moves with its disk into B\'s folder: no write lost; refusals and a killed B leave it on A with its file', { timeout: LONG ? 900_000 : 240_000 }, async () => {
    const t0 = Date.now();
    const mark = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const vm = 'sn1';
    const srcDir = join(a.dataDir, 'disks');
    const bDir = join(b.dataDir, 'disks');
    await mkdir(srcDir);
    const disk = join(srcDir, 'sn1.vhdx');
    const moved = join(bDir, 'sn1.vhdx');
    await ta.ok('New-VHD', '-Path', disk, '-SizeBytes', SIZE, '-Dynamic');
    const { NbdUri } = JSON.parse(await ta.ok('Mount-VHD', '-Path', disk, '-Json')) as { NbdUri: string };
    const fill = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x61 0 ${FILLED}`, NbdUri]);
    await ta.ok('Dismount-VHD', '-Path', disk);
    assert.equal(fill.code, 0, fill.stderr);
    await ta.ok('New-VM', vm, '-MemoryStartupBytes', '256MB');
    await ta.ok('Add-VMNetworkAdapter', '-VMName', vm);
    await ta.ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', disk, '-ControllerType', 'SCSI');
    await ta.ok('Start-VM', vm);
    await ta.heartbeat(vm);
    const writer = `i=0; while [ ! -e /tmp/stop ]; do o=$(( (i * 7919) % ${BLOCKS} )); `
      + `dd if=/tmp/p$(( i % 16 + 1 )) of=/dev/$dev bs=4096 seek=$o count=1 oflag=direct conv=notrunc 2>/dev/null || { echo ERR $i >> /tmp/wlog; exit 1; }; `
      + 'echo $i >> /tmp/wlog; i=$((i+1)); done; echo DONE >> /tmp/wlog';
    const started = await ta.sh(vm, 'dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); for b in $(seq 1 16); do awk -v b=$b \'BEGIN { s = sprintf("%c", b); for (i = 0; i < 4096; i++) printf "%s", s }\' > /tmp/p$b; done; : > /tmp/wlog; '
      + `export dev; setsid sh -c '${writer}' >/dev/null 2>&1 & sleep 1; echo started`);
    assert.equal(started.code, 0, started.out);
    const writes = async (t: CliTools) => Number((await t.sh(vm, 'wc -l < /tmp/wlog')).out.trim());
    await waitFor('the writer under way', 30_000, async () => (await writes(ta)) >= 5);
    const before = await ta.json<Vm>('Get-VM', vm);
    const mac = one(await ta.json<{ MacAddress: string }>('Get-VMNetworkAdapter', '-VMName', vm)).MacAddress;
    mark('guest writing on A');

    // Refusals, before anything moves (the API ones use a made-up ticket: they are refused before it is looked at).
    const stillOnA = async (why: string) => {
      assert.equal((await ta.json<Vm>('Get-VM', vm)).State, 'Running', `${vm} still runs on A after ${why}`);
      assert.equal(one(await ta.json<{ Path: string }>('Get-VMHardDiskDrive', '-VMName', vm)).Path, disk, `its drive still names A's file after ${why}`);
      assert.deepEqual(await readdir(join(b.dataDir, 'vms')), [], `nothing of ${vm} on B after ${why}`);
    };
    const refusedCli = async (re: RegExp, ...args: string[]) => {
      const r = await cliA('Move-VM', vm, '-DestinationHost', bDest, ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one-line error: ${r.stderr}`);
    };
    const refusedApi = async (code: string, re: RegExp, body: Record<string, unknown>) => {
      const r = await a.api('POST', `/api/v1/vms/${vm}/move`, { DestinationHost: bDest, Ticket: 'x'.repeat(32), ...body });
      assert.equal((r.json as { code?: string }).code, code, r.text);
      assert.match(r.text, re);
    };
    await refusedCli(/-DestinationStoragePath: -IncludeStorage needs -DestinationStoragePath/, '-IncludeStorage');
    await refusedCli(/-DestinationStoragePath: 'rel\/dir' must be an absolute path/, '-IncludeStorage', '-DestinationStoragePath', 'rel/dir');
    await refusedApi('INVALID_ARGUMENT', /DestinationStoragePath: Move-VM -IncludeStorage needs a destination for/, { IncludeStorage: true });
    await refusedApi('INVALID_ARGUMENT', /Vhds: VM 'sn1' has no disk \/no\/such\.vhdx/, { IncludeStorage: true, Vhds: [{ SourceFilePath: '/no/such.vhdx', DestinationFilePath: join(bDir, 'x.vhdx') }] });
    await refusedCli(/Vhds: VM 'sn1' has no disk \/no\/such\.vhdx/, '-IncludeStorage', '-Vhds', `@{SourceFilePath=/no/such.vhdx;DestinationFilePath=${join(bDir, 'x.vhdx')}}`);
    await refusedApi('MIGRATION_UNSUPPORTED', /VirtualMachinePath is not supported/, { IncludeStorage: true, DestinationStoragePath: bDir, VirtualMachinePath: bDir });
    await refusedApi('INVALID_ARGUMENT', /RetainVhdCopiesOnSource: only with -IncludeStorage/, { RetainVhdCopiesOnSource: true });
    await refusedCli(/-RetainVhdCopiesOnSource: only with -IncludeStorage/, '-RetainVhdCopiesOnSource');
    await mkdir(bDir);
    await writeFile(moved, 'not yours');
    await refusedCli(/sn1\.vhdx exists already/, '-IncludeStorage', '-DestinationStoragePath', bDir);
    assert.equal(await readFile(moved, 'utf8'), 'not yours', 'the file on B was left alone');
    await rm(moved);
    await stillOnA('the refusals');
    mark('refusals checked');

    // B SIGKILLed mid-copy: placed by what B has received (its new file grows past its empty size, ~4 MiB, once the first data block lands), never by time.
    const move1 = cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', bDir);
    let moveEnded = false;
    void move1.then(() => { moveEnded = true; });
    let received = 0;
    while (!moveEnded && received < 8 * MiB) {
      received = await stat(moved).then((s) => s.size, () => 0);
      await new Promise((r) => setTimeout(r, 10));
    }
    await b.kill();
    const killed = await move1;
    assert.notEqual(killed.code, 0, `the move fails when B dies: ${killed.stdout}`);
    console.log(`# B killed with its copy at ${Math.round(received / MiB)} MiB: ${killed.stderr.trim()}`);
    await b.launch();
    await stillOnA('a killed destination');
    assert.equal(existsSync(moved), false, 'B removed its partial copy at start');
    assert.match(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'), /VM_MOVE_ABANDONED/);
    const w1 = await writes(ta);
    await waitFor('the guest to write on A after the failed move', 30_000, async () => (await writes(ta)) > w1);
    mark('killed destination checked');

    // Stop-Job once B's copy has begun: the VM runs on here, B drops the staged VM and its file.
    const job = JSON.parse((await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', bDir, '-AsJob', '-Json')).stdout) as { Id: string };
    await waitFor('B\'s copy under way', 60_000, async () => (await stat(moved).then((s) => s.size, () => 0)) > 8 * MiB);
    // Stop-Job's own request (DELETE /jobs/:id) at once: a CLI process to start could take longer, under load, than the memory's move.
    const stop = await a.api('DELETE', `/api/v1/jobs/${job.Id}`);
    assert.ok(stop.status < 300, stop.text);
    const stopped = await waitFor('the cancelled move to end', 60_000, async () => {
      const j = await ta.json<{ State: string; StatusDescription: string }>('Get-Job', job.Id);
      return j.State !== 'Running' && j.State !== 'Queued' && j;
    });
    assert.equal(stopped.State, 'Stopped', JSON.stringify(stopped));
    await waitFor('B to drop the cancelled move', 30_000, async () => (await readdir(join(b.dataDir, 'vms'))).length === 0 && !existsSync(moved));
    await stillOnA('Stop-Job');
    mark('Stop-Job checked');

    // The move through.
    const w2 = await writes(ta);
    const tMove = Date.now();
    const onB = JSON.parse(await (async () => {
      const r = await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', bDir, '-Json');
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    })()) as Vm;
    const took = Date.now() - tMove;
    assert.deepEqual([onB.Id, onB.State], [before.Id, 'Running']);
    assert.deepEqual(((await a.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'A no longer has the VM');
    assert.equal(existsSync(disk), false, 'A\'s disk file was removed after the move');
    assert.equal(one(await tb.json<{ Path: string }>('Get-VMHardDiskDrive', '-VMName', vm)).Path, moved);
    assert.equal(one(await tb.json<{ MacAddress: string }>('Get-VMNetworkAdapter', '-VMName', vm)).MacAddress, mac);
    const during = (await writes(tb)) - w2;
    console.log(`# Move-VM -IncludeStorage of ${FILLED / MiB} MiB of data on a ${SIZE} disk: ${took} ms, ${during} guest writes meanwhile`);
    assert.ok(during > 0, 'the guest wrote during the move');
    const events = await readFile(join(a.dataDir, 'events.jsonl'), 'utf8') + await readFile(join(b.dataDir, 'events.jsonl'), 'utf8');
    for (const m of events.matchAll(/"Message":"(VM (moved (in|to)) [^"]*)"/g)) console.log(`# ${m[1]}`);

    await tb.sh(vm, 'touch /tmp/stop');
    const log = await waitFor('the writer to stop', 30_000, async () => {
      const l = (await tb.sh(vm, 'cat /tmp/wlog')).out;
      return /DONE|ERR/.test(l) ? l : undefined;
    });
    assert.doesNotMatch(log, /ERR/, 'a guest write failed');
    const done = log.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    await tb.ok('Stop-VM', vm, '-TurnOff');
    const expect = new Map<number, number>(done.map((i) => [blockOf(i), i % 16 + 1]));
    const copy = await openDiskFile(moved, { readOnly: true });
    try {
      assert.equal(copy.type, 'Dynamic', 'the copy stays a dynamic VHDX');
      const buf = new Uint8Array(4096);
      for (let blk = 0; blk < BLOCKS; blk++) {
        await copy.read(buf, blk * 4096);
        const want = expect.get(blk) ?? 0x61;
        for (let k = 0; k < 4096; k += 512) if (buf[k] !== want) assert.fail(`block ${blk}: byte ${buf[k]}, want ${want}`);
      }
    } finally {
      await copy.close();
    }
    console.log(`# ${done.length} acknowledged writes verified in B's copy`);
    const check = await run('qemu-img', ['check', '-f', 'vhdx', moved]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const { size } = await stat(moved);
    assert.ok(size < FILLED + 64 * MiB, `only what holds data was copied (${size} bytes)`);
    mark('verified');

    if (!LONG) return;
    // The source's daemon SIGKILLed once the destination has committed (its vm.json is there): the
    // restarted source asks the destination (move-out.json) and lets the VM go — its paused QEMU
    // killed, its copy of the disk removed. Back from B to A this time.
    await tb.ok('Start-VM', vm);
    await tb.heartbeat(vm);
    const cliB = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    const runB = (...args: string[]) => runCli(args, { VMHOST_URL: b.url, VMHOST_TOKEN: b.token, VMHOST_CONFIG_DIR: cliB });
    assert.equal((await runB('Set-VMHostCredential', '-ComputerName', `127.0.0.1:${a.port}`, '-Token', a.token)).code, 0);
    const back = join(a.dataDir, 'back');
    const move3 = runB('Move-VM', vm, '-DestinationHost', `127.0.0.1:${a.port}`, '-IncludeStorage', '-DestinationStoragePath', back);
    let ended = false;
    void move3.then(() => { ended = true; });
    const committed = join(a.dataDir, 'vms', before.Id, 'vm.json');
    while (!ended && !existsSync(committed)) await new Promise((r) => setTimeout(r, 5));
    await b.kill();
    await move3;
    await b.launch();
    assert.deepEqual(((await b.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'B let the VM go');
    assert.equal(existsSync(moved), false, 'B removed its copy of the disk');
    const onA = await ta.json<Vm>('Get-VM', vm);
    assert.deepEqual([onA.Id, onA.State], [before.Id, 'Running']);
    assert.equal(one(await ta.json<{ Path: string }>('Get-VMHardDiskDrive', '-VMName', vm)).Path, join(back, 'sn1.vhdx'));
    const settledAtStart = /settled at start/.test(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'));
    console.log(`# source killed after the commit: ${settledAtStart ? 'settled by the restarted source (move-out.json)' : 'the source had already finished'}`);
    await rm(cliB, { recursive: true, force: true });
    mark('killed source checked');
  });
});
