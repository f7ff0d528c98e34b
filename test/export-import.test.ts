// Export and import between two hosts (issue 10): Export-VM of a running guest on host A while
// it runs, Import-VM -Copy -GenerateNewId on host B: B's copy boots with A's disk content of the
// export's moment (sha256 of the written region), A runs on. An off VM with a checkpoint
// exported, its export broken (switch missing on B, parent disk moved away): Compare-VM names
// both with their fixes, Import-VM refuses, the fixed import registers it in place with its data
// and checkpoint. Config versions: an older export imports, a newer one is refused; a daemon
// upgrades an older vm.json it reads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

interface Vm { Id: string; Name: string; State: string; Heartbeat: string; ParentSnapshotName: string | null }
interface Report { VM: { id: string; name: string; networkAdapters: { switchName: string | null }[] } | null; Incompatibilities: { Kind: string; Message: string; MessageId: number; Fix: string }[] }

describe('export and import', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  before(async () => { [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]); });
  after(async () => { await Promise.all([a?.stop(), b?.stop()]); });

  const vm = async (d: TestDaemon, name: string) => JSON.parse(await d.ok('Get-VM', name, '-Json')) as Vm;
  const guest = async (d: TestDaemon, name: string, script: string) => (await d.ok('Invoke-Command', '-VMName', name, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  const heartbeat = (d: TestDaemon, name: string) => waitFor(`${name} heartbeat`, 180_000, async () => (await vm(d, name)).Heartbeat === 'OK');
  const compare = async (d: TestDaemon, ...args: string[]) => JSON.parse(await d.ok('Compare-VM', ...args, '-Json')) as Report;

  test('a running VM exported on A, imported on B with -Copy -GenerateNewId: it boots with the export moment\'s data; A runs on', { timeout: 900_000 }, async () => {
    const disk = join(a.dataDir, 'live-data.vhdx');
    await a.ok('New-VHD', '-Path', disk, '-SizeBytes', '128MB', '-Dynamic');
    await a.ok('New-VM', 'live1', '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await a.ok('Add-VMHardDiskDrive', '-VMName', 'live1', '-Path', disk, '-ControllerType', 'SCSI');
    await a.ok('Start-VM', 'live1');
    await heartbeat(a, 'live1');
    const dev = await guest(a, 'live1', 'ls /sys/bus/scsi/devices/0:0:0:0/block/');
    const region = `dd if=/dev/${dev} bs=1M count=8 iflag=direct 2>/dev/null | sha256sum`;
    await guest(a, 'live1', `dd if=/dev/urandom of=/dev/${dev} bs=1M count=8 oflag=direct 2>/dev/null; sync`);
    // A checkpoint, then newer data over half the region: the export joins the frozen file (copied as a file) and the leaf's own ranges.
    await a.ok('Checkpoint-VM', 'live1', '-SnapshotName', 'pre');
    await guest(a, 'live1', `dd if=/dev/urandom of=/dev/${dev} bs=1M count=4 oflag=direct 2>/dev/null; sync`);
    const atExport = await guest(a, 'live1', region);

    const exportDir = join(a.dataDir, 'exports');
    await mkdir(exportDir);
    await a.ok('Export-VM', 'live1', exportDir);
    const source = await vm(a, 'live1');
    assert.equal(source.State, 'Running', 'A\'s VM runs on through the export');
    await guest(a, 'live1', `dd if=/dev/urandom of=/dev/${dev} bs=1M count=8 oflag=direct 2>/dev/null; sync`);
    assert.notEqual(await guest(a, 'live1', region), atExport, 'A\'s disk moved on after the export');

    const root = join(exportDir, 'live1');
    assert.deepEqual((await readdir(root)).sort(), ['Snapshots', 'Virtual Hard Disks', 'Virtual Machines']);
    const vhds = (await readdir(join(root, 'Virtual Hard Disks'))).sort();
    assert.equal(vhds[0], 'live-data.vhdx');
    assert.match(vhds[1]!, /^live-data_[0-9a-f-]{36}\.avhdx$/);
    const config = join(root, 'Virtual Machines', `${source.Id}.json`);
    const exported = JSON.parse(await readFile(config, 'utf8')) as { configVersion: number; hardDrives: { path: string }[] };
    assert.equal(exported.configVersion, 3);
    assert.deepEqual(exported.hardDrives.map((d) => d.path), [`Virtual Hard Disks/${vhds[1]}`], 'drive paths are relative to the export');
    assert.equal((await run('qemu-img', ['check', '-f', 'vhdx', join(root, 'Virtual Hard Disks', 'live-data.vhdx')])).code, 0);
    assert.equal(JSON.parse(await a.ok('Get-VHD', join(root, 'Virtual Hard Disks', vhds[1]!), '-Json')).ParentPath, join(root, 'Virtual Hard Disks', 'live-data.vhdx'),
      'the leaf\'s copy is a child of the copied parent');

    // On A the same export would clash by name (an id of its own with -GenerateNewId): the report says so.
    const here = await compare(a, config, '-Copy', '-GenerateNewId');
    assert.deepEqual(here.Incompatibilities.map((i) => i.Kind), ['NameInUse']);

    const dest = join(b.dataDir, 'imported');
    const imported = JSON.parse(await b.ok('Import-VM', '-Path', config, '-Copy', '-GenerateNewId', '-VhdDestinationPath', dest, '-Json')) as Vm;
    assert.notEqual(imported.Id, source.Id, 'a new id');
    assert.equal(imported.State, 'Off', 'a running VM\'s export is crash-consistent and imports Off');
    const mac = async (d: TestDaemon) => [JSON.parse(await d.ok('Get-VMNetworkAdapter', 'live1', '-Json')) as { MacAddress: string }].flat()[0]!.MacAddress;
    const [nicA, nicB] = [await mac(a), await mac(b)];
    assert.notEqual(nicB, nicA, 'a dynamic MAC gets a new address');
    const drives = JSON.parse(await b.ok('Get-VMHardDiskDrive', 'live1', '-Json')) as { Path: string }[];
    assert.deepEqual(drives.map((d) => d.Path), [join(dest, vhds[1]!)]);
    const snaps = [JSON.parse(await b.ok('Get-VMSnapshot', 'live1', '-Json')) as { Name: string; HardDrives: string[] }].flat();
    assert.deepEqual(snaps.map((x) => [x.Name, x.HardDrives]), [['pre', [join(dest, 'live-data.vhdx')]]], 'the checkpoint came along, on the copied files');

    await b.ok('Start-VM', 'live1');
    await heartbeat(b, 'live1');
    const devB = await guest(b, 'live1', 'ls /sys/bus/scsi/devices/0:0:0:0/block/');
    assert.equal(await guest(b, 'live1', `dd if=/dev/${devB} bs=1M count=8 iflag=direct 2>/dev/null | sha256sum`), atExport, 'B has A\'s data of the export\'s moment');
    assert.equal((await vm(a, 'live1')).State, 'Running');
    await Promise.all([a.ok('Stop-VM', 'live1', '-TurnOff'), b.ok('Stop-VM', 'live1', '-TurnOff')]);
  });

  test('a saved VM imported with -Copy -GenerateNewId keeps its saved state and the MAC that memory holds; its next cold start takes a new MAC', { timeout: 300_000 }, async () => {
    const mac = async (d: TestDaemon, name: string) => [JSON.parse(await d.ok('Get-VMNetworkAdapter', name, '-Json')) as { MacAddress: string }].flat()[0]!.MacAddress;
    /** The address the guest's own NIC uses, in Get-VMNetworkAdapter's spelling. */
    const guestMac = async (d: TestDaemon, name: string) => (await guest(d, name, 'cat /sys/class/net/eth0/address')).replace(/:/g, '').toUpperCase();
    await Promise.all([a, b].map((d) => d.ok('New-VMSwitch', '-Name', 'savenet', '-SwitchType', 'Private')));
    await a.ok('New-VM', 'saved1', '-MemoryStartupBytes', '256MB', '-SwitchName', 'savenet');
    await a.ok('Start-VM', 'saved1');
    await heartbeat(a, 'saved1');
    await guest(a, 'saved1', 'echo from-memory > /tmp/marker');
    await a.ok('Save-VM', 'saved1');
    const exportDir = join(a.dataDir, 'saved-exports');
    await mkdir(exportDir);
    await a.ok('Export-VM', 'saved1', exportDir);
    const source = await vm(a, 'saved1');
    const config = join(exportDir, 'saved1', 'Virtual Machines', `${source.Id}.json`);

    const imported = JSON.parse(await b.ok('Import-VM', '-Path', config, '-Copy', '-GenerateNewId', '-Json')) as Vm;
    assert.notEqual(imported.Id, source.Id, 'a new id');
    assert.equal(imported.State, 'Saved', 'the saved state came along');
    const macA = await mac(a, 'saved1');
    assert.equal(await mac(b, 'saved1'), macA, 'the MAC the saved memory holds is kept while that memory lives');

    await b.ok('Start-VM', 'saved1');
    await heartbeat(b, 'saved1');
    assert.equal(await guest(b, 'saved1', 'cat /tmp/marker'), 'from-memory', 'B resumed A\'s memory');
    assert.equal(await guestMac(b, 'saved1'), macA, 'the guest\'s NIC and the adapter agree');

    await b.ok('Stop-VM', 'saved1', '-TurnOff');
    await b.ok('Start-VM', 'saved1');
    assert.notEqual(await mac(b, 'saved1'), macA, 'the cold start gave the adapter a new address');
    const events = JSON.parse((await b.api('GET', '/api/v1/events')).text) as { Code: string }[];
    assert.ok(events.some((e) => e.Code === 'VM_NIC_MAC_RENEWED'));
    await b.ok('Stop-VM', 'saved1', '-TurnOff');
  });

  test('an off VM with a checkpoint: Compare-VM names the missing switch and parent with fixes; the fixed report imports it in place', { timeout: 300_000 }, async () => {
    await a.ok('New-VMSwitch', 'LAN', '-SwitchType', 'Private');
    const base = join(a.dataDir, 'off-base.vhdx');
    await a.ok('New-VHD', '-Path', base, '-SizeBytes', '64MB', '-Dynamic');
    await a.ok('New-VM', 'off1', '-MemoryStartupBytes', '256MB', '-Generation', '2', '-VHDPath', base, '-SwitchName', 'LAN');
    const io = async (d: TestDaemon, vmName: string, cmds: string[]) => {
      const path = (JSON.parse(await d.ok('Get-VMHardDiskDrive', vmName, '-Json')) as { Path: string }[])[0]!.Path;
      const { NbdUri } = JSON.parse(await d.ok('Mount-VHD', '-Path', path, '-Json')) as { NbdUri: string };
      try {
        const r = await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), NbdUri]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.doesNotMatch(r.stdout, /Pattern verification failed/, r.stdout);
      } finally {
        await d.ok('Dismount-VHD', '-Path', path);
      }
    };
    await io(a, 'off1', ['write -P 0x11 0 1M']);
    await a.ok('Checkpoint-VM', 'off1', 'first');
    await io(a, 'off1', ['write -P 0x22 1M 1M']);
    const exportDir = join(a.dataDir, 'off-exports');
    await mkdir(exportDir);
    await a.ok('Export-VM', 'off1', '-Path', exportDir);
    const id = (await vm(a, 'off1')).Id;
    const root = join(exportDir, 'off1');
    const config = join(root, 'Virtual Machines', `${id}.json`);
    const vhds = (await readdir(join(root, 'Virtual Hard Disks'))).sort();
    assert.equal(vhds.length, 2);
    assert.equal(vhds[0], 'off-base.vhdx');
    assert.match(vhds[1]!, /^off-base_[0-9a-f-]{36}\.avhdx$/);
    assert.equal((await readdir(join(root, 'Snapshots'))).filter((f) => f.endsWith('.json')).length, 1);

    // Break it as a careless copy would: the parent disk elsewhere.
    const elsewhere = join(b.dataDir, 'parents');
    await mkdir(elsewhere);
    await rename(join(root, 'Virtual Hard Disks', 'off-base.vhdx'), join(elsewhere, 'off-base.vhdx'));

    // Versions: a newer config is refused naming both; an older one (version 1) is upgraded.
    const text = await readFile(config, 'utf8');
    const json = JSON.parse(text) as Record<string, unknown>;
    await writeFile(config, JSON.stringify({ ...json, configVersion: 4 }));
    assert.deepEqual((await compare(b, config)).Incompatibilities.map((i) => i.Kind), ['ConfigVersionUnsupported']);
    const newer = await b.cli('Import-VM', '-Path', config);
    assert.equal(newer.code, 4, newer.stderr);
    assert.match(newer.stderr, /version 4; this host reads versions up to 3/);
    const { snapshotFileLocation: _s, ...v1 } = json;
    await writeFile(config, JSON.stringify({ ...v1, configVersion: 1 }));

    const report = await compare(b, config);
    const kinds = report.Incompatibilities.map((i) => i.Kind).sort();
    assert.deepEqual(kinds, ['SwitchNotFound', 'VhdParentNotFound'], JSON.stringify(report.Incompatibilities));
    const sw = report.Incompatibilities.find((i) => i.Kind === 'SwitchNotFound')!;
    assert.match(sw.Message, /Could not find Ethernet switch 'LAN'/);
    assert.equal(sw.MessageId, 33012);
    assert.match(sw.Fix, /-SwitchName/);
    const parent = report.Incompatibilities.find((i) => i.Kind === 'VhdParentNotFound')!;
    assert.match(parent.Message, /off-base\.vhdx/);
    assert.match(parent.Fix, /-VhdSourcePath/);
    const refused = await b.cli('Import-VM', '-Path', config);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /2 incompatibilities: .*Could not find Ethernet switch 'LAN'/);

    // The fixes: -VhdSourcePath for the parent, the report edited for the switch (left disconnected).
    const fixed = await compare(b, config, '-VhdSourcePath', elsewhere);
    assert.deepEqual(fixed.Incompatibilities.map((i) => i.Kind), ['SwitchNotFound']);
    fixed.VM!.networkAdapters[0]!.switchName = null;
    const file = join(b.dataDir, 'report.json');
    await writeFile(file, JSON.stringify(fixed));
    const imported = JSON.parse(await b.ok('Import-VM', '-CompatibilityReport', file, '-Json')) as Vm;
    assert.deepEqual([imported.Id, imported.Name, imported.State, imported.ParentSnapshotName], [id, 'off1', 'Off', 'first'], 'registered in place: same id, its checkpoint kept');
    const drives = JSON.parse(await b.ok('Get-VMHardDiskDrive', 'off1', '-Json')) as { Path: string }[];
    assert.equal(drives[0]!.Path, join(root, 'Virtual Hard Disks', vhds[1]!), 'the disk is used where the export put it');
    await io(b, 'off1', ['read -P 0x11 0 1M', 'read -P 0x22 1M 1M', 'read -P 0 2M 62M']);
    const snaps = JSON.parse(await b.ok('Get-VMSnapshot', 'off1', '-Json')) as { Name: string }[] | { Name: string };
    assert.deepEqual([snaps].flat().map((s) => s.Name), ['first']);
    assert.equal((await vm(a, 'off1')).State, 'Off', 'A keeps its VM');

    // Export-VMSnapshot: a VM as of the checkpoint, cloned on A itself (its name is taken: renamed in the report).
    const snapDir = join(a.dataDir, 'snap-exports');
    await mkdir(snapDir);
    await a.ok('Export-VMSnapshot', '-VMName', 'off1', '-Name', 'first', '-Path', snapDir);
    const clone = await compare(a, join(snapDir, 'off1', 'Virtual Machines', `${id}.json`), '-Copy', '-GenerateNewId', '-VhdDestinationPath', join(a.dataDir, 'clone'));
    assert.deepEqual(clone.Incompatibilities.map((i) => i.Kind), ['NameInUse']);
    clone.VM!.name = 'off1-first';
    await writeFile(file, JSON.stringify(clone));
    await a.ok('Import-VM', '-CompatibilityReport', file);
    await io(a, 'off1-first', ['read -P 0x11 0 1M', 'read -P 0 1M 63M']);

    // A daemon reading a version 1 vm.json upgrades it and writes it back.
    await b.ok('New-VM', 'old1', '-MemoryStartupBytes', '256MB');
    const oldId = (await vm(b, 'old1')).Id;
    const vmJson = join(b.dataDir, 'vms', oldId, 'vm.json');
    const { snapshotFileLocation: _t, bios: _b, ...cur } = JSON.parse(await readFile(vmJson, 'utf8')) as Record<string, unknown>;
    await b.terminate();
    await writeFile(vmJson, JSON.stringify({ ...cur, configVersion: 1 }));
    await b.launch();
    const upgraded = JSON.parse(await readFile(vmJson, 'utf8')) as { configVersion: number; snapshotFileLocation: string; bios: unknown };
    assert.equal(upgraded.configVersion, 3);
    assert.equal(upgraded.snapshotFileLocation, join(b.dataDir, 'vms', oldId, 'snapshots'));
    assert.ok(upgraded.bios, 'defaults written out');
    assert.equal(existsSync(join(root, 'Virtual Machines', `${id}.json`)), true);
  });
});
