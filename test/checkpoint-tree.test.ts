// A checkpoint tree of depth 5 with a branch (issue 10), on an off VM: writes between
// checkpoints go to the leaf over NBD (Mount-VHD + qemu-io), a model records what every
// checkpoint and the VM itself should read, block by block. Removing a middle checkpoint
// merges its child's file into its own and re-links the next one; removing a branch point
// keeps its file. After each removal every remaining checkpoint's chain and the VM's are
// read back whole and compared with the model. Also: Set-VM -SnapshotFileLocation, and
// qemu-img comparing a checkpoint's chain flattened by Convert-VHD with the model.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon } from './support/daemon.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

const MiB = 1 << 20;
const SIZE = 64 * MiB;
const UNIT = 64 * 1024;

interface Snap { Name: string; Id: string; ParentSnapshotName: string | null; HardDrives: string[] }

describe('checkpoint tree', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });
  const ok = (...args: string[]) => d.ok(...args);
  const snaps = async () => JSON.parse((await ok('Get-VMSnapshot', 'tree', '-Json')) || '[]') as Snap[];
  const leaf = async () => (JSON.parse(await ok('Get-VMHardDiskDrive', 'tree', '-Json')) as { Path: string }[])[0]!.Path;

  /** What each checkpoint (by name) and the VM ('now') read: 64 KiB unit → byte (absent: zeros). */
  const models = new Map<string, Map<number, number>>();
  let now = new Map<number, number>();

  async function write(step: number): Promise<void> {
    // Each step writes a few units of its own, some over earlier steps' units, one straddling a 1 MiB block edge.
    const units = [step * 3, step * 3 + 1, 7, 15 + step, 31 + (step % 4), 1023 - step];
    const path = await leaf();
    const { NbdUri } = JSON.parse(await ok('Mount-VHD', '-Path', path, '-Json')) as { NbdUri: string };
    try {
      const r = await run('qemu-io', ['-f', 'raw', ...units.flatMap((u) => ['-c', `write -P ${step + 1} ${u * UNIT} ${UNIT}`]), NbdUri]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    } finally {
      await ok('Dismount-VHD', '-Path', path);
    }
    for (const u of units) now.set(u, step + 1);
  }

  async function checkpoint(name: string): Promise<void> {
    await ok('Checkpoint-VM', 'tree', '-SnapshotName', name);
    models.set(name, new Map(now));
  }

  async function readsAs(file: string, model: Map<number, number>, what: string): Promise<void> {
    const disk = await openDiskFile(file, { readOnly: true });
    try {
      const buf = new Uint8Array(SIZE);
      await disk.read(buf, 0);
      for (let u = 0; u < SIZE / UNIT; u++) {
        const want = model.get(u) ?? 0;
        for (let k = u * UNIT; k < (u + 1) * UNIT; k += 4096) if (buf[k] !== want) assert.fail(`${what}: unit ${u} reads ${buf[k]}, want ${want}`);
      }
    } finally {
      await disk.close();
    }
  }

  async function verifyAll(): Promise<void> {
    const list = await snaps();
    assert.deepEqual(list.map((s) => s.Name).sort(), [...models.keys()].sort());
    for (const s of list) await readsAs(s.HardDrives[0]!, models.get(s.Name)!, `checkpoint ${s.Name}`);
    await readsAs(await leaf(), now, 'the VM');
  }

  test('depth 5 with a branch: removing a middle checkpoint and a branch point keeps every checkpoint\'s content', { timeout: 600_000 }, async () => {
    const base = join(d.dataDir, 'tree.vhdx');
    await ok('New-VHD', '-Path', base, '-SizeBytes', String(SIZE), '-Dynamic', '-BlockSizeBytes', '1MB');
    await ok('New-VM', 'tree', '-MemoryStartupBytes', '256MB', '-Generation', '2', '-VHDPath', base);
    // Checkpoint files go where Set-VM -SnapshotFileLocation says (Hyper-V's "Checkpoint File Location").
    const ckDir = join(d.dataDir, 'tree-checkpoints');
    await ok('Set-VM', 'tree', '-SnapshotFileLocation', ckDir);
    assert.equal((JSON.parse(await ok('Get-VM', 'tree', '-Json')) as { SnapshotFileLocation: string }).SnapshotFileLocation, ckDir);
    await write(0);
    for (let k = 1; k <= 5; k++) {
      await checkpoint(`s${k}`);
      await write(k);
    }
    // A branch: back to s2, new writes, a checkpoint on that side.
    await ok('Restore-VMSnapshot', 'tree', 's2');
    now = new Map(models.get('s2')!);
    await write(6);
    await checkpoint('s6');
    await write(7);
    const tree = new Map((await snaps()).map((s) => [s.Name, s.ParentSnapshotName]));
    assert.deepEqual(Object.fromEntries(tree), { s1: null, s2: 's1', s3: 's2', s4: 's3', s5: 's4', s6: 's2' });
    await verifyAll();
    assert.ok((await snaps()).every((x) => existsSync(join(ckDir, `${x.Id}.json`))), 'the records are in the checkpoint file location');
    const moved = await d.cli('Set-VM', 'tree', '-SnapshotFileLocation', join(d.dataDir, 'elsewhere'));
    assert.notEqual(moved.code, 0);
    assert.match(moved.stderr, /has 6 checkpoint\(s\): remove them before moving its checkpoint file location/);

    // Interop: a checkpoint's chain flattened by Convert-VHD is what qemu-img reads as the model of that moment.
    const s1 = (await snaps()).find((x) => x.Name === 's1')!;
    const flat = join(d.dataDir, 'tree-s1-flat.vhdx');
    await ok('Convert-VHD', '-Path', s1.HardDrives[0]!, '-DestinationPath', flat, '-VHDType', 'Dynamic');
    const model = new Uint8Array(SIZE);
    for (const [u, b] of models.get('s1')!) model.fill(b, u * UNIT, (u + 1) * UNIT);
    writeFileSync(`${flat}.raw`, model);
    const cmp = await run('qemu-img', ['compare', '-f', 'vhdx', '-F', 'raw', flat, `${flat}.raw`]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);

    // The middle of the long arm: s4's file is merged into s3's, s5's re-linked.
    const s3 = (await snaps()).find((s) => s.Name === 's3')!;
    const s4 = (await snaps()).find((s) => s.Name === 's4')!;
    await ok('Remove-VMSnapshot', 'tree', 's3');
    models.delete('s3');
    assert.equal((await snaps()).find((s) => s.Name === 's4')!.ParentSnapshotName, 's2');
    assert.equal((await snaps()).find((s) => s.Name === 's4')!.HardDrives[0], s3.HardDrives[0], 's4 now names the file s3 froze');
    assert.equal(existsSync(s4.HardDrives[0]!), false, 'the merged file is gone');
    await verifyAll();

    // s2's file has two children (s4's side and s6's): a branch point stays.
    const s2 = (await snaps()).find((s) => s.Name === 's2')!;
    await ok('Remove-VMSnapshot', 'tree', 's2');
    models.delete('s2');
    assert.equal(existsSync(s2.HardDrives[0]!), true, 'a branch point keeps its file');
    await verifyAll();

    // A subtree: s4 and its child s5.
    await ok('Remove-VMSnapshot', 'tree', 's4', '-IncludeAllChildSnapshots');
    models.delete('s4');
    models.delete('s5');
    await verifyAll();
    const check = await run('qemu-img', ['check', '-f', 'vhdx', base]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });
});
