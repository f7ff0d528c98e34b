// Move-VMStorage: a VM's disk files (whole chains, checkpoint files included) and checkpoint
// records to other folders, live while it runs. Paths are made absolute here (the daemon has
// its own working directory). -Vhds takes Hyper-V's hashtables as text, one per element:
// '@{SourceFilePath=C:\a.vhdx;DestinationFilePath=D:\a.vhdx}' (the @{} and quotes optional).
import { resolve } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import type { VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

/** One -Vhds element: its SourceFilePath and DestinationFilePath, made absolute. */
function parseVhdPair(text: string): { SourceFilePath: string; DestinationFilePath: string } {
  const body = text.trim().replace(/^@\{/, '').replace(/\}$/, '');
  const fields = new Map<string, string>();
  for (const part of body.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^(['"])(.*)\1$/, '$2'));
  }
  const src = fields.get('sourcefilepath'), dst = fields.get('destinationfilepath');
  if (!src || !dst) {
    throw new VmhostError('CLI_INVALID_PARAMETER', `Move-VMStorage -Vhds: '${text}' needs SourceFilePath and DestinationFilePath, as in @{SourceFilePath=/a/x.vhdx;DestinationFilePath=/b/x.vhdx}`, { param: 'Vhds' });
  }
  return { SourceFilePath: resolve(src), DestinationFilePath: resolve(dst) };
}

export const moveVmStorage = defineCmdlet({
  name: 'Move-VMStorage',
  synopsis: 'Move a VM\'s disk files (whole chains, checkpoint files included) and checkpoint records to other folders; a running VM keeps running (its disks are mirrored live)',
  params: {
    VMName: { ...vmNameMandatory, aliases: ['Name'] },
    DestinationStoragePath: { type: 'string', help: 'Folder for every disk file and (in <path>/Snapshots) the checkpoint records' },
    VirtualMachinePath: { type: 'string', help: 'Not supported: the configuration stays in the host\'s data folder' },
    SnapshotFilePath: { type: 'string', help: 'Folder for the checkpoint records and memory' },
    Vhds: { type: 'string', array: true, help: 'Per-file destinations: @{SourceFilePath=...;DestinationFilePath=...}' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' },
  },
  positional: ['VMName', 'DestinationStoragePath'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(p));
    const body = {
      DestinationStoragePath: abs(args.DestinationStoragePath), VirtualMachinePath: abs(args.VirtualMachinePath),
      SnapshotFilePath: abs(args.SnapshotFilePath), Vhds: args.Vhds?.map(parseVhdPair),
    };
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/move-storage`, body);
    });
    return args.AsJob || args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
