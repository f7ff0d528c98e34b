// Real guests boot what the admin gives them, through the VM's firmware: New-VM's disk and
// network parameters, DVD boot (an installer-style ISO the project builds: grub for BIOS and
// UEFI, then the test guest) under SeaBIOS and OVMF, the boot order taking effect on the next
// boot, secure boot refusing an unsigned boot loader, media changed while running, and an NMI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBootIso } from '../src/guest/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';

interface Vm { Id: string; State: string; Status: string; BootSource: string; Heartbeat: string; Path: string }
interface Firmware { SecureBoot: string; BootOrder: { BootType: string; DeviceRef: string; Id: string }[] }

describe('firmware boot', () => {
  let d: TestDaemon;
  let t: CliTools;
  let iso: string;
  before(async () => {
    [d, iso] = await Promise.all([TestDaemon.start(), ensureBootIso()]);
    t = cliTools(d);
    await t.ok('New-VMSwitch', '-Name', 'LAN', '-SwitchType', 'Private');
  });
  after(async () => { await d?.stop(); });

  const vm = (name: string) => t.json<Vm>('Get-VM', name);
  /** The first object of a cmdlet that lists (one object or an array in -Json). */
  const first = async <T,>(...args: string[]) => [await t.json<T | T[]>(...args)].flat()[0]!;
  /** What a log file in the VM folder holds. */
  const logFrom = async (name: string, file: string) => readFile(join((await vm(name)).Path, file), 'latin1').catch(() => '');

  test('New-VM creates, attaches and connects in one go; bad input leaves nothing behind', async () => {
    const disk = join(d.dataDir, 'r1.vhdx');
    const created = await t.json<Vm & Record<string, unknown>>('New-VM', '-Name', 'r1', '-Generation', '2', '-NewVHDPath', disk, '-NewVHDSizeBytes', '8GB', '-SwitchName', 'LAN');
    assert.equal(created.BootSource, 'TestGuest', 'a new, blank disk has nothing to boot');
    const hdd = await first<Record<string, unknown>>('Get-VMHardDiskDrive', 'r1');
    assert.deepEqual([hdd.Path, hdd.ControllerType, hdd.ControllerNumber, hdd.ControllerLocation], [disk, 'SCSI', 0, 0]);
    const nic = await t.json<Record<string, unknown>>('Get-VMNetworkAdapter', 'r1');
    assert.deepEqual([nic.Name, nic.SwitchName, nic.IsLegacy], ['Network Adapter', 'LAN', false]);
    for (const k of ['VMName', 'MacAddress', 'SwitchName', 'DynamicMacAddressEnabled']) assert.ok(k in nic, `Hyper-V's property ${k}`);
    const vhd = await t.json<{ VhdType: string; Size: number }>('Get-VHD', disk);
    assert.deepEqual([vhd.VhdType, vhd.Size], ['Dynamic', 8 * 1024 ** 3]);

    // Generation 1: the new disk goes to IDE 0:0; a relative path is taken from -Path.
    await t.ok('New-VM', '-Name', 'r2', '-NewVHDPath', 'r2.vhdx', '-Path', d.dataDir, '-NewVHDSizeBytes', '1GB');
    const hdd2 = await first<Record<string, unknown>>('Get-VMHardDiskDrive', 'r2');
    assert.deepEqual([hdd2.Path, hdd2.ControllerType, hdd2.ControllerNumber, hdd2.ControllerLocation], [join(d.dataDir, 'r2.vhdx'), 'IDE', 0, 0]);
    const nic2 = await t.json<Record<string, unknown>>('Get-VMNetworkAdapter', 'r2');
    assert.equal(nic2.SwitchName, null, 'not connected without -SwitchName');
    await t.ok('Connect-VMNetworkAdapter', '-VMName', 'r2', '-SwitchName', 'LAN');

    await t.fails(/already exists/, 'New-VM', '-Name', 'r3', '-NewVHDPath', disk, '-NewVHDSizeBytes', '1GB');
    await t.fails(/unable to find a virtual switch with name 'nope'/, 'New-VM', '-Name', 'r3', '-NewVHDPath', join(d.dataDir, 'r3.vhdx'), '-NewVHDSizeBytes', '1GB', '-SwitchName', 'nope');
    await t.fails(/BootDevice: generation 2 VMs boot from CD, VHD, NetworkAdapter/, 'New-VM', '-Name', 'r3', '-Generation', '2', '-BootDevice', 'IDE');
    await t.fails(/VHDPath: no such file/, 'New-VM', '-Name', 'r3', '-VHDPath', join(d.dataDir, 'missing.vhdx'));
    await t.fails(/NewVHDSizeBytes/, 'New-VM', '-Name', 'r3', '-NewVHDPath', join(d.dataDir, 'r3.vhdx'));
    await t.fails(/in use|already attached/, 'New-VM', '-Name', 'r3', '-VHDPath', disk);
    assert.equal((await d.cli('Get-VM', 'r3')).code, 3, 'no half-created VM');
    await assert.rejects(stat(join(d.dataDir, 'r3.vhdx')), 'no disk file left by a failed New-VM');
  });

  test('boot order: device references, clear errors, network boot first', async () => {
    const fw = await t.json<Firmware>('Get-VMFirmware', 'r1');
    assert.deepEqual([fw.SecureBoot, ...fw.BootOrder.map((b) => b.DeviceRef)], ['On', 'SCSI:0:0', 'NetworkAdapter:Network Adapter']);
    await t.fails(/BootOrder: VM 'r1' has no drive at SCSI 0:5/, 'Set-VMFirmware', 'r1', '-BootOrder', 'NetworkAdapter,SCSI:0:5');
    await t.fails(/FirstBootDevice: VM 'r1' has no network adapter named 'Back'/, 'Set-VMFirmware', 'r1', '-FirstBootDevice', 'NetworkAdapter:Back');
    await t.ok('Set-VMFirmware', 'r1', '-FirstBootDevice', 'NetworkAdapter');
    assert.deepEqual((await t.json<Firmware>('Get-VMFirmware', 'r1')).BootOrder.map((b) => b.BootType), ['Network', 'Drive']);
    assert.equal((await vm('r1')).BootSource, 'Firmware', 'network first is something to boot');
    await t.fails(/generation 2 VM .*Get-\/Set-VMFirmware/, 'Get-VMBios', 'r1');
    await t.fails(/generation 1 VM .*Get-\/Set-VMBios/, 'Set-VMFirmware', 'r2', '-FirstBootDevice', 'SCSI:0:0');
    await t.fails(/StartupOrder/, 'Set-VMBios', 'r2', '-StartupOrder', 'IDE,CD');
    const bios = await t.json<{ StartupOrder: string[]; NumLockEnabled: boolean }>('Set-VMBios', 'r2', '-StartupOrder', 'IDE,CD,LegacyNetworkAdapter,Floppy', '-EnableNumLock', '-PassThru');
    assert.deepEqual(bios, { ...bios, StartupOrder: ['IDE', 'CD', 'LegacyNetworkAdapter', 'Floppy'], NumLockEnabled: true });
  });

  test('controllers, floppy and COM ports: Hyper-V\'s cmdlets and rules; SeaBIOS boots a floppy with a boot sector', { timeout: 120_000 }, async () => {
    await t.ok('New-VM', '-Name', 'c1', '-Generation', '2', '-NewVHDPath', join(d.dataDir, 'c1.vhdx'), '-NewVHDSizeBytes', '1GB');
    assert.deepEqual((await first<{ Drives: string[] }>('Get-VMScsiController', 'c1')).Drives, ['Hard Drive on SCSI 0:0']);
    await t.fails(/has no SCSI controller 1 .*Add-VMScsiController/, 'Add-VMHardDiskDrive', '-VMName', 'c1', '-Path', join(d.dataDir, 'x.vhdx'), '-ControllerType', 'SCSI', '-ControllerNumber', '1', '-ControllerLocation', '0');
    await t.ok('Add-VMScsiController', 'c1');
    assert.equal([await t.json<unknown>('Get-VMScsiController', 'c1')].flat().length, 2);
    await t.fails(/still holds Hard Drive on SCSI 0:0/, 'Remove-VMScsiController', 'c1', '-ControllerNumber', '0');
    await t.ok('Remove-VMScsiController', 'c1', '-ControllerNumber', '1');
    await t.fails(/generation 2 VM: it has no floppy drive/, 'Get-VMFloppyDiskDrive', 'c1');
    await t.fails(/generation 2 VM: it has no IDE controller/, 'Get-VMIdeController', 'c1');

    await t.ok('New-VM', '-Name', 'f1', '-MemoryStartupBytes', '128MB', '-BootDevice', 'Floppy');
    const ide = [await t.json<{ ControllerNumber: number }>('Get-VMIdeController', 'f1')].flat();
    assert.deepEqual(ide.map((c) => c.ControllerNumber), [0, 1]);
    const vfd = join(d.dataDir, 'blank.vfd');
    await t.ok('New-VFD', vfd);
    await t.fails(/already exists/, 'New-VFD', vfd);
    await t.ok('Set-VMFloppyDiskDrive', 'f1', vfd);
    assert.equal((await t.json<{ Path: string }>('Get-VMFloppyDiskDrive', 'f1')).Path, vfd);
    assert.equal((await vm('f1')).BootSource, 'TestGuest', 'a blank floppy has no boot sector');
    await t.fails(/not a virtual floppy disk/, 'Set-VMFloppyDiskDrive', 'f1', join(d.dataDir, 'c1.vhdx'));
    // A bootable floppy, as an admin writes one: Debian's grub rescue image onto a blank VFD.
    const bootVfd = join(d.dataDir, 'grub.vfd');
    await t.ok('New-VFD', bootVfd);
    const fh = await open(bootVfd, 'r+');
    await fh.write(await readFile('/usr/lib/grub-rescue/grub-rescue-floppy.img'), 0, undefined, 0);
    await fh.close();
    await t.ok('Set-VMFloppyDiskDrive', 'f1', bootVfd);
    assert.equal((await vm('f1')).BootSource, 'Firmware');

    const com2 = join(d.dataDir, 'f1-com2.sock');
    await t.fails(/COM 1 is vmhost's serial console/, 'Set-VMComPort', 'f1', '-Number', '1', '-Path', com2);
    await t.fails(/the folder .* does not exist/, 'Set-VMComPort', 'f1', '-Number', '2', '-Path', '/nonexistent/dir/x.sock');
    await t.ok('Set-VMComPort', 'f1', '-Number', '2', '-Path', com2);
    assert.equal((await t.json<{ Path: string }>('Get-VMComPort', 'f1', '-Number', '2')).Path, com2);

    await t.ok('Start-VM', 'f1');
    await waitFor('SeaBIOS booting the floppy', 60_000, async () => /Booting from Floppy\.\.\./.test(await logFrom('f1', 'firmware.log')));
    assert.ok((await stat(com2)).isSocket(), 'QEMU listens on COM 2\'s socket');
    await t.fails(/Cannot change controllers, the floppy disk or COM ports of VM 'f1' because it is Running/, 'Set-VMFloppyDiskDrive', 'f1', vfd);
    await t.ok('Stop-VM', 'f1', '-TurnOff');
  });

  test('generation 1 installs from DVD: SeaBIOS boots the ISO; the startup order takes effect on the next boot; media changes live; NMI', { timeout: 300_000 }, async () => {
    await t.ok('New-VM', '-Name', 'g1', '-MemoryStartupBytes', '256MB', '-NewVHDPath', join(d.dataDir, 'g1.vhdx'), '-NewVHDSizeBytes', '1GB', '-BootDevice', 'CD');
    const dvd = await first<{ ControllerType: string; Path: string | null }>('Get-VMDvdDrive', 'g1');
    assert.deepEqual([dvd.ControllerType, dvd.Path], ['IDE', null], '-BootDevice CD adds an empty DVD drive');
    assert.equal((await vm('g1')).BootSource, 'TestGuest', 'an empty DVD and a blank disk boot nothing');
    await t.ok('Set-VMDvdDrive', '-VMName', 'g1', '-Path', iso);
    assert.deepEqual((await t.json<{ StartupOrder: string[] }>('Get-VMBios', 'g1')).StartupOrder, ['CD', 'IDE', 'LegacyNetworkAdapter', 'Floppy']);
    assert.equal((await vm('g1')).BootSource, 'Firmware');

    await t.ok('Start-VM', 'g1');
    await t.heartbeat('g1');
    const fwlog = await logFrom('g1', 'firmware.log');
    assert.match(fwlog, /Booting from DVD\/CD/, 'SeaBIOS booted the DVD');
    assert.doesNotMatch(fwlog, /Booting from Hard Disk/, 'CD comes first');
    assert.match(await logFrom('g1', 'serial.log'), /vmhost test guest \(from DVD\)/, 'the ISO\'s boot menu on the serial console');
    assert.equal((await t.sh('g1', 'hostname')).out.trim(), 'dvd-guest', 'the guest came from the ISO');

    // Media: eject and insert while running.
    await t.ok('Set-VMDvdDrive', '-VMName', 'g1', '-Path', '$null');
    assert.equal((await first<{ Path: string | null; DvdMediaType: string }>('Get-VMDvdDrive', 'g1')).DvdMediaType, 'None');
    await t.ok('Set-VMDvdDrive', '-VMName', 'g1', '-Path', iso);
    assert.equal((await first<{ Path: string | null }>('Get-VMDvdDrive', 'g1')).Path, iso);

    // NMI: the guest kernel logs it.
    await t.ok('Debug-VM', 'g1', '-InjectNonMaskableInterrupt', '-Force');
    await waitFor('NMI in the guest\'s kernel log', 20_000, async () => /NMI/.test((await t.sh('g1', 'dmesg | tail -n 20')).out));

    // IDE first: SeaBIOS tries the blank disk, then the DVD — from the next boot on.
    await t.ok('Set-VMBios', 'g1', '-StartupOrder', 'IDE,CD,LegacyNetworkAdapter,Floppy');
    await t.ok('Stop-VM', 'g1', '-TurnOff');
    await t.ok('Start-VM', 'g1');
    await t.heartbeat('g1');
    const second = await logFrom('g1', 'firmware.log'); // this boot's only
    const hd = second.indexOf('Booting from Hard Disk'), cd = second.indexOf('Booting from DVD/CD');
    assert.ok(hd >= 0 && cd > hd, `hard disk tried before the DVD on the next boot:\n${second.slice(-600)}`);
    await t.ok('Stop-VM', 'g1', '-TurnOff');
    await t.fails(/Cannot Debug VM 'g1' because it is Off/, 'Debug-VM', 'g1', '-InjectNonMaskableInterrupt');
  });

  test('generation 2 boots the ISO through OVMF; secure boot On refuses its unsigned boot loader with a clear event, Off boots it', { timeout: 300_000 }, async () => {
    await t.ok('New-VM', '-Name', 'g2', '-Generation', '2', '-MemoryStartupBytes', '256MB', '-BootDevice', 'CD');
    await t.ok('Set-VMDvdDrive', '-VMName', 'g2', '-Path', iso);
    assert.deepEqual((await t.json<Firmware>('Get-VMFirmware', 'g2')).BootOrder.map((b) => b.DeviceRef), ['SCSI:0:0', 'NetworkAdapter:Network Adapter'], 'the DVD first');
    await t.ok('Start-VM', 'g2');
    await waitFor('the secure boot refusal', 180_000, async () => /Boot failure: secure boot refused/.test((await vm('g2')).Status));
    const events = await t.json<{ Code: string; Message: string }[]>('Get-VMEvent', '-VMName', 'g2');
    const failed = [events].flat().find((e) => e.Code === 'VM_BOOT_FAILED');
    assert.match(failed?.Message ?? '', /secure boot refused to start Boot\d{4} ".*" \((Access Denied|Security Violation)\)/);
    assert.match(await logFrom('g2', 'serial.log'), /Access Denied|Security Violation/, 'the firmware\'s own refusal on the console');
    await t.ok('Stop-VM', 'g2', '-TurnOff');

    await t.ok('Set-VMFirmware', 'g2', '-EnableSecureBoot', 'Off');
    await t.ok('Start-VM', 'g2');
    await t.heartbeat('g2');
    assert.equal((await t.sh('g2', 'hostname; test -d /sys/firmware/efi && echo efi')).out.trim(), 'dvd-guest\nefi');
    assert.equal((await vm('g2')).Status, 'Operating normally');
    await t.ok('Stop-VM', 'g2', '-TurnOff');
  });
});
