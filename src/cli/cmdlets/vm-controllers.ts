// Controller and legacy-port cmdlets: Get-/Add-/Remove-VMScsiController, Get-VMIdeController,
// Get-/Set-VMFloppyDiskDrive, New-VFD (a blank 1.44 MB virtual floppy, made on this machine
// like New-VHD), Get-/Set-VMComPort.
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import type { Row } from '../table.ts';
import { clientFor, oneOrMany, perVm, selectVms, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;
const controllerView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'Name', value: 'Name' }, { label: 'ControllerNumber', value: 'ControllerNumber' },
    { label: 'Drives', value: (r: Row) => `{${(r.Drives as string[]).join(', ')}}` },
  ],
};

/** One GET per selected VM, the answers flattened. */
async function listEach(ctx: Parameters<typeof clientFor>[0], names: string[], route: string): Promise<unknown[]> {
  return (await perVm(ctx, names, (api, vm) => api.call<unknown>('GET', `/vms/${vm.Id}/${route}`))).flat();
}

export const getVmScsiController = defineCmdlet({
  name: 'Get-VMScsiController', synopsis: 'List a VM\'s SCSI controllers and the drives on each', params: { VMName: vmName }, positional: ['VMName'],
  view: controllerView,
  async run(args, ctx) { return listEach(ctx, args.VMName, 'scsi-controllers'); },
});

export const addVmScsiController = defineCmdlet({
  name: 'Add-VMScsiController', synopsis: 'Add a SCSI controller (up to 4; VM off)', params: { VMName: vmName }, positional: ['VMName'],
  view: controllerView,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, (api, vm) => api.call('POST', `/vms/${vm.Id}/scsi-controllers`));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const removeVmScsiController = defineCmdlet({
  name: 'Remove-VMScsiController', synopsis: 'Remove a SCSI controller with no drives (VM off); higher ones are renumbered',
  params: { VMName: vmName, ControllerNumber: { type: 'int', min: 0, max: 3, mandatory: true } }, positional: ['VMName'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.VMName)) {
      if (!ctx.shouldProcess(`${vm.Name}: SCSI controller ${args.ControllerNumber}`)) continue;
      await api.call('DELETE', `/vms/${vm.Id}/scsi-controllers?ControllerNumber=${args.ControllerNumber}`);
    }
    return undefined;
  },
});

export const getVmIdeController = defineCmdlet({
  name: 'Get-VMIdeController', synopsis: 'List a generation 1 VM\'s two IDE controllers and their drives', params: { VMName: vmName }, positional: ['VMName'],
  view: controllerView,
  async run(args, ctx) { return listEach(ctx, args.VMName, 'ide-controllers'); },
});

const floppyView = { columns: [{ label: 'VMName', value: 'VMName' }, { label: 'Name', value: 'Name' }, { label: 'Path', value: 'Path' }] };

export const getVmFloppyDiskDrive = defineCmdlet({
  name: 'Get-VMFloppyDiskDrive', synopsis: 'Show a generation 1 VM\'s floppy drive', params: { VMName: vmName }, positional: ['VMName'],
  view: floppyView,
  async run(args, ctx) { return oneOrMany(await listEach(ctx, args.VMName, 'floppy'), args.VMName); },
});

export const setVmFloppyDiskDrive = defineCmdlet({
  name: 'Set-VMFloppyDiskDrive', synopsis: 'Insert a virtual floppy disk (.vfd) or remove it (-Path \'\' or $null); VM off',
  params: { VMName: vmName, Path: { type: 'string', mandatory: true } }, positional: ['VMName', 'Path'],
  view: floppyView,
  async run(args, ctx) {
    const path = args.Path === '' || args.Path.toLowerCase() === '$null' ? null : resolve(args.Path);
    const out = await perVm(ctx, args.VMName, (api, vm) => api.call('PUT', `/vms/${vm.Id}/floppy`, { Path: path }));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const newVfd = defineCmdlet({
  name: 'New-VFD', synopsis: 'Create a blank 1.44 MB virtual floppy disk file', params: { Path: { type: 'string', mandatory: true } }, positional: ['Path'],
  async run(args) {
    const path = resolve(args.Path);
    const fh = await open(path, 'wx', 0o600).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      throw new VmhostError(code === 'EEXIST' ? 'ALREADY_EXISTS' : 'CLI_INVALID_PARAMETER', `New-VFD: ${path}: ${code === 'EEXIST' ? 'the file already exists' : (e as Error).message}`);
    });
    try { await fh.truncate(1_474_560); } finally { await fh.close(); }
    return { Path: path, Size: 1_474_560 };
  },
});

const comView = { columns: [{ label: 'VMName', value: 'VMName' }, { label: 'Name', value: 'Name' }, { label: 'Path', value: 'Path' }] };

export const getVmComPort = defineCmdlet({
  name: 'Get-VMComPort', synopsis: 'Show a VM\'s COM ports (COM 1 is vmhost\'s serial console)', params: { VMName: vmName, Number: { type: 'int', values: [1, 2] } },
  positional: ['VMName'],
  view: comView,
  async run(args, ctx) {
    const all = (await listEach(ctx, args.VMName, 'com-ports')) as { Name: string }[];
    return args.Number === undefined ? all : oneOrMany(all.filter((p) => p.Name === `COM ${args.Number}`), args.VMName);
  },
});

export const setVmComPort = defineCmdlet({
  name: 'Set-VMComPort', synopsis: 'Point COM 2 at a unix socket QEMU listens on (Hyper-V: a named pipe); -Path \'\' disconnects; VM off',
  params: { VMName: vmName, Number: { type: 'int', values: [1, 2], mandatory: true }, Path: { type: 'string', mandatory: true } },
  positional: ['VMName'],
  view: comView,
  async run(args, ctx) {
    const path = args.Path === '' ? '' : resolve(args.Path);
    const out = await perVm(ctx, args.VMName, (api, vm) => api.call('PUT', `/vms/${vm.Id}/com-ports/${args.Number}`, { Path: path }));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
