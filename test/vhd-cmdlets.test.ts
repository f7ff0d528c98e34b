// The VHD cmdlets through the real CLI (bin/vmhost) on real files in a temp dir, no daemon:
// qemu-img is the oracle for what we create, convert, resize, merge and compact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statSync, existsSync, mkdirSync, renameSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './support/daemon.ts';
import { prng } from '../src/blockio/index.ts';
import { openDiskFile } from '../src/storage/index.ts';

delete process.env['VMHOST_URL'];
delete process.env['VMHOST_TOKEN'];
const MiB = 1024 * 1024;
let dir = '';
const at = (name: string) => join(dir, name);
const vmhost = (...args: string[]): Promise<CliResult> => runCli(args, {});
const qemuImg = (...args: string[]): string => execFileSync('qemu-img', args, { encoding: 'utf8' });
const qinfo = (path: string, fmt?: string) =>
  JSON.parse(qemuImg('info', '--output=json', ...(fmt ? ['-f', fmt] : []), path)) as { format: string; 'virtual-size': number };

async function ok(...args: string[]): Promise<string> {
  const r = await vmhost(...args);
  assert.equal(r.code, 0, `${args.join(' ')} → ${r.code}: ${r.stderr}`);
  return r.stdout;
}
async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, '-Json')) as T;
}
/** A failing command: its exit code and its single stderr line. */
async function fails(code: number, pattern: RegExp, ...args: string[]): Promise<void> {
  const r = await vmhost(...args);
  assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one-line error, got: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

/** 16 MiB of mixed data: 1 MiB random in every third MiB, zeros elsewhere (deterministic). */
function mixedImage(): Uint8Array {
  const b = new Uint8Array(16 * MiB);
  const r = prng(42);
  for (let m = 0; m < 16; m += 3) for (let i = m * MiB; i < (m + 1) * MiB; i++) b[i] = (r() * 256) | 0;
  return b;
}

async function inProcess(path: string, fn: (d: Awaited<ReturnType<typeof openDiskFile>>) => Promise<void>): Promise<void> {
  const d = await openDiskFile(path, { readOnly: false });
  try {
    await fn(d);
  } finally {
    await d.close();
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmhost-vhd-'));
  writeFileSync(at('src.img'), mixedImage());
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('New-VHD makes every type; qemu-img agrees; Get-VHD -Json carries the Hyper-V properties', async () => {
  await Promise.all([
    ok('New-VHD', at('dyn.vhdx'), '-SizeBytes', '1GB'),
    ok('New-VHD', '-Path', at('fix.vhdx'), '-SizeBytes', '40MB', '-Fixed', '-BlockSizeBytes', '8MB', '-PhysicalSectorSizeBytes', '512'),
  ]);
  await Promise.all([
    ok('New-VHD', at('dyn.vhd'), '-SizeBytes', '64MB', '-Dynamic', '-BlockSizeBytes', '512KB'),
    ok('New-VHD', at('fix.vhd'), '-SizeBytes', '24MB', '-Fixed'),
  ]);
  await Promise.all([
    ok('New-VHD', at('diff.vhdx'), '-Differencing', '-ParentPath', at('dyn.vhdx')),
    ok('New-VHD', at('4k.vhdx'), '64MB', '-LogicalSectorSizeBytes', '4096', '-BlockSizeBytes', '1MB'),
  ]);
  await ok('New-VHD', at('diff.vhd'), '-Differencing', '-ParentPath', at('dyn.vhd'));

  for (const [f, size] of [['dyn.vhdx', 1024 * MiB], ['fix.vhdx', 40 * MiB]] as const) {
    const i = qinfo(at(f));
    assert.equal(i.format, 'vhdx');
    assert.equal(i['virtual-size'], size);
    assert.match(qemuImg('check', at(f)), /No errors were found/);
  }
  assert.equal(qinfo(at('dyn.vhd'), 'vpc')['virtual-size'], 64 * MiB);
  assert.equal(qinfo(at('fix.vhd'), 'vpc')['virtual-size'], 24 * MiB);

  const [dyn, fix, vhd, diff, k4, dvhd] = await Promise.all(['dyn.vhdx', 'fix.vhdx', 'dyn.vhd', 'diff.vhdx', '4k.vhdx', 'diff.vhd'].map((f) => json('Get-VHD', at(f))));
  for (const [d, f] of [[dyn, 'dyn.vhdx'], [fix, 'fix.vhdx'], [vhd, 'dyn.vhd'], [diff, 'diff.vhdx'], [k4, '4k.vhdx'], [dvhd, 'diff.vhd']] as const) {
    assert.equal(d!['Path'], at(f));
    assert.equal(d!['Attached'], false);
    assert.equal(typeof d!['ComputerName'], 'string');
    assert.equal(d!['FileSize'], statSync(at(f)).size);
    assert.match(String(d!['DiskIdentifier']), /^[0-9A-F-]{36}$/);
  }
  assert.deepEqual(
    [dyn!['VhdFormat'], dyn!['VhdType'], dyn!['Size'], dyn!['MinimumSize'], dyn!['LogicalSectorSize'], dyn!['PhysicalSectorSize'], dyn!['BlockSize'], dyn!['ParentPath'], dyn!['Alignment']],
    ['VHDX', 'Dynamic', 1024 * MiB, 0, 512, 4096, 32 * MiB, null, 1]);
  assert.deepEqual([fix!['VhdType'], fix!['BlockSize'], fix!['PhysicalSectorSize'], fix!['MinimumSize']], ['Fixed', 8 * MiB, 512, 40 * MiB]);
  assert.ok((fix!['FileSize'] as number) >= 40 * MiB);
  assert.deepEqual([vhd!['VhdFormat'], vhd!['VhdType'], vhd!['BlockSize'], vhd!['LogicalSectorSize']], ['VHD', 'Dynamic', 512 * 1024, 512]);
  assert.deepEqual([diff!['VhdType'], diff!['ParentPath'], diff!['Size']], ['Differencing', at('dyn.vhdx'), 1024 * MiB]);
  assert.deepEqual([k4!['LogicalSectorSize'], k4!['BlockSize']], [4096, MiB]);
  assert.deepEqual([dvhd!['VhdFormat'], dvhd!['VhdType'], dvhd!['ParentPath']], ['VHD', 'Differencing', at('dyn.vhd')]);
  // 64 TB is the VHDX limit: it is created and stays a small file.
  const big = await json('New-VHD', at('big.vhdx'), '-SizeBytes', '64TB');
  assert.equal(big['Size'], 64 * 2 ** 40);
  assert.ok(statSync(at('big.vhdx')).blocks * 512 < 64 * MiB);
});

test('Convert-VHD raw → VHDX → VHD → raw: qemu-img compare says identical; zeros stay holes', async () => {
  await ok('Convert-VHD', at('src.img'), at('c.vhdx'), '-BlockSizeBytes', '1MB');
  const c = await json('Get-VHD', at('c.vhdx'));
  assert.deepEqual([c['VhdType'], c['BlockSize'], c['Size']], ['Dynamic', MiB, 16 * MiB]);
  assert.ok((c['FileSize'] as number) < 4 * MiB + 6 * MiB + 2 * MiB, `only data blocks stored: ${c['FileSize']}`);
  assert.match(qemuImg('check', at('c.vhdx')), /No errors were found/);
  assert.match(qemuImg('compare', at('src.img'), at('c.vhdx')), /identical/);
  const r = await vmhost('Convert-VHD', '-Path', at('c.vhdx'), '-DestinationPath', at('c.vhd'), '-VHDType', 'Fixed', '-Verbose');
  assert.equal(r.code, 0, r.stderr);
  // Not a terminal: Write-Progress prints plain lines, every 10 %, on stderr.
  assert.match(r.stderr, /^Convert-VHD 'c\.vhdx': 100% 16 of 16 MB$/m);
  assert.equal(r.stdout, '');
  assert.match(qemuImg('compare', '-f', 'raw', '-F', 'vpc', at('src.img'), at('c.vhd')), /identical/);
  const back = await json('Convert-VHD', at('c.vhd'), at('c.raw'), '-PassThru');
  assert.equal(back['VhdFormat'], 'RAW');
  assert.match(qemuImg('compare', '-f', 'raw', '-F', 'raw', at('src.img'), at('c.raw')), /identical/);
  // 4Kn VHDX from a 512-byte VHD, then a dynamic VHD from it.
  await ok('Convert-VHD', at('c.vhd'), at('c4k.vhdx'), '-VHDType', 'Dynamic', '-LogicalSectorSizeBytes', '4096');
  await ok('Convert-VHD', at('c4k.vhdx'), at('c2.vhd'));
  assert.match(qemuImg('compare', '-f', 'raw', '-F', 'vpc', at('src.img'), at('c2.vhd')), /identical/);
  await fails(2, /^Convert-VHD: parameter -LogicalSectorSizeBytes: a VHD has 512-byte logical sectors only/, 'Convert-VHD', at('c.vhdx'), at('x.vhd'), '-LogicalSectorSizeBytes', '4096');
  await fails(4, /^Convert-VHD: parameter -DestinationPath: the file already exists/, 'Convert-VHD', at('c.vhdx'), at('c.vhd'));
  assert.ok(!existsSync(at('x.vhd')));
});

test('Resize-VHD grows, shrinks to the minimum size, and refuses to go below it', async () => {
  await ok('Convert-VHD', at('src.img'), at('r.vhdx'), '-BlockSizeBytes', '1MB');
  await ok('Resize-VHD', at('r.vhdx'), '-SizeBytes', '48MB');
  assert.equal(qinfo(at('r.vhdx'))['virtual-size'], 48 * MiB);
  const min = await json('Resize-VHD', at('r.vhdx'), '-ToMinimumSize', '-PassThru');
  assert.equal(min['Size'], 16 * MiB);
  assert.equal(min['MinimumSize'], 16 * MiB);
  assert.match(qemuImg('compare', at('src.img'), at('r.vhdx')), /identical/);
  assert.match(qemuImg('check', at('r.vhdx')), /No errors were found/);
  await fails(4, /^Resize-VHD: parameter -SizeBytes: 8388608 is below the minimum size 16777216 of .*r\.vhdx/, 'Resize-VHD', at('r.vhdx'), '-SizeBytes', '8MB');
  await ok('Resize-VHD', at('fix.vhd'), '-SizeBytes', '32MB');
  assert.equal(qinfo(at('fix.vhd'), 'vpc')['virtual-size'], 32 * MiB);
  await fails(4, /^Resize-VHD: parameter -SizeBytes: a VHD cannot shrink/, 'Resize-VHD', at('fix.vhd'), '-SizeBytes', '16MB');
  await fails(2, /^Resize-VHD: parameter set cannot be resolved: -SizeBytes and -ToMinimumSize cannot be used together/, 'Resize-VHD', at('r.vhdx'), '-SizeBytes', '8MB', '-ToMinimumSize');
});

test('Set-VHD re-points a child to its moved parent; Test-VHD checks the chain; Merge-VHD folds the child in', async () => {
  await ok('Convert-VHD', at('src.img'), at('p.vhdx'), '-BlockSizeBytes', '1MB');
  await ok('New-VHD', at('ch.vhdx'), '-Differencing', '-ParentPath', at('p.vhdx'));
  const model = mixedImage();
  const patch = new Uint8Array(3 * MiB).fill(0x5a);
  await inProcess(at('ch.vhdx'), (d) => d.write(patch, MiB + 512 * 1024));
  model.set(patch, MiB + 512 * 1024);
  writeFileSync(at('model.img'), model);
  assert.equal((await ok('Test-VHD', at('ch.vhdx'))).trim(), 'True');

  mkdirSync(at('moved'));
  renameSync(at('p.vhdx'), at('moved/p.vhdx'));
  const broken = await vmhost('Test-VHD', at('ch.vhdx'));
  assert.equal(broken.code, 1);
  assert.equal(broken.stdout.trim(), 'False');
  assert.match(broken.stderr, /parent of .*ch\.vhdx not found/);
  await ok('Set-VHD', at('ch.vhdx'), '-ParentPath', at('moved/p.vhdx'));
  assert.equal((await json('Get-VHD', at('ch.vhdx')))['ParentPath'], at('moved/p.vhdx'));
  assert.equal((await ok('Test-VHD', at('ch.vhdx'))).trim(), 'True');
  // Flattening the chain with Convert-VHD gives the model too.
  await ok('Convert-VHD', at('ch.vhdx'), at('flat.img'));
  assert.match(qemuImg('compare', at('model.img'), at('flat.img')), /identical/);
  // A parent that is not the one the child was made from is refused unless -IgnoreIdMismatch.
  await fails(4, /^Set-VHD: parameter -ParentPath: .* is not the parent .* -IgnoreIdMismatch/, 'Set-VHD', at('ch.vhdx'), '-ParentPath', at('c.vhdx'));

  const r = await vmhost('Merge-VHD', at('ch.vhdx'), '-Verbose');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /VERBOSE: merging .*ch\.vhdx into .*moved\/p\.vhdx/);
  assert.match(r.stderr, /^Merge-VHD 'ch\.vhdx': 100% \d+ of \d+ MB$/m, 'progress from the merge engine');
  assert.ok(!existsSync(at('ch.vhdx')), 'the merged child is deleted');
  assert.match(qemuImg('compare', at('model.img'), at('moved/p.vhdx')), /identical/);
  assert.match(qemuImg('check', at('moved/p.vhdx')), /No errors were found/);
  await fails(2, /^Merge-VHD: parameter -Path: .* is a dynamic disk; only a differencing disk can be merged/, 'Merge-VHD', at('moved/p.vhdx'));
});

test('Merge-VHD into a grandparent with -DestinationPath', async () => {
  await ok('Convert-VHD', at('src.img'), at('g0.vhdx'), '-BlockSizeBytes', '1MB');
  await ok('New-VHD', at('g1.vhdx'), '-Differencing', '-ParentPath', at('g0.vhdx'));
  const model = mixedImage();
  await inProcess(at('g1.vhdx'), (d) => d.write(new Uint8Array(MiB).fill(1), 4 * MiB));
  model.fill(1, 4 * MiB, 5 * MiB);
  await ok('New-VHD', at('g2.vhdx'), '-Differencing', '-ParentPath', at('g1.vhdx'));
  await inProcess(at('g2.vhdx'), (d) => d.write(new Uint8Array(4096).fill(2), 4 * MiB + 8192));
  model.fill(2, 4 * MiB + 8192, 4 * MiB + 8192 + 4096);
  writeFileSync(at('gmodel.img'), model);
  await fails(2, /^Merge-VHD: parameter -DestinationPath: .*src\.img is not an ancestor/, 'Merge-VHD', at('g2.vhdx'), at('src.img'));
  await ok('Merge-VHD', '-Path', at('g2.vhdx'), '-DestinationPath', at('g0.vhdx'));
  assert.ok(!existsSync(at('g2.vhdx')) && !existsSync(at('g1.vhdx')));
  assert.match(qemuImg('compare', at('gmodel.img'), at('g0.vhdx')), /identical/);
});

test('Set-VHD re-points a differencing VHD to its moved parent; Merge-VHD folds it in', async () => {
  await ok('Convert-VHD', at('src.img'), at('v.vhd'));
  await ok('New-VHD', at('vc.vhd'), '-Differencing', '-ParentPath', at('v.vhd'));
  mkdirSync(at('vmoved'));
  renameSync(at('v.vhd'), at('vmoved/v.vhd'));
  const broken = await vmhost('Test-VHD', at('vc.vhd'));
  assert.deepEqual([broken.code, broken.stdout.trim()], [1, 'False']);
  await ok('Set-VHD', at('vc.vhd'), '-ParentPath', at('vmoved/v.vhd'));
  assert.equal((await json('Get-VHD', at('vc.vhd')))['ParentPath'], at('vmoved/v.vhd'));
  const model = mixedImage();
  const patch = new Uint8Array(MiB + 4096).fill(7);
  await inProcess(at('vc.vhd'), (d) => d.write(patch, 5 * MiB - 4096));
  model.set(patch, 5 * MiB - 4096);
  writeFileSync(at('vmodel.img'), model);
  await ok('Merge-VHD', at('vc.vhd'), at('vmoved/v.vhd'));
  assert.ok(!existsSync(at('vc.vhd')));
  assert.match(qemuImg('compare', '-f', 'raw', '-F', 'vpc', at('vmodel.img'), at('vmoved/v.vhd')), /identical/);
  assert.equal((await ok('Test-VHD', at('vmoved/v.vhd'))).trim(), 'True');
});

test('Optimize-VHD shrinks a trimmed file; Test-VHD finds a corrupt header byte', async () => {
  await ok('Convert-VHD', at('src.img'), at('o.vhdx'), '-BlockSizeBytes', '1MB');
  const before = statSync(at('o.vhdx')).size;
  await inProcess(at('o.vhdx'), (d) => d.trim(0, 8 * MiB));
  const model = mixedImage();
  model.fill(0, 0, 8 * MiB);
  writeFileSync(at('omodel.img'), model);
  const r = await vmhost('Optimize-VHD', at('o.vhdx'), '-Mode', 'Full', '-Verbose');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /blocks moved/);
  assert.match(r.stderr, /^Optimize-VHD 'o\.vhdx': 100%$/m, 'progress from the zero scan and the compaction');
  const after = statSync(at('o.vhdx')).size;
  assert.ok(after <= before - 3 * MiB, `${before} → ${after}`);
  assert.match(qemuImg('check', at('o.vhdx')), /No errors were found/);
  assert.match(qemuImg('compare', at('omodel.img'), at('o.vhdx')), /identical/);
  await fails(4, /^Optimize-VHD: parameter -Path: .* is a fixed disk/, 'Optimize-VHD', at('fix.vhdx'));

  assert.equal((await ok('Test-VHD', at('o.vhdx'))).trim(), 'True');
  const fd = openSync(at('o.vhdx'), 'r+');
  writeSync(fd, Buffer.from([0xff]), 0, 1, 64 * 1024 + 100); // inside header 1: its CRC no longer matches
  closeSync(fd);
  const bad = await vmhost('Test-VHD', '-Path', at('o.vhdx'));
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout.trim(), 'False');
  assert.match(bad.stderr, /^Test-VHD: .*o\.vhdx: header 1 \(64 KiB\) is invalid/);
});

