// VM lifecycle cmdlets: New-VM, Get-VM, Remove-VM, Start/Stop/Restart/Suspend/Resume/Save-VM.
import type { Job, VmView } from '../../host/index.ts';
import { defineCmdlet, type CmdletContext } from '../cmdlet.ts';
import { vmView } from '../views.ts';
import type { ApiClient } from '../client.ts';
import { clientFor, oneOrMany, selectVms, vmNameMandatory, vmNameParam } from './vm-select.ts';

export const newVm = defineCmdlet({
  name: 'New-VM',
  synopsis: 'Create a virtual machine',
  params: {
    Name: { type: 'string', mandatory: true, aliases: ['VMName'], help: 'Name of the new VM' },
    MemoryStartupBytes: { type: 'size', help: 'Startup memory (default 512MB)' },
    Generation: { type: 'int', values: [1, 2], help: '1 (BIOS, IDE) or 2 (UEFI, SCSI only)' },
    Path: { type: 'string', help: 'Not supported: VMs live in the host data dir' },
    NoVHD: { type: 'switch', help: 'Create the VM without a virtual disk (the only choice until disks exist)' },
  },
  positional: ['Name', 'MemoryStartupBytes'],
  view: vmView,
  async run(args, ctx) {
    if (args.Path !== undefined) ctx.warn('-Path is ignored: VM files live in the host data dir');
    return clientFor(ctx).call<VmView>('POST', '/vms', { Name: args.Name, MemoryStartupBytes: args.MemoryStartupBytes, Generation: args.Generation });
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
  const results = await Promise.all(vms.map((vm) => api.call<{ Job: Job; VM: VmView } | Job>('POST', `/vms/${vm.Id}/${verb}?wait=${!args.AsJob}`, body)));
  if (args.AsJob) return results;
  return args.PassThru ? oneOrMany(results.map((r) => (r as { VM: VmView }).VM), args.Name) : undefined;
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
  name: 'Remove-VMSavedState', synopsis: 'Throw away a saved VM\'s memory image', params: { VMName: { ...vmNameMandatory, aliases: ['Name'] } }, positional: ['VMName'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.VMName)) if (ctx.shouldProcess(vm.Name)) await api.call('DELETE', `/vms/${vm.Id}/saved-state`);
    return undefined;
  },
});
