// Network boot (PXE) over our switch, end to end: an Internal switch gives the host a tap with
// an address; dnsmasq (Debian's dnsmasq-base, run here as a child bound to that tap only)
// serves DHCP and TFTP; a VM whose first boot device is its network adapter boots the test
// guest from it: the NIC's iPXE option ROM (QEMU finds Debian's ipxe-qemu ROMs in
// /usr/lib/ipxe/qemu by itself) asks for an address, dnsmasq tells an iPXE client (DHCP
// option 175) to run boot.ipxe, which fetches vmlinuz and initrd.img by TFTP and boots them
// with the host name DHCP gave it; the guest's agent then answers (heartbeat OK).
// - Generation 1: SeaBIOS + the e1000 legacy adapter's iPXE ROM (New-VM -BootDevice LegacyNetworkAdapter).
// - Generation 2: OVMF (secure boot off: iPXE is not signed for the Microsoft keys) loads the
//   EFI iPXE driver from the virtio adapter's ROM (efi-virtio.rom) and boots the adapter through
//   it: iPXE does its own DHCP (not OVMF's PXE stack, so no ipxe.efi is fetched); the kernel
//   starts through its EFI stub and reads the initrd named by `initrd=` from iPXE's file system.
// Prints Start-VM → heartbeat for both generations. Needs root, /dev/net/tun, dnsmasq and the
// ROMs: skipped without them, except under CI=true, where that is a failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { freeTestNet, tapSkip } from '../src/host/tap-test-support.ts';
import { ensureGuestImage } from '../src/guest/index.ts';

const NET = freeTestNet(50, 50); // tapd.test.ts takes 100–174, host-nic.test.ts 175–249
const HOST_IP = `${NET}.1`;
const ROMS = ['/usr/lib/ipxe/qemu/efi-e1000.rom', '/usr/lib/ipxe/qemu/efi-virtio.rom'];
const DNSMASQ = '/usr/sbin/dnsmasq';

/** What this machine lacks for the test, if anything. */
function missing(): string | false {
  if (tapSkip) return tapSkip;
  if (!existsSync(DNSMASQ)) return `no ${DNSMASQ} (Debian package dnsmasq-base)`;
  const rom = ROMS.find((r) => !existsSync(r));
  if (rom) return `no ${rom} (Debian package ipxe-qemu)`;
  return false;
}
// CI must prove network boot: there a missing prerequisite fails the test instead of skipping it.
const lack = missing();
const skip = process.env.CI === 'true' ? false : lack;

// iPXE runs this after its DHCP: `${hostname}` is what dnsmasq's dhcp-host gave this MAC, so
// each guest learns its name the way a real PXE-installed server would. `initrd=` is for the
// kernel's EFI stub (generation 2): it loads the initrd by that name from iPXE's file system;
// a BIOS boot hands the initrd over directly and the kernel ignores the argument.
const BOOT_SCRIPT = [
  '#!ipxe',
  'echo vmhost-pxe: loading the test guest for ${hostname}',
  'kernel vmlinuz initrd=initrd.img console=ttyS0 quiet panic=-1 vmhost.hostname=${hostname}',
  'initrd initrd.img',
  'boot',
  '',
].join('\n');

interface Adapter { MacAddress: string; IsLegacy: boolean }