test('Set-VHD sector size and identifier; user metadata set, get, remove', async () => {
  const id = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  const before = await json('Get-VHD', at('dyn.vhdx'));
  await ok('Set-VHD', at('dyn.vhdx'), '-PhysicalSectorSizeBytes', '512');
  const after = await json('Set-VHD', at('dyn.vhdx'), '-ResetDiskIdentifier', '-PassThru');
  assert.equal(after['PhysicalSectorSize'], 512);
  assert.notEqual(after['DiskIdentifier'], before['DiskIdentifier']);
  await ok('Set-VHDMetadata', at('dyn.vhdx'), '-Id', id, '-Value', 'owner=qa team ✓');
  const item = await json('Get-VHDMetadata', at('dyn.vhdx'), '-Id', id);
  assert.deepEqual([item['Id'], item['Value']], [id, 'owner=qa team ✓']);
  const list = await json<Array<Record<string, unknown>>>('Get-VHDMetadata', at('dyn.vhdx'));
  assert.deepEqual(list.map((i) => i['Id']), [id]);
  assert.match(qemuImg('check', at('dyn.vhdx')), /No errors were found/);
  // Children still link after these changes (DataWriteGuid kept).
  assert.equal((await ok('Test-VHD', at('diff.vhdx'))).trim(), 'True');
  await ok('Set-VHDMetadata', at('dyn.vhdx'), id, '-Remove');
  await fails(3, /^Get-VHDMetadata: parameter -Id: .* has no user metadata item/, 'Get-VHDMetadata', at('dyn.vhdx'), '-Id', id);
  await fails(4, /^Set-VHDMetadata: parameter -Path: .* is a VHD file; only VHDX files hold user metadata/, 'Set-VHDMetadata', at('dyn.vhd'), '-Id', id, '-Value', 'x');
  await fails(2, /^Set-VHDMetadata: parameter -Id: 'nope' is not a GUID/, 'Set-VHDMetadata', at('dyn.vhdx'), '-Id', 'nope', '-Value', 'x');
});

