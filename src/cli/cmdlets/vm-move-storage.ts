// Move-VMStorage: a VM's disk files (whole chains, checkpoint files included) and checkpoint
// records to other folders, live while it runs. Paths are made absolute here (the daemon has
// its own working directory). -Vhds takes Hyper-V's hashtables as text (vhds-param.ts).
import { resolve } from 'node:path';
import type { VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import { parseVhdPair } from './vhds-param.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

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
      SnapshotFilePath: abs(args.SnapshotFilePath),
      Vhds: args.Vhds?.map((t) => parseVhdPair(t, 'Move-VMStorage')).map((v) => ({ SourceFilePath: resolve(v.SourceFilePath), DestinationFilePath: resolve(v.DestinationFilePath) })),
    };
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/move-storage`, body);
    });
    return args.AsJob || args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
