// VM storage cmdlets: hard disk and DVD drives, Mount-VHD/Dismount-VHD (files served over NBD
// for host tools). They speak the daemon's storage routes (Measure-VM, which also reads the
// disks' counters, is in vm-metering.ts).
import { resolve } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { setPool } from './pool-member.ts';
import { clientFor, perVm, selectVms, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;
const controllerType = { type: 'enum', values: ['IDE', 'SCSI'] } as const;
const controllerNumber = { type: 'int', min: 0, max: 3 } as const;
const controllerLocation = { type: 'int', min: 0, max: 63 } as const;
const iops = { type: 'int', min: 0, max: 1_000_000_000, help: 'Normalized IOPS (8 KB units); 0 = none' } as const;
const vhdPool = { type: 'string', help: 'The VHD resource pool the drive is billed in (Primordial: none)' } as const;

const driveView = {
  columns: ['VMName', 'ControllerType', 'ControllerNumber', 'ControllerLocation', 'DiskNumber', 'Path'].map((c) => ({ label: c, value: c })),
};

function slotQuery(a: { ControllerType?: string; ControllerNumber?: number; ControllerLocation?: number }): string {
  return new URLSearchParams({ ControllerType: a.ControllerType ?? '', ControllerNumber: String(a.ControllerNumber ?? 0), ControllerLocation: String(a.ControllerLocation ?? 0) }).toString();
}

/** The drive in a slot (Set-VMHardDiskDrive with nothing but -ResourcePoolName). */
async function driveAt(api: ReturnType<typeof clientFor>, vmId: string, slot: { ControllerType: string; ControllerNumber: number; ControllerLocation: number }): Promise<{ Id: string }> {
  const all = await api.call<{ Id: string; ControllerType: string; ControllerNumber: number; ControllerLocation: number }[]>('GET', `/vms/${vmId}/hard-drives`);
  const d = all.find((x) => x.ControllerType === slot.ControllerType && x.ControllerNumber === slot.ControllerNumber && x.ControllerLocation === slot.ControllerLocation);
  if (!d) throw new VmhostError('NOT_FOUND', `No hard drive at ${slot.ControllerType} ${slot.ControllerNumber}:${slot.ControllerLocation}`, { param: 'ControllerLocation' });
  return d;
}

export const addVmHardDiskDrive = defineCmdlet({
  name: 'Add-VMHardDiskDrive',
  synopsis: 'Attach a VHDX/VHD file to a VM (SCSI drives hot-plug into a running VM)',
  params: {
    VMName: vmName, Path: { type: 'string', mandatory: true }, ControllerType: controllerType,
    ControllerNumber: controllerNumber, ControllerLocation: controllerLocation, MaximumIOPS: iops, MinimumIOPS: iops, ResourcePoolName: vhdPool,
  },
  positional: ['VMName', 'Path'],
  view: driveView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = [];
    for (const vm of await selectVms(api, args.VMName)) {
      const drive = await api.call<{ Id: string }>('POST', `/vms/${vm.Id}/hard-drives`, {
        Path: resolve(args.Path), ControllerType: args.ControllerType, ControllerNumber: args.ControllerNumber,
        ControllerLocation: args.ControllerLocation, MaximumIOPS: args.MaximumIOPS, MinimumIOPS: args.MinimumIOPS,
      });
      if (args.ResourcePoolName !== undefined) await setPool(api, vm.Id, 'VHD', args.ResourcePoolName, drive.Id);
      out.push(drive);
    }
    return args.PassThru ? out : undefined;
  },
});