test('bad input: one-line errors naming the parameter, usage exit codes', async () => {
  await Promise.all([
    fails(2, /^New-VHD: a parameter cannot be found that matches parameter name 'Bogus'/, 'New-VHD', at('n1.vhdx'), '-SizeBytes', '1GB', '-Bogus'),
    fails(2, /^New-VHD: parameter -SizeBytes: '3XB' is not a size/, 'New-VHD', at('n2.vhdx'), '-SizeBytes', '3XB'),
  ]);
  await Promise.all([
    fails(2, /^New-VHD: parameter -SizeBytes: 70368744177665 bytes exceeds the VHDX maximum of 64 TB/, 'New-VHD', at('n3.vhdx'), '-SizeBytes', String(64 * 2 ** 40 + 1)),
    fails(2, /^New-VHD: parameter -SizeBytes: 2190433320961 bytes exceeds the VHD maximum of 2040 GB/, 'New-VHD', at('n4.vhd'), '-SizeBytes', String(2040 * 2 ** 30 + 1)),
  ]);
  await Promise.all([
    fails(2, /^New-VHD: parameter -LogicalSectorSizeBytes: a VHD has 512-byte logical sectors only/, 'New-VHD', at('n5.vhd'), '1GB', '-LogicalSectorSizeBytes', '4096'),
    fails(2, /^New-VHD: parameter -Path: '.*n6\.qcow2' must end in \.vhdx or \.vhd/, 'New-VHD', at('n6.qcow2'), '1GB'),
  ]);
  await Promise.all([
    fails(2, /^New-VHD: parameter -BlockSizeBytes: 3145728 must be a power of two from 1MB to 256MB/, 'New-VHD', at('n7.vhdx'), '1GB', '-BlockSizeBytes', '3MB'),
    fails(4, /^New-VHD: parameter -Path: the file already exists/, 'New-VHD', at('dyn.vhdx'), '1GB'),
  ]);
  await Promise.all([
    fails(3, /^Get-VHD: parameter -Path: file not found: .*nothing\.vhdx/, 'Get-VHD', at('nothing.vhdx')),
    fails(2, /^New-VHD: missing mandatory parameter -SizeBytes/, 'New-VHD', at('n8.vhdx')),
  ]);
  for (const n of [1, 2, 3, 4, 5, 7, 8]) assert.ok(!existsSync(at(`n${n}.vhd${n === 4 || n === 5 ? '' : 'x'}`)), `n${n} not created`);
});
