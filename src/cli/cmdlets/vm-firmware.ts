// Firmware cmdlets: Get-/Set-VMFirmware (generation 2: secure boot, boot order),
// Get-/Set-VMBios (generation 1: startup order, NumLock), Debug-VM.
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import type { Row } from '../table.ts';
import { clientFor, oneOrMany, perVm, selectVms, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;

const firmwareView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'SecureBoot', value: 'SecureBoot' },
    { label: 'BootOrder', value: (o: Row) => (o.BootOrder as { DeviceRef: string }[]).map((b) => b.DeviceRef).join(', ') },
  ],
};

export const getVmFirmware = defineCmdlet({
  name: 'Get-VMFirmware', synopsis: 'Show a generation 2 VM\'s UEFI settings: secure boot and boot order', params: { VMName: vmName }, positional: ['VMName'],
  view: firmwareView,
  async run(args, ctx) {
    return oneOrMany(await perVm(ctx, args.VMName, (api, vm) => api.call('GET', `/vms/${vm.Id}/firmware`)), args.VMName);
  },
});

export const setVmFirmware = defineCmdlet({
  name: 'Set-VMFirmware',
  synopsis: 'Secure boot (VM off) and boot order (from the next boot) of a generation 2 VM',
  params: {
    VMName: vmName,
    EnableSecureBoot: { type: 'enum', values: ['On', 'Off'] },
    BootOrder: { type: 'string', array: true, help: 'Devices in boot order: SCSI:<controller>:<location>, NetworkAdapter[:<name>] or a device Id (Get-VMFirmware shows DeviceRef)' },
    FirstBootDevice: { type: 'string', help: 'One device to boot first; the others keep their order' },
  },
  positional: ['VMName'],
  view: firmwareView,
  async run(args, ctx) {
    const body = Object.fromEntries(Object.entries({
      EnableSecureBoot: args.EnableSecureBoot === undefined ? undefined : args.EnableSecureBoot === 'On', BootOrder: args.BootOrder, FirstBootDevice: args.FirstBootDevice,
    }).filter(([, v]) => v !== undefined));
    if (Object.keys(body).length === 0) throw new VmhostError('CLI_INVALID_PARAMETER', 'Set-VMFirmware: give -EnableSecureBoot, -BootOrder or -FirstBootDevice');
    const out = await perVm(ctx, args.VMName, (api, vm) => api.call('PATCH', `/vms/${vm.Id}/firmware`, body));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

const biosView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'StartupOrder', value: (o: Row) => `{${(o.StartupOrder as string[]).join(', ')}}` },
    { label: 'NumLockEnabled', value: 'NumLockEnabled' },
  ],
};

export const getVmBios = defineCmdlet({
  name: 'Get-VMBios', synopsis: 'Show a generation 1 VM\'s BIOS settings: startup order and NumLock', params: { VMName: vmName }, positional: ['VMName'],
  view: biosView,
  async run(args, ctx) {
    return oneOrMany(await perVm(ctx, args.VMName, (api, vm) => api.call('GET', `/vms/${vm.Id}/bios`)), args.VMName);
  },
});

export const setVmBios = defineCmdlet({
  name: 'Set-VMBios',
  synopsis: 'Startup order and NumLock of a generation 1 VM (from the next boot)',
  params: {
    VMName: vmName,
    StartupOrder: { type: 'enum', array: true, values: ['CD', 'IDE', 'LegacyNetworkAdapter', 'Floppy'], help: 'All four, in boot order' },
    EnableNumLock: { type: 'switch' },
    DisableNumLock: { type: 'switch' },
  },
  positional: ['VMName'],
  view: biosView,
  async run(args, ctx) {
    if (args.EnableNumLock && args.DisableNumLock) throw new VmhostError('CLI_INVALID_PARAMETER', 'Set-VMBios: -EnableNumLock and -DisableNumLock exclude each other');
    const body: Record<string, unknown> = {};
    if (args.StartupOrder !== undefined) body.StartupOrder = args.StartupOrder;
    if (args.EnableNumLock) body.EnableNumLock = true;
    if (args.DisableNumLock) body.EnableNumLock = false;
    if (Object.keys(body).length === 0) throw new VmhostError('CLI_INVALID_PARAMETER', 'Set-VMBios: give -StartupOrder, -EnableNumLock or -DisableNumLock');
    const out = await perVm(ctx, args.VMName, (api, vm) => api.call('PATCH', `/vms/${vm.Id}/bios`, body));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const debugVm = defineCmdlet({
  name: 'Debug-VM',
  synopsis: 'Debug a running VM: -InjectNonMaskableInterrupt sends an NMI (the guest\'s kernel logs it or panics, as configured)',
  params: { Name: vmNameMandatory, InjectNonMaskableInterrupt: { type: 'switch', mandatory: true }, Force: { type: 'switch', help: 'Accepted for compatibility; no confirmation is asked' } },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.Name)) {
      if (!ctx.shouldProcess(vm.Name)) continue;
      await api.call('POST', `/vms/${vm.Id}/debug`, { InjectNonMaskableInterrupt: true });
      ctx.verbose(`NMI injected into ${vm.Name}`);
    }
    return undefined;
  },
});