export const getVmHardDiskDrive = defineCmdlet({
  name: 'Get-VMHardDiskDrive',
  synopsis: 'List the hard drives of a VM (with -Json: the NbdUri host tools can read while it runs)',
  params: { VMName: vmName, ControllerType: controllerType, ControllerNumber: controllerNumber, ControllerLocation: controllerLocation },
  positional: ['VMName'],
  view: driveView,
  async run(args, ctx) {
    const out = (await perVm(ctx, args.VMName, (api, vm) => api.call<Record<string, unknown>[]>('GET', `/vms/${vm.Id}/hard-drives`))).flat();
    return out.filter((d) => (args.ControllerType === undefined || d.ControllerType === args.ControllerType)
      && (args.ControllerNumber === undefined || d.ControllerNumber === args.ControllerNumber)
      && (args.ControllerLocation === undefined || d.ControllerLocation === args.ControllerLocation));
  },
});

export const setVmHardDiskDrive = defineCmdlet({
  name: 'Set-VMHardDiskDrive',
  synopsis: 'Change a drive\'s file (VM off) or its storage QoS (at once, also while running)',
  params: {
    VMName: vmName, ControllerType: { ...controllerType, mandatory: true }, ControllerNumber: { ...controllerNumber, mandatory: true },
    ControllerLocation: { ...controllerLocation, mandatory: true }, Path: { type: 'string' }, MaximumIOPS: iops, MinimumIOPS: iops, ResourcePoolName: vhdPool,
  },
  positional: ['VMName'],
  view: driveView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = [];
    const change = args.Path !== undefined || args.MaximumIOPS !== undefined || args.MinimumIOPS !== undefined;
    for (const vm of await selectVms(api, args.VMName)) {
      const drive = change
        ? await api.call<{ Id: string }>('PATCH', `/vms/${vm.Id}/hard-drives?${slotQuery(args)}`, {
          Path: args.Path === undefined ? undefined : resolve(args.Path), MaximumIOPS: args.MaximumIOPS, MinimumIOPS: args.MinimumIOPS,
        })
        : await driveAt(api, vm.Id, args);
      if (args.ResourcePoolName !== undefined) await setPool(api, vm.Id, 'VHD', args.ResourcePoolName, drive.Id);
      out.push(drive);
    }
    return args.PassThru ? out : undefined;
  },
});

export const removeVmHardDiskDrive = defineCmdlet({
  name: 'Remove-VMHardDiskDrive',
  synopsis: 'Detach a hard drive (the file stays); SCSI drives unplug from a running VM',
  params: {
    VMName: vmName, ControllerType: { ...controllerType, mandatory: true }, ControllerNumber: { ...controllerNumber, mandatory: true },
    ControllerLocation: { ...controllerLocation, mandatory: true },
  },
  positional: ['VMName'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.VMName)) {
      if (ctx.shouldProcess(`${vm.Name}: ${args.ControllerType} ${args.ControllerNumber}:${args.ControllerLocation}`)) await api.call('DELETE', `/vms/${vm.Id}/hard-drives?${slotQuery(args)}`);
    }
    return undefined;
  },
});

const dvdView = {
  columns: ['VMName', 'ControllerType', 'ControllerNumber', 'ControllerLocation', 'DvdMediaType', 'Path'].map((c) => ({ label: c, value: c })),
};

export const addVmDvdDrive = defineCmdlet({
  name: 'Add-VMDvdDrive',
  synopsis: 'Add a DVD drive, optionally with an ISO image (read-only); VM must be off',
  params: { VMName: vmName, Path: { type: 'string' }, ControllerNumber: controllerNumber, ControllerLocation: controllerLocation },
  positional: ['VMName', 'Path'],
  view: dvdView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = [];
    for (const vm of await selectVms(api, args.VMName)) {
      out.push(await api.call('POST', `/vms/${vm.Id}/dvd-drives`, {
        Path: args.Path === undefined ? undefined : resolve(args.Path), ControllerNumber: args.ControllerNumber, ControllerLocation: args.ControllerLocation,
      }));
    }
    return args.PassThru ? out : undefined;
  },
});