describe('network boot (PXE) over an Internal switch', { skip }, () => {
  let d: TestDaemon;
  let t: CliTools;
  let tftpRoot = '';
  let dnsmasq: ChildProcess | undefined;
  let ifname = '';

  before(async () => {
    assert.equal(lack, false, `network boot needs: ${lack || ''}`);
    d = await TestDaemon.start();
    t = cliTools(d);
    tftpRoot = await mkdtemp(join(tmpdir(), 'vmhost-pxe-'));
    // dnsmasq started by root serves only world-readable files (and runs as nobody).
    await chmod(tftpRoot, 0o755);
    const image = await ensureGuestImage();
    await copyFile(image.kernel, join(tftpRoot, 'vmlinuz'));
    await copyFile(image.initrd, join(tftpRoot, 'initrd.img'));
    await writeFile(join(tftpRoot, 'boot.ipxe'), BOOT_SCRIPT);
    for (const f of ['vmlinuz', 'initrd.img', 'boot.ipxe']) await chmod(join(tftpRoot, f), 0o644);
  });

  after(async () => {
    if (dnsmasq && dnsmasq.exitCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      dnsmasq.kill('SIGTERM');
      await exited;
    }
    await d?.stop(); // SIGKILL + the VMs' QEMUs: the persistent tap stays, so delete it here
    if (ifname) spawnSync('ip', ['link', 'del', ifname]);
    if (tftpRoot) await rm(tftpRoot, { recursive: true, force: true });
  });

  /** A cmdlet's single result, whether it prints an object or an array of one (its -Json shape follows the cmdlet). */
  const one = async <T>(...args: string[]): Promise<T> => {
    const out = await t.json<T | T[]>(...args);
    const [first, ...rest] = Array.isArray(out) ? out : [out];
    assert.ok(first !== undefined && rest.length === 0, `${args.join(' ')}: one result`);
    return first;
  };
  const vmDir = async (vm: string): Promise<string> => join(d.dataDir, 'vms', (await one<{ Id: string }>('Get-VM', vm)).Id);
  const dnsmasqLog = () => readFile(join(tftpRoot, 'dnsmasq.log'), 'utf8').catch(() => '');
  const colonMac = (mac: string) => mac.toLowerCase().match(/../g)!.join(':');

  /** The running VM's QEMU `-device` argument for its NIC (the daemon's choice of model and boot index). */
  async function nicDevice(vm: string, model: string): Promise<string> {
    const { pid } = JSON.parse(await readFile(join(await vmDir(vm), 'runtime.json'), 'utf8')) as { pid: number };
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const dev = argv.find((a, i) => argv[i - 1] === '-device' && a.startsWith(`${model},`));
    assert.ok(dev, `${vm}: a ${model} device on QEMU's command line`);
    return dev;
  }

  /** Start-VM, then wait for the agent's heartbeat; returns the milliseconds between the two. */
  async function bootToHeartbeat(vm: string): Promise<number> {
    const t0 = Date.now();
    await t.ok('Start-VM', vm);
    // Under TCG on a shared machine the firmware, iPXE's TFTP of a 14 MB kernel and the boot take a while.
    try {
      await waitFor(`${vm} heartbeat after network boot`, 240_000, async () => {
        const v = (await d.api('GET', `/api/v1/vms/${vm}`)).json as { Heartbeat: string; State: string };
        assert.notEqual(v.State, 'Off', `${vm} turned off while booting`);
        return v.Heartbeat === 'OK';
      });
    } catch (e) {
      // Where the chain stopped shows only in these logs, and after() deletes them.
      const dir = await vmDir(vm);
      for (const [name, text] of [
        ['firmware.log', await readFile(join(dir, 'firmware.log'), 'latin1').catch(() => '')],
        ['serial.log', await readFile(join(dir, 'serial.log'), 'latin1').catch(() => '')],
        ['qemu.log', await readFile(join(dir, 'qemu.log'), 'latin1').catch(() => '')],
        ['dnsmasq.log', await dnsmasqLog()],
      ]) console.log(`# --- ${vm} ${name} (tail) ---\n${text!.slice(-3000).replace(/^/gm, '# ')}`);
      throw e;
    }
    return Date.now() - t0;
  }

  test('generation 1 (SeaBIOS, legacy adapter) and generation 2 (OVMF, synthetic adapter) boot the test guest from dnsmasq', { timeout: 900_000 }, async () => {
    await t.ok('New-VMSwitch', '-Name', 'PXE', '-SwitchType', 'Internal');
    ifname = (await one<{ InterfaceName: string }>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'PXE')).InterfaceName;
    assert.equal(spawnSync('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', ifname]).status, 0, `address on ${ifname}`);

    await t.ok('New-VM', 'pxe1', '-Generation', '1', '-MemoryStartupBytes', '256MB', '-BootDevice', 'LegacyNetworkAdapter', '-SwitchName', 'PXE');
    const bios = await one<{ StartupOrder: string[] }>('Get-VMBios', 'pxe1');
    assert.equal(bios.StartupOrder[0], 'LegacyNetworkAdapter', 'the legacy adapter is first in the BIOS startup order');
    const a1 = await one<Adapter>('Get-VMNetworkAdapter', '-VMName', 'pxe1');
    assert.equal(a1.IsLegacy, true, 'New-VM -Generation 1 -BootDevice LegacyNetworkAdapter adds a legacy adapter');

    await t.ok('New-VM', 'pxe2', '-Generation', '2', '-MemoryStartupBytes', '512MB', '-BootDevice', 'NetworkAdapter', '-SwitchName', 'PXE');
    await t.ok('Set-VMFirmware', 'pxe2', '-EnableSecureBoot', 'Off');
    const fw = await one<{ BootOrder: { BootType: string }[]; SecureBoot: string }>('Get-VMFirmware', 'pxe2');
    assert.equal(fw.BootOrder[0]?.BootType, 'Network', 'the network adapter is the first boot device');
    const a2 = await one<Adapter>('Get-VMNetworkAdapter', '-VMName', 'pxe2');

    // The PXE service: DHCP + TFTP on the host vNIC only, no DNS (port 0), no config file.
    dnsmasq = spawn(DNSMASQ, [
      '--keep-in-foreground', '--conf-file=/dev/null', '--pid-file=',
      `--interface=${ifname}`, '--bind-interfaces', '--port=0',
      `--dhcp-range=${NET}.100,${NET}.150,255.255.255.0,10m`,
      `--dhcp-leasefile=${join(tftpRoot, 'leases')}`,
      `--dhcp-host=${colonMac(a1.MacAddress)},pxe1`, `--dhcp-host=${colonMac(a2.MacAddress)},pxe2`,
      // iPXE says who it is with option 175 (and user class "iPXE"): only it gets the script;
      // the ROMs here are iPXE already, so no first-stage loader is needed.
      '--dhcp-match=set:ipxe,175', '--dhcp-userclass=set:ipxe,iPXE', '--dhcp-boot=tag:ipxe,boot.ipxe',
      '--enable-tftp', `--tftp-root=${tftpRoot}`,
      '--log-dhcp', `--log-facility=${join(tftpRoot, 'dnsmasq.log')}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let dnsmasqErr = '';
    dnsmasq.stderr!.on('data', (b: Buffer) => { dnsmasqErr += b.toString(); });
    await waitFor('dnsmasq to start', 15_000, async () => {
      assert.equal(dnsmasq!.exitCode, null, `dnsmasq exited: ${dnsmasqErr}`);
      return /started, version .* DNS disabled/.test(await dnsmasqLog());
    });

    // Generation 1: SeaBIOS runs the e1000's iPXE ROM (firmware.log is SeaBIOS's debug console).
    const ms1 = await bootToHeartbeat('pxe1');
    assert.match(await nicDevice('pxe1', 'e1000'), /,bootindex=1(,|$)/, 'the legacy adapter is the first boot device');
    const dir1 = await vmDir('pxe1');
    const fwlog = await readFile(join(dir1, 'firmware.log'), 'latin1');
    assert.match(fwlog, /PCI: init bdf=00:[0-9a-f]{2}\.0 id=8086:100e/, 'SeaBIOS found the e1000 (the legacy adapter)');
    assert.match(fwlog, /Booting from ROM\.\.\.\nBooting from [0-9a-f]{4}:[0-9a-f]{4}/, 'SeaBIOS booted the option ROM (iPXE) first');
    const serial1 = await readFile(join(dir1, 'serial.log'), 'latin1');
    assert.match(serial1, /vmhost-guest: up hostname=pxe1 /, 'the guest got its name from DHCP through iPXE');
    let log = await dnsmasqLog();
    assert.match(log, new RegExp(`DHCPACK\\(${ifname}\\) ${NET.replace(/\./g, '\\.')}\\.\\d+ ${colonMac(a1.MacAddress)} pxe1`), 'dnsmasq leased pxe1 its address');
    assert.match(log, /vendor class: PXEClient:Arch:00000:/, 'a BIOS PXE client (architecture 0) asked');
    assert.match(log, /sent .*\/boot\.ipxe to /, 'iPXE fetched the script');
    assert.match(log, /sent .*\/vmlinuz to /, 'iPXE fetched the kernel');
    assert.match(log, /sent .*\/initrd\.img to /, 'iPXE fetched the initrd');
    console.log(`# generation 1 (SeaBIOS + iPXE e1000 ROM): Start-VM → heartbeat ${ms1} ms`);

    // Generation 2: OVMF loads the virtio adapter's EFI iPXE, which boots the kernel's EFI stub.
    const before2 = log.length;
    const ms2 = await bootToHeartbeat('pxe2');
    assert.match(await nicDevice('pxe2', 'virtio-net-pci'), /,bootindex=1(,|$)/, 'the network adapter is the first boot device');
    const dir2 = await vmDir('pxe2');
    const serial2 = await readFile(join(dir2, 'serial.log'), 'latin1');
    // OVMF's console is the serial port, so iPXE's EFI build prints there (the BIOS one only on VGA).
    assert.match(serial2, /iPXE \S+ .*Open Source Network Boot Firmware/, 'OVMF started the EFI iPXE from the option ROM');
    assert.match(serial2, /net0: [0-9a-f:]{17} using virtio-net/, 'iPXE drives the synthetic (virtio) adapter');
    assert.match(serial2, /vmhost-pxe: loading the test guest for pxe2/, 'iPXE ran boot.ipxe with the DHCP host name');
    assert.match(serial2, /vmhost-guest: up hostname=pxe2 /, 'the guest got its name from DHCP through iPXE');
    log = (await dnsmasqLog()).slice(before2);
    assert.match(log, /vendor class: PXEClient:Arch:00007:/, 'an x64 UEFI PXE client (architecture 7) asked');
    assert.match(log, new RegExp(`DHCPACK\\(${ifname}\\) ${NET.replace(/\./g, '\\.')}\\.\\d+ ${colonMac(a2.MacAddress)} pxe2`), 'dnsmasq leased pxe2 its address');
    assert.match(log, /sent .*\/vmlinuz to /, 'iPXE fetched the kernel');
    assert.match(log, /sent .*\/initrd\.img to /, 'iPXE fetched the initrd');
    console.log(`# generation 2 (OVMF + iPXE EFI virtio ROM): Start-VM → heartbeat ${ms2} ms`);
  });
});
