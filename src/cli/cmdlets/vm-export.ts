// Export and import cmdlets: Export-VM, Export-VMSnapshot, Compare-VM, Import-VM. Paths are made
// absolute here (the daemon has its own working directory). Import-VM's fixes for what Compare-VM
// reports are either options (-SwitchName, -VhdSourcePath, -GenerateNewId, destinations) or the
// report itself: `Compare-VM -Path x -Json > report.json`, edit report.json (its VM, FirmwareVars,
// SavedState), `Import-VM -CompatibilityReport report.json`.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import type { VmCompatibilityReport, VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import { clientFor, oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

const asJob = { type: 'switch', help: 'Return the job at once instead of waiting' } as const;

const importParams = {
  Path: { type: 'string', help: 'The exported config: <export>/Virtual Machines/<VMId>.json' },
  Register: { type: 'switch', help: 'Register the VM where its files are, same id (the default)' },
  Copy: { type: 'switch', help: 'Copy the files (same id unless -GenerateNewId)' },
  GenerateNewId: { type: 'switch', help: 'With -Copy: a new VM id, new device ids and new dynamic MAC addresses' },
  VhdDestinationPath: { type: 'string', help: 'With -Copy: folder for the disk files' },
  VirtualMachinePath: { type: 'string', help: 'With -Copy: base folder of the disks and checkpoints when their own paths are not given' },
  SnapshotFilePath: { type: 'string', help: 'With -Copy: folder for checkpoint records and memory' },
  VhdSourcePath: { type: 'string', help: 'Folder to look in for disks and parent disks not found where the export says' },
  SwitchName: { type: 'string', help: 'Connect adapters whose switch this host lacks to this switch (\'\' leaves them disconnected)' },
} as const;

type ImportArgs = { [K in keyof typeof importParams]?: K extends 'Register' | 'Copy' | 'GenerateNewId' ? boolean : string };

function importBody(args: ImportArgs): Record<string, unknown> {
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(p));
  if (args.Register && args.Copy) throw new VmhostError('CLI_INVALID_PARAMETER', 'Import-VM: -Register and -Copy exclude each other', { param: 'Register' });
  return {
    Path: abs(args.Path), Copy: args.Copy || undefined, GenerateNewId: args.GenerateNewId || undefined,
    VhdDestinationPath: abs(args.VhdDestinationPath), VirtualMachinePath: abs(args.VirtualMachinePath), SnapshotFilePath: abs(args.SnapshotFilePath),
    VhdSourcePath: abs(args.VhdSourcePath), SwitchName: args.SwitchName,
  };
}

const reportView = {
  columns: [
    { label: 'VM', value: (r: unknown) => (r as VmCompatibilityReport).VM?.name ?? '' },
    { label: 'OperationType', value: 'OperationType' },
    { label: 'Incompatibilities', value: (r: unknown) => (r as VmCompatibilityReport).Incompatibilities.map((i) => `${i.MessageId} ${i.Message} (fix: ${i.Fix})`).join('\n') || 'None' },
  ],
};

export const exportVm = defineCmdlet({
  name: 'Export-VM',
  synopsis: 'Export a VM (config, disks, checkpoints) to <Path>/<VMName>; a running VM keeps running and its disks are copied at one point in time (crash-consistent: it imports Off)',
  params: { Name: vmNameMandatory, Path: { type: 'string', mandatory: true, help: 'Folder on the host' }, AsJob: asJob },
  positional: ['Name', 'Path'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.Name, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/export`, { Path: resolve(args.Path) });
    });
    return args.AsJob || args.PassThru ? oneOrMany(out, args.Name) : undefined;
  },
});

export const exportVmSnapshot = defineCmdlet({
  name: 'Export-VMSnapshot',
  synopsis: 'Export one checkpoint as a VM: its configuration, its disks as a chain of copies, its memory as saved state',
  params: {
    Name: { type: 'string', mandatory: true, help: 'The checkpoint (name or Id)' },
    VMName: { ...vmNameMandatory, aliases: [] },
    Path: { type: 'string', mandatory: true, help: 'Folder on the host' },
    AsJob: asJob,
  },
  positional: ['Name', 'Path'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(`${vm.Name}: ${args.Name}`)) return undefined;
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/snapshots/${encodeURIComponent(args.Name)}/export`, { Path: resolve(args.Path) });
    });
    return args.AsJob ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const compareVm = defineCmdlet({
  name: 'Compare-VM',
  synopsis: 'What would keep an exported VM from being imported on this host (VMCompatibilityReport), each item with its fix',
  params: { ...importParams, Path: { ...importParams.Path, mandatory: true } },
  positional: ['Path'],
  view: reportView,
  async run(args, ctx) {
    return clientFor(ctx).call<VmCompatibilityReport>('POST', '/import/compare', importBody(args));
  },
});

export const importVm = defineCmdlet({
  name: 'Import-VM',
  synopsis: 'Import an exported VM: register in place (default), -Copy, or -Copy -GenerateNewId; refused while Compare-VM lists incompatibilities',
  params: {
    ...importParams,
    CompatibilityReport: { type: 'string', help: 'A report file from Compare-VM -Json, edited to fix its incompatibilities (its options and VM are used)' },
    AsJob: asJob,
  },
  positional: ['Path'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if ((args.Path === undefined) === (args.CompatibilityReport === undefined)) {
      throw new VmhostError('CLI_MISSING_PARAMETER', 'Import-VM: give -Path or -CompatibilityReport (one of them)', { param: 'Path' });
    }
    let body = importBody(args);
    if (args.CompatibilityReport !== undefined) {
      const text = await readFile(resolve(args.CompatibilityReport), 'utf8');
      const parsed = JSON.parse(text) as VmCompatibilityReport | VmCompatibilityReport[];
      body = { CompatibilityReport: Array.isArray(parsed) ? parsed[0] : parsed };
    }
    if (!ctx.shouldProcess(String(args.Path ?? args.CompatibilityReport))) return undefined;
    return runJob<VmView>(clientFor(ctx), ctx, args.AsJob, 'POST', '/import', body);
  },
});