export const setVmDvdDrive = defineCmdlet({
  name: 'Set-VMDvdDrive',
  synopsis: 'Insert, change or eject (-Path \'\' or $null) a DVD drive\'s ISO; also while the VM runs',
  params: { VMName: vmName, Path: { type: 'string', mandatory: true }, ControllerNumber: controllerNumber, ControllerLocation: controllerLocation },
  positional: ['VMName', 'Path'],
  view: dvdView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const eject = args.Path === '' || args.Path.toLowerCase() === '$null';
    const out = [];
    for (const vm of await selectVms(api, args.VMName)) {
      const drives = await api.call<{ ControllerNumber: number; ControllerLocation: number }[]>('GET', `/vms/${vm.Id}/dvd-drives`);
      const picked = drives.filter((d) => (args.ControllerNumber === undefined || d.ControllerNumber === args.ControllerNumber)
        && (args.ControllerLocation === undefined || d.ControllerLocation === args.ControllerLocation));
      if (picked.length === 0) throw new VmhostError('NOT_FOUND', `VM '${vm.Name}' has no DVD drive${args.ControllerNumber !== undefined || args.ControllerLocation !== undefined ? ' at that controller and location' : ''} (Add-VMDvdDrive)`);
      if (picked.length > 1) throw new VmhostError('CLI_INVALID_PARAMETER', `VM '${vm.Name}' has ${picked.length} DVD drives: give -ControllerNumber and -ControllerLocation`);
      const d = picked[0]!;
      out.push(await api.call('PATCH', `/vms/${vm.Id}/dvd-drives?ControllerNumber=${d.ControllerNumber}&ControllerLocation=${d.ControllerLocation}`, { Path: eject ? null : resolve(args.Path) }));
    }
    return args.PassThru ? out : undefined;
  },
});

export const getVmDvdDrive = defineCmdlet({
  name: 'Get-VMDvdDrive', synopsis: 'List a VM\'s DVD drives', params: { VMName: vmName }, positional: ['VMName'], view: dvdView,
  async run(args, ctx) {
    return (await perVm(ctx, args.VMName, (api, vm) => api.call<unknown[]>('GET', `/vms/${vm.Id}/dvd-drives`))).flat();
  },
});

export const removeVmDvdDrive = defineCmdlet({
  name: 'Remove-VMDvdDrive',
  synopsis: 'Remove a DVD drive; VM must be off',
  params: { VMName: vmName, ControllerNumber: { ...controllerNumber, mandatory: true }, ControllerLocation: { ...controllerLocation, mandatory: true } },
  positional: ['VMName'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const q = new URLSearchParams({ ControllerNumber: String(args.ControllerNumber), ControllerLocation: String(args.ControllerLocation) });
    for (const vm of await selectVms(api, args.VMName)) {
      if (ctx.shouldProcess(`${vm.Name}: DVD ${args.ControllerNumber}:${args.ControllerLocation}`)) await api.call('DELETE', `/vms/${vm.Id}/dvd-drives?${q}`);
    }
    return undefined;
  },
});

export const mountVhd = defineCmdlet({
  name: 'Mount-VHD',
  synopsis: 'Serve a disk file no VM holds over NBD for host tools (qemu-img, nbdinfo, fio); prints its nbd+unix URI',
  params: { Path: { type: 'string', mandatory: true }, ReadOnly: { type: 'switch' } },
  positional: ['Path'],
  view: { columns: ['Path', 'ReadOnly', 'NbdUri'].map((c) => ({ label: c, value: c })), layout: 'list' },
  async run(args, ctx) {
    return clientFor(ctx).call('POST', '/mounts', { Path: resolve(args.Path), ReadOnly: args.ReadOnly });
  },
});

export const dismountVhd = defineCmdlet({
  name: 'Dismount-VHD', synopsis: 'Stop serving a mounted disk file', params: { Path: { type: 'string', mandatory: true } }, positional: ['Path'],
  async run(args, ctx) {
    await clientFor(ctx).call('DELETE', `/mounts?${new URLSearchParams({ Path: resolve(args.Path) })}`);
    return undefined;
  },
});
