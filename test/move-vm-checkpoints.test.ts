// Move-VM of a VM with a checkpoint, shared-nothing, between two daemons: the checkpoint is
// taken while the guest runs (so it has memory), then the guest changes a file in its memory
// (/tmp/marker) and a block of its disk. A move that fails on B once it has written the
// checkpoint's record leaves nothing there. A move cancelled by Stop-Job once B has
// acknowledged FROZEN_CUT MiB of the chain's frozen file (the job's progress, polled), and one
// whose B is SIGKILLed at the same point, leave the VM running on A with its
// checkpoint tree (Get-VMSnapshot; Restore-VMSnapshot then works) and nothing on B — the killed
// one's staged folder (incoming.json) swept at B's restart. The move that goes through runs
// with B's API port captured by tshark on lo: its prepare and commit are TLS, no HTTP in clear,
// neither the ticket nor a move header readable. The move takes the frozen parent as a file, re-points
// it on B, mirrors the running leaf over it and brings the record and its memory into
// -SnapshotFilePath: on B Get-VMSnapshot shows the checkpoint with its files there, the guest
// still sees the changed marker and block, and A has none of the VM's files left. Restore-
// VMSnapshot on B brings back the checkpoint's marker and block. Then the VM moves back to A
// with -RetainVhdCopiesOnSource: its checkpoint comes along, and B's disk files stay, held by
// nobody (opened writable here, locked exclusive). Last, to B on shared storage: the chain stays
// in A's folder, the record and its memory move to B's default checkpoint folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { runCli, waitFor } from './support/daemon.ts';
import { type CliTools } from './support/cli-tools.ts';
import { twoMigrationHosts, type TwoHosts } from './support/two-hosts.ts';
import { captureLo } from './support/lo-capture.ts';

const MiB = 1024 * 1024;
/** Random data in the disk before the checkpoint freezes it: the frozen file's copy takes long enough to be cut into. */
const FROZEN_DATA = 48 * MiB;
/** Where the cancelled moves are cut: this much of the frozen file acknowledged by B. */
const FROZEN_CUT = 8;
type Vm = { Id: string; Name: string; State: string };
type Job = { Id: string; State: string; StatusDescription: string };
type Snap = { Id: string; Name: string; State: string; Path: string; HardDrives: string[]; ParentSnapshotId: string | null };
const one = <T>(x: T | T[]): T => (Array.isArray(x) ? x[0]! : x);
const many = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/**
 * tshark on lo for one TCP port until stop(): the capture's bytes and the TLS records sent to that port (records, not
 * ClientHellos: a daemon may reuse a kept-alive TLS connection from a move a moment before, with no new handshake).
 */
async function captureTcp(port: number): Promise<{ stop(): Promise<{ bytes: Buffer; tlsRecords: number }> }> {
  const cap = await captureLo(`tcp port ${port}`);
  return {
    stop: () => cap.stop(async (read, file) => ({
      bytes: await readFile(file),
      tlsRecords: (await read('-d', `tcp.port==${port},tls`, '-Y', `tls.record && tcp.dstport == ${port}`)).length,
    })),
  };
}

