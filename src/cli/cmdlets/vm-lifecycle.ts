// VM lifecycle cmdlets: New-VM, Get-VM, Remove-VM, Start/Stop/Restart/Suspend/Resume/Save-VM.
import { resolve } from 'node:path';
import type { VmView } from '../../host/index.ts';
import { defineCmdlet, type CmdletContext } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import type { ApiClient } from '../client.ts';
import { clientFor, oneOrMany, selectVms, vmNameMandatory, vmNameParam } from './vm-select.ts';

export const newVm = defineCmdlet({
  name: 'New-VM',
  synopsis: 'Create a virtual machine with one network adapter, optionally a new or existing disk',
  params: {
    Name: { type: 'string', mandatory: true, aliases: ['VMName'], help: 'Name of the new VM' },
    MemoryStartupBytes: { type: 'size', help: 'Startup memory (default 512MB)' },
    Generation: { type: 'int', values: [1, 2], help: '1 (BIOS, IDE) or 2 (UEFI, SCSI only)' },
    NewVHDPath: { type: 'string', sets: ['NewVHD'], mandatory: ['NewVHD'], help: 'Create a dynamic VHDX here and attach it (IDE 0:0 on generation 1, SCSI 0:0 on 2)' },
    NewVHDSizeBytes: { type: 'size', sets: ['NewVHD'], mandatory: ['NewVHD'], help: 'Size of the new disk' },
    VHDPath: { type: 'string', sets: ['ExistingVHD'], mandatory: ['ExistingVHD'], help: 'Attach this existing disk' },
    NoVHD: { type: 'switch', sets: ['NoVHD'], help: 'No disk (the default when no disk parameter is given)' },
    SwitchName: { type: 'string', help: 'Connect the network adapter to this switch' },
    BootDevice: { type: 'enum', values: ['CD', 'Floppy', 'LegacyNetworkAdapter', 'IDE', 'NetworkAdapter', 'VHD'], help: 'Boot first from this (generation 2: CD, VHD, NetworkAdapter)' },
    Path: { type: 'string', help: 'Base folder for a relative -NewVHDPath (the VM\'s own files stay in the host\'s data dir)' },
  },
  positional: ['Name', 'MemoryStartupBytes'],
  defaultSet: 'NoVHD',
  view: vmView,
  async run(args, ctx) {
    // Paths are the host's: a relative one is taken from -Path, else the current directory.
    const base = args.Path !== undefined ? resolve(args.Path) : process.cwd();
    return clientFor(ctx).call<VmView>('POST', '/vms', {
      Name: args.Name, MemoryStartupBytes: args.MemoryStartupBytes, Generation: args.Generation,
      NewVHDPath: args.NewVHDPath === undefined ? undefined : resolve(base, args.NewVHDPath), NewVHDSizeBytes: args.NewVHDSizeBytes,
      VHDPath: args.VHDPath === undefined ? undefined : resolve(args.VHDPath), SwitchName: args.SwitchName, BootDevice: args.BootDevice,
    });
  },
});

export const getVm = defineCmdlet({
  name: 'Get-VM',
  synopsis: 'List virtual machines',
  params: {
    Name: vmNameParam,
    Id: { type: 'guid', help: 'VM id' },
  },
  positional: ['Name'],
  view: vmView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (args.Id) return api.call<VmView>('GET', `/vms/${args.Id}`);
    return oneOrMany(await selectVms(api, args.Name), args.Name);
  },
});

export const removeVm = defineCmdlet({
  name: 'Remove-VM',
  synopsis: 'Delete a VM (its disk files are kept); -Force turns a running VM off first',
  params: { Name: vmNameMandatory, Force: { type: 'switch' } },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.Name)) {
      if (!ctx.shouldProcess(vm.Name)) continue;
      await api.call('DELETE', `/vms/${vm.Id}?force=${args.Force}`);
      ctx.verbose(`removed ${vm.Name}`);
    }
    return undefined;
  },
});

/** Runs one lifecycle verb on every selected VM (-WhatIf: on none); -AsJob returns the jobs instead of waiting. */
async function lifecycle(ctx: CmdletContext, args: { Name: string[]; AsJob: boolean; PassThru: boolean }, verb: string, body?: object): Promise<unknown> {
  const api: ApiClient = clientFor(ctx);
  const vms = (await selectVms(api, args.Name)).filter((vm) => ctx.shouldProcess(vm.Name));
  const results = await Promise.all(vms.map((vm) => runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/${verb}`, body)));
  if (args.AsJob) return results;
  return args.PassThru ? oneOrMany(results, args.Name) : undefined;
}

const actionParams = { Name: vmNameMandatory, AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' } } as const;

export const startVm = defineCmdlet({
  name: 'Start-VM', synopsis: 'Power on a VM (or restore its saved state)', params: actionParams, positional: ['Name'], view: vmView, supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'start'),
});

export const stopVm = defineCmdlet({
  name: 'Stop-VM',
  synopsis: 'Shut the guest down (through its agent, else ACPI); -TurnOff powers off; -Save saves state',
  params: { ...actionParams, TurnOff: { type: 'switch' }, Force: { type: 'switch', help: 'Turn off if the guest does not shut down in time' }, Save: { type: 'switch' } },
  positional: ['Name'],
  view: vmView,
  supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'stop', { TurnOff: args.TurnOff, Force: args.Force, Save: args.Save }),
});

export const restartVm = defineCmdlet({
  name: 'Restart-VM', synopsis: 'Reset a running VM', params: { ...actionParams, Force: { type: 'switch' } }, positional: ['Name'], view: vmView, supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'restart'),
});

export const suspendVm = defineCmdlet({
  name: 'Suspend-VM', synopsis: 'Pause a running VM', params: actionParams, positional: ['Name'], view: vmView, supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'suspend'),
});

export const resumeVm = defineCmdlet({
  name: 'Resume-VM', synopsis: 'Continue a paused VM', params: actionParams, positional: ['Name'], view: vmView, supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'resume'),
});

export const saveVm = defineCmdlet({
  name: 'Save-VM', synopsis: 'Save the VM\'s memory to a file and stop it; Start-VM restores it', params: actionParams, positional: ['Name'], view: vmView, supportsShouldProcess: true,
  run: (args, ctx) => lifecycle(ctx, args, 'save'),
});

export const removeVmSavedState = defineCmdlet({
  name: 'Remove-VMSavedState', synopsis: 'Throw away a saved VM\'s memory image, or a checkpoint\'s (-VMSnapshot)',
  params: { VMName: { ...vmNameMandatory, aliases: ['Name'] }, VMSnapshot: { type: 'string', help: 'The checkpoint whose memory goes (applying it then leaves the VM off)' } },
  positional: ['VMName'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.VMName)) {
      if (!ctx.shouldProcess(args.VMSnapshot === undefined ? vm.Name : `${vm.Name}: ${args.VMSnapshot}`)) continue;
      await api.call('DELETE', args.VMSnapshot === undefined ? `/vms/${vm.Id}/saved-state` : `/vms/${vm.Id}/snapshots/${encodeURIComponent(args.VMSnapshot)}/saved-state`);
    }
    return undefined;
  },
});
