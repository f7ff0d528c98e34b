// Resource pools through the CLI against one daemon, no guests (the metering of pools, with
// real guests, is in resource-metering.test.ts): New-VMResourcePool of several types, parents
// and their loops, Rename-/Remove-VMResourcePool and its refusals, the Primordial pools, storage
// paths (Add-/Get-/Remove-VMStoragePath) and a VHD pool taking only drives under them,
// Add-VMHardDiskDrive / Add-VMNetworkAdapter -ResourcePoolName, PoolName on the devices, a
// switch in an Ethernet pool (Add-VMSwitch, Get-VMSwitch/Remove-VMSwitch -ResourcePoolName,
// Connect-VMNetworkAdapter -UseAutomaticConnection), and the
// book kept across a daemon SIGKILL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from './support/daemon.ts';

interface Pool { Name: string; ResourcePoolType: string; ParentName: string | null; Paths: string[]; Switches: string[]; Members: { VMName: string; DeviceName: string | null }[] }

describe('resource pools', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });
  const pools = async (...args: string[]) => {
    const out = JSON.parse(await d.ok('Get-VMResourcePool', ...args, '-Json')) as Pool | Pool[];
    return Array.isArray(out) ? out : [out];
  };

  test('pools, parents, paths and members; refusals; kept across a SIGKILL', { timeout: 180_000 }, async () => {
    const disks = join(d.dataDir, 'tenant-disks');
    await mkdir(disks);
    await Promise.all([
      d.ok('New-VMResourcePool', 'Acme', 'VHD,Ethernet,ISO', '-Paths', disks),
      d.ok('New-VM', 'v1', '-NoVHD'),
      d.ok('New-VHD', '-Path', join(disks, 'a.vhdx'), '-SizeBytes', '64MB'),
      d.ok('New-VHD', '-Path', join(d.dataDir, 'outside.vhdx'), '-SizeBytes', '64MB'),
    ]);
    await d.ok('New-VMResourcePool', 'Dept', 'VHD', '-ParentName', 'Acme');
    const refused = await Promise.all([
      d.cli('New-VMResourcePool', 'Primordial', 'VHD'),
      d.cli('Set-VMResourcePool', 'Acme', '-ParentName', 'Dept', '-ResourcePoolType', 'VHD'),
      d.cli('New-VMResourcePool', 'X', 'Memory', '-Paths', disks),
      d.cli('Remove-VMResourcePool', 'Acme', 'VHD'),
      d.cli('Add-VMHardDiskDrive', 'v1', join(d.dataDir, 'outside.vhdx'), '-ControllerType', 'SCSI', '-ResourcePoolName', 'Acme'),
    ]);
    assert.deepEqual(refused.map((r) => r.code), [2, 2, 2, 4, 2], refused.map((r) => r.stderr).join(''));
    assert.match(refused[1]!.stderr, /loop/);
    assert.match(refused[3]!.stderr, /child pools Dept/);
    assert.match(refused[4]!.stderr, /not under the paths of VHD pool 'Acme'/);

    await d.ok('Add-VMHardDiskDrive', 'v1', join(disks, 'a.vhdx'), '-ControllerType', 'SCSI', '-ControllerLocation', '1', '-ResourcePoolName', 'Dept');
    await d.ok('Add-VMNetworkAdapter', '-VMName', 'v1', '-Name', 'Billed', '-ResourcePoolName', 'Acme');
    const vhd = (await pools('Dept', 'VHD'))[0]!;
    assert.deepEqual([vhd.ParentName, vhd.Members.map((m) => m.VMName)], ['Acme', ['v1']]);
    const drives = JSON.parse(await d.ok('Get-VMHardDiskDrive', 'v1', '-Json')) as { Path: string; PoolName: string }[];
    assert.equal(drives.find((x) => x.Path.endsWith('a.vhdx'))?.PoolName, 'Dept');
    const nics = JSON.parse(await d.ok('Get-VMNetworkAdapter', 'v1', '-Json')) as { Name: string; PoolName: string }[];
    assert.deepEqual(nics.map((n) => [n.Name, n.PoolName]).sort(), [['Billed', 'Acme'], ['Network Adapter', 'Primordial']]);

    // A switch in the Ethernet pool: the pool's adapters connect to it automatically.
    await d.ok('New-VMSwitch', 'Uplink', '-SwitchType', 'Private');
    await d.ok('Add-VMSwitch', 'Uplink', 'Acme');
    assert.deepEqual((JSON.parse(await d.ok('Get-VMSwitch', '-ResourcePoolName', 'Acme', '-Json')) as { Name: string }[]).map((w) => w.Name), ['Uplink']);
    await d.ok('Connect-VMNetworkAdapter', 'v1', '-Name', 'Billed', '-UseAutomaticConnection');
    assert.equal((await d.cli('Connect-VMNetworkAdapter', 'v1', '-Name', 'Network Adapter', '-UseAutomaticConnection')).code, 4, 'an adapter in no pool has no automatic switch');
    const billed = ((await d.api('GET', '/api/v1/vms/v1/network-adapters?Name=Billed')).json as { SwitchName: string }[])[0]!;
    assert.equal(billed.SwitchName, 'Uplink');
    await d.ok('Remove-VMSwitch', 'Uplink', '-ResourcePoolName', 'Acme');
    assert.deepEqual([(await pools('Acme', 'Ethernet'))[0]!.Switches, (await d.api('GET', '/api/v1/switches/Uplink')).status], [[], 200], 'out of the pool, not deleted');

    // Storage paths: Acme's VHD pool has one; Dept's drive is under Dept, whose own paths are none.
    await d.ok('Add-VMStoragePath', '-ResourcePoolName', 'Acme', '-ResourcePoolType', 'ISO', '-Path', join(d.dataDir, 'isos'));
    const paths = JSON.parse(await d.ok('Get-VMStoragePath', '-ResourcePoolName', 'Ac*', '-Json')) as { Path: string; ResourcePoolType: string }[];
    assert.deepEqual(paths.map((p) => [p.ResourcePoolType, p.Path]).sort(), [['ISO', join(d.dataDir, 'isos')], ['ISO', disks], ['VHD', disks]]);
    await d.ok('Remove-VMStoragePath', '-ResourcePoolName', 'Acme', '-ResourcePoolType', 'ISO', '-Path', disks);

    // Wildcards, the Primordial pools, and a rename that members and children follow.
    assert.deepEqual((await pools('*', 'VHD')).map((p) => p.Name), ['Primordial', 'Acme', 'Dept']);
    await d.ok('Rename-VMResourcePool', 'Acme', 'Globex', 'VHD');
    assert.equal((await pools('Dept', 'VHD'))[0]!.ParentName, 'Globex');
    assert.equal((await pools('Acme')).length, 2, 'the Ethernet and ISO pools keep their name');

    // The book survives a SIGKILL (written before each command answers).
    await d.kill();
    await d.launch();
    assert.deepEqual((await pools('Dept', 'VHD'))[0]!.Members.map((m) => m.VMName), ['v1']);
    assert.deepEqual((await pools('Acme', 'ISO'))[0]!.Paths, [join(d.dataDir, 'isos')]);
    // A removed drive leaves its pool; then the pool can go.
    await d.ok('Remove-VMHardDiskDrive', 'v1', '-ControllerType', 'SCSI', '-ControllerNumber', '0', '-ControllerLocation', '1');
    await d.ok('Remove-VMResourcePool', 'Dept');
    assert.equal((await d.cli('Get-VMResourcePool', 'Dept')).code, 3);
  });
});