describe('Move-VM of a VM with checkpoints', () => {
  let hosts: TwoHosts | undefined;
  before(async () => { hosts = await twoMigrationHosts(); });
  after(() => hosts?.stop());

  test('shared-nothing with a live checkpoint: the tree and its memory on B, Restore-VMSnapshot there; back with -RetainVhdCopiesOnSource; then on shared storage', { timeout: 300_000 }, async () => {
    const { a, b, ta, tb, bDest, cliA } = hosts!;
    const t0 = Date.now();
    const mark = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const vm = 'mc1';
    const aDir = join(a.dataDir, 'disks');
    const bDir = join(b.dataDir, 'disks');
    const bSnap = join(b.dataDir, 'checkpoints');
    await mkdir(aDir);
    const disk = join(aDir, 'mc1.vhdx');
    await ta.ok('New-VHD', '-Path', disk, '-SizeBytes', '128MB', '-Dynamic');
    const fill = await openDiskFile(disk, { readOnly: false });
    try {
      for (let at = MiB; at < MiB + FROZEN_DATA; at += MiB) await fill.write(randomBytes(MiB), at);
    } finally {
      await fill.close();
    }
    await ta.ok('New-VM', vm, '-MemoryStartupBytes', '256MB');
    await ta.ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', disk, '-ControllerType', 'SCSI');
    await ta.ok('Start-VM', vm);
    await ta.heartbeat(vm);
    const mark1 = async (t: CliTools, word: string) => {
      const r = await t.sh(vm, `dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); echo ${word} > /tmp/marker; (printf ${word}; head -c ${512 - word.length} /dev/zero) > /tmp/blk; `
        + 'dd if=/tmp/blk of=/dev/$dev bs=512 count=1 oflag=direct conv=notrunc 2>/dev/null && echo written');
      assert.match(r.out, /written/, r.out);
    };
    const seen = async (t: CliTools) => {
      const r = await t.sh(vm, 'dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/); cat /tmp/marker; dd if=/dev/$dev bs=512 count=1 iflag=direct 2>/dev/null | head -c 6; echo');
      const [memory, block] = r.out.trim().split('\n').map((l) => l.replace(/\0/g, '').trim());
      return { memory, block };
    };
    await mark1(ta, 'BEFORE');
    await ta.ok('Checkpoint-VM', vm, '-SnapshotName', 'cp1');
    await mark1(ta, 'AFTER');
    const cp = one(await ta.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.equal(cp.State, 'Running', 'the checkpoint holds memory');
    mark('checkpoint taken on A, guest changed since');

    // A move cut while B receives the chain's frozen file: by Stop-Job, then (VMHOST_LONG=1) by SIGKILL of B's daemon.
    const tree = async () => many(await ta.json<Snap | Snap[]>('Get-VMSnapshot', vm)).map((s) => [s.Id, s.Name, s.State, s.HardDrives]);
    const treeBefore = await tree();
    const nothingOnB = async () => (await readdir(join(b.dataDir, 'vms'))).length === 0 && (await readdir(bDir).catch(() => [])).length === 0
      && (await readdir(bSnap).catch(() => [])).length === 0;
    const cutMove = async (how: string, cut: (job: Job) => Promise<void>) => {
      const r = await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', bDir, '-SnapshotFilePath', bSnap, '-AsJob', '-Json');
      assert.equal(r.code, 0, r.stderr);
      const { Id: jobId } = JSON.parse(r.stdout) as Job;
      // Polled back to back (each answer is the wait): the file's progress is what B has acknowledged.
      for (;;) {
        const job = (await a.api('GET', `/api/v1/jobs/${jobId}`)).json as Job;
        const m = /^Copying file 1 of \d+ \(mc1\.vhdx\): (\d+) of (\d+) MiB arrived/.exec(job.StatusDescription);
        if (m && Number(m[1]) >= FROZEN_CUT) {
          assert.ok(Number(m[1]) < Number(m[2]), `cut inside the frozen file: ${job.StatusDescription}`);
          console.log(`# ${how} at: ${job.StatusDescription}`);
          await cut(job);
          break;
        }
        assert.ok(m || /^(Queued|Running|Preparing the destination)$/.test(job.StatusDescription), `the move got past the frozen file before it was cut (${job.State}: ${job.StatusDescription})`);
      }
      const ended = await waitFor(`the ${how} move to end`, 60_000, async () => {
        const j = (await a.api('GET', `/api/v1/jobs/${jobId}`)).json as Job;
        return j.State !== 'Running' && j.State !== 'Queued' && j;
      });
      return ended;
    };
    const stopped = await cutMove('Stop-Job', async (job) => {
      const stop = await a.api('DELETE', `/api/v1/jobs/${job.Id}`);
      assert.ok(stop.status < 300, stop.text);
    });
    assert.equal(stopped.State, 'Stopped', JSON.stringify(stopped));
    await waitFor('B to drop the cancelled move: no VM, no disk file, no checkpoint record', 30_000, nothingOnB);
    assert.deepEqual([(await ta.json<Vm>('Get-VM', vm)).State, await tree(), existsSync(disk)], ['Running', treeBefore, true], 'after Stop-Job the VM runs on A with its tree');
    mark('Stop-Job in the frozen file checked');
    const killed = await cutMove('SIGKILL of B', () => b.kill());
    assert.equal(killed.State, 'Failed', JSON.stringify(killed));
    const staged = await readdir(join(b.dataDir, 'vms'));
    assert.ok(staged.length === 1 && existsSync(join(b.dataDir, 'vms', staged[0]!, 'incoming.json')), `B died with the move staged: ${staged.join(', ')}`);
    await b.launch();
    assert.ok(await nothingOnB(), 'B swept the staged move at its start: no VM, no disk file, no checkpoint record');
    assert.deepEqual(((await b.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), []);
    assert.deepEqual([(await ta.json<Vm>('Get-VM', vm)).State, await tree(), existsSync(disk)], ['Running', treeBefore, true], 'after B died the VM runs on A with its tree');
    mark('SIGKILL of B in the frozen file checked');
    await ta.ok('Restore-VMSnapshot', vm, 'cp1');
    await ta.heartbeat(vm);
    assert.deepEqual(await seen(ta), { memory: 'BEFORE', block: 'BEFORE' }, 'Restore-VMSnapshot on A after the cut moves');
    await mark1(ta, 'AFTER');
    mark('restored on A');
    const leafA = one(await ta.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path;
    const { Id } = await ta.json<Vm>('Get-VM', vm);

    // A move that fails on B after it wrote the checkpoint record into -SnapshotFilePath (its disk folder cannot be made): nothing of it stays on B.
    const notDir = join(b.dataDir, 'not-a-dir');
    await writeFile(notDir, '');
    const failed = await cliA('Move-VM', vm, '-DestinationHost', bDest, '-IncludeStorage', '-DestinationStoragePath', join(notDir, 'disks'), '-SnapshotFilePath', bSnap);
    assert.notEqual(failed.code, 0, 'the move into a path under a file failed');
    assert.deepEqual([await readdir(bSnap).catch(() => []), await readdir(join(b.dataDir, 'vms'))], [[], []], `B removed what the failed move wrote: ${failed.stderr.trim()}`);
    assert.equal((await ta.json<Vm>('Get-VM', vm)).State, 'Running');

    // Through the API rather than the CLI, whose own calls to a loopback host are plain HTTP: the ticket is
    // fetched before B's API port is captured, so what the capture holds is the daemons' calls alone.
    const ticket = ((await b.api('POST', '/api/v1/migrations/tickets', { VMId: Id })).json as { Ticket: string }).Ticket;
    const capture = await captureTcp(b.port);
    const moved = await a.api('POST', `/api/v1/vms/${Id}/move`, { DestinationHost: bDest, Ticket: ticket, IncludeStorage: true, DestinationStoragePath: bDir, SnapshotFilePath: bSnap });
    const { bytes, tlsRecords } = await capture.stop();
    assert.equal(moved.status, 200, moved.text);
    const view = (moved.json as { VM: Vm }).VM;
    assert.deepEqual([view.Id, view.State], [Id, 'Running']);
    mark('moved to B');
    assert.ok(tlsRecords >= 2, `the prepare and the commit went to B's API port over TLS (${tlsRecords} TLS records)`);
    for (const clear of ['HTTP/1.1', 'x-vmhost-migration', '/api/v1/migrations', ticket]) {
      assert.equal(bytes.includes(clear), false, `B's API port carried '${clear}' in clear`);
    }
    const pinned = new RegExp(`^${bDest} ([0-9A-F:]{95})$`, 'm').exec(await readFile(join(a.dataDir, 'known_hosts'), 'utf8'))?.[1];
    assert.equal(pinned, ((await b.api('GET', '/api/v1/host')).json as { TlsCertificateFingerprint: string }).TlsCertificateFingerprint, 'A pinned the certificate Get-VMHost shows on B');
    const onB = many(await tb.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.deepEqual(onB.map((s) => [s.Id, s.Name, s.State, s.ParentSnapshotId, s.Path]), [[cp.Id, 'cp1', 'Running', null, bSnap]], 'B shows the same tree');
    assert.deepEqual(onB[0]!.HardDrives, [join(bDir, 'mc1.vhdx')], 'the checkpoint names its frozen file\'s copy on B');
    assert.equal(one(await tb.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path, join(bDir, basename(leafA)));
    assert.deepEqual((await readdir(bSnap)).sort(), [`${cp.Id}.json`, `${cp.Id}.state`], 'the record and its memory are in -SnapshotFilePath');
    assert.deepEqual([existsSync(disk), existsSync(leafA), (await readdir(join(a.dataDir, 'vms'))).length], [false, false, 0], 'A kept none of the VM\'s files');
    assert.deepEqual(await seen(tb), { memory: 'AFTER', block: 'AFTER' }, 'the guest goes on with its memory and disk');

    await tb.ok('Restore-VMSnapshot', vm, 'cp1');
    await tb.heartbeat(vm);
    assert.deepEqual(await seen(tb), { memory: 'BEFORE', block: 'BEFORE' }, 'Restore-VMSnapshot on B brought back the checkpoint\'s memory and disk');
    mark('restored on B');

    // Back to A, keeping B's copies: B's CLI holds A's credential.
    const cliB = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    const runB = (...args: string[]) => runCli(args, { VMHOST_URL: b.url, VMHOST_TOKEN: b.token, VMHOST_CONFIG_DIR: cliB });
    assert.equal((await runB('Set-VMHostCredential', '-ComputerName', `127.0.0.1:${a.port}`, '-Token', a.token)).code, 0);
    const bFiles = (await readdir(bDir)).map((f) => join(bDir, f));
    const back = join(a.dataDir, 'back');
    // -Vhds names the checkpoint's frozen file (read-only, not a drive's): it goes where it is named, the leaf to -DestinationStoragePath over it.
    const base = join(a.dataDir, 'base', 'mc1-base.vhdx');
    const r = await runB('Move-VM', vm, '-DestinationHost', `127.0.0.1:${a.port}`, '-IncludeStorage', '-DestinationStoragePath', back,
      '-Vhds', `@{SourceFilePath=${join(bDir, 'mc1.vhdx')};DestinationFilePath=${base}}`, '-RetainVhdCopiesOnSource');
    assert.equal(r.code, 0, r.stderr);
    await rm(cliB, { recursive: true, force: true });
    mark('moved back to A');
    assert.equal((await ta.json<Vm>('Get-VM', vm)).State, 'Running');
    assert.deepEqual(many(await ta.json<Snap | Snap[]>('Get-VMSnapshot', vm)).map((s) => [s.Id, s.HardDrives]), [[cp.Id, [base]]]);
    assert.deepEqual(await seen(ta), { memory: 'BEFORE', block: 'BEFORE' });
    assert.deepEqual(((await b.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'B let the VM go');
    assert.equal(bFiles.length, 2, `B had the frozen file and the leaf: ${bFiles.join(', ')}`);
    for (const f of bFiles) {
      assert.ok(existsSync(f), `-RetainVhdCopiesOnSource kept ${f}`);
      const d = await openDiskFile(f, { readOnly: false, noParent: true }); // locked exclusive: nobody holds it
      await d.close();
    }
    assert.equal(existsSync(join(bSnap, `${cp.Id}.json`)), false, 'the checkpoint record left B with the VM');

    // Shared storage (B reaches A's folder): the chain stays where it is, the record and its memory go to B's checkpoint folder.
    const leafBack = one(await ta.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path;
    const shared = await cliA('Move-VM', vm, '-DestinationHost', bDest);
    assert.equal(shared.code, 0, shared.stderr);
    mark('moved to B on shared storage');
    const sharedSnaps = many(await tb.json<Snap | Snap[]>('Get-VMSnapshot', vm));
    assert.deepEqual(sharedSnaps.map((s) => [s.Id, s.State, s.HardDrives, s.Path]), [[cp.Id, 'Running', [base], join(b.dataDir, 'vms', Id, 'snapshots')]]);
    assert.equal(one(await tb.json<{ Path: string } | { Path: string }[]>('Get-VMHardDiskDrive', '-VMName', vm)).Path, leafBack, 'the disks stayed');
    assert.deepEqual((await readdir(join(b.dataDir, 'vms', Id, 'snapshots'))).sort(), [`${cp.Id}.json`, `${cp.Id}.state`]);
    assert.deepEqual([existsSync(base), existsSync(leafBack), (await readdir(join(a.dataDir, 'vms'))).length], [true, true, 0]);
    assert.deepEqual(await seen(tb), { memory: 'BEFORE', block: 'BEFORE' });
  });
});
