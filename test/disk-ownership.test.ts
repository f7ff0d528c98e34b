// Disk files have one owner: while a VM runs, the files of its chain are locked by its host's
// block server (storage/file-lock.ts). The VHD cmdlets and a second host are refused with the
// holder named, and leave the file byte-identical; read-only questions (Get-VHD, Test-VHD) are
// answered from the running disk; the lock goes with the VM's stop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from './support/daemon.ts';

describe('disk ownership', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  before(async () => { [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]); });
  after(async () => { await Promise.all([a?.stop(), b?.stop()]); });

  const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

  test('a running VM\'s disk and its parent: cmdlets and another host refused, the file untouched; free again after Stop-VM', { timeout: 300_000 }, async () => {
    const base = join(a.dataDir, 'base.vhdx');
    const leaf = join(a.dataDir, 'leaf.vhdx');
    await a.ok('New-VHD', '-Path', base, '-SizeBytes', '1GB', '-Dynamic');
    await a.ok('New-VHD', '-Path', leaf, '-Differencing', '-ParentPath', base);
    await a.ok('New-VM', 'own1', '-MemoryStartupBytes', '256MB');
    await a.ok('Add-VMHardDiskDrive', '-VMName', 'own1', '-Path', leaf, '-ControllerType', 'SCSI');
    await a.ok('Start-VM', 'own1');
    const before = { leaf: await sha(leaf), base: await sha(base) };

    // Changes to the leaf or its parent: exit 4, the VM named.
    const meta = ['-Id', '6e1e7a48-3f3c-4d7e-9a57-3c1d1e0f5a01', '-Value', 'x'];
    for (const args of [
      ['Optimize-VHD', leaf], ['Set-VHD', leaf, '-ResetDiskIdentifier'], ['Set-VHD', leaf, '-PhysicalSectorSizeBytes', '512'],
      ['Merge-VHD', leaf, base], ['Set-VHDMetadata', leaf, ...meta], ['Mount-VHD', leaf],
      ['Resize-VHD', base, '-SizeBytes', '2GB'], ['Set-VHDMetadata', base, ...meta], ['Mount-VHD', base],
    ]) {
      const r = await a.cli(...args);
      assert.equal(r.code, 4, `${args.join(' ')} refused with exit 4: ${r.stderr}`);
      assert.match(r.stderr, /in use by VM 'own1'/, args.join(' '));
    }
    // Read-only questions are answered from the running disk.
    const got = JSON.parse(await a.ok('Get-VHD', leaf, '-Json')) as { Attached: boolean; ParentPath: string };
    assert.equal(got.Attached, true);
    assert.equal(got.ParentPath, base);
    assert.equal((await a.ok('Test-VHD', leaf)).trim(), 'True');

    // Another host (its own daemon and data dir) cannot attach the leaf, nor start on the parent.
    await b.ok('New-VM', 'thief', '-MemoryStartupBytes', '256MB');
    const attach = await b.cli('Add-VMHardDiskDrive', '-VMName', 'thief', '-Path', leaf, '-ControllerType', 'SCSI');
    assert.equal(attach.code, 4, attach.stderr);
    assert.match(attach.stderr, /in use by another process/);
    const child = join(b.dataDir, 'other-child.vhdx');
    await b.ok('New-VHD', '-Path', child, '-Differencing', '-ParentPath', base); // reading a parent is shared
    assert.deepEqual({ leaf: await sha(leaf), base: await sha(base) }, before, 'every refusal left both files byte-identical');

    await a.ok('Stop-VM', 'own1', '-TurnOff');
    await a.ok('Optimize-VHD', leaf);
    await b.ok('Add-VMHardDiskDrive', '-VMName', 'thief', '-Path', leaf, '-ControllerType', 'SCSI');
  });
});
