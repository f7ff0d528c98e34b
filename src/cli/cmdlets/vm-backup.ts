// Incremental backup cmdlets (a vmhost extension in Hyper-V's verb-noun style; host/vm-backup.ts):
// Start-VMBackup, Get-VMBackup, Restore-VMBackup, Remove-VMBackup. Paths are made absolute here
// (the daemon has its own working directory).
import { resolve } from 'node:path';
import type { RestoredDisk, VmBackup, VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import type { View } from '../table.ts';
import { clientFor, oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

const asJob = { type: 'switch', help: 'Return the job at once instead of waiting' } as const;
const repository = { type: 'string', mandatory: true, help: 'The backup repository (a restic repository folder on the host)' } as const;
const backupId = { type: 'string', mandatory: true, help: 'The backup point\'s id (BackupId), or a unique prefix of it' } as const;

const backupView: View = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'BackupId', value: 'BackupId' }, { label: 'Kind', value: 'Kind' }, { label: 'Point', value: 'Point' },
    { label: 'CreationTime', value: 'CreationTime' }, { label: 'ConsistencyLevel', value: 'ConsistencyLevel' },
    { label: 'ChangedBytes', value: (r) => `${(r as unknown as VmBackup).ChangedBytes} of ${(r as unknown as VmBackup).VirtualSize}` },
  ],
};

const restoredView: View = {
  columns: [{ label: 'Path', value: 'Path' }, { label: 'SourcePath', value: 'SourcePath' }, { label: 'VirtualSize', value: 'VirtualSize' }, { label: 'PointsApplied', value: 'PointsApplied' }],
};

export const startVmBackup = defineCmdlet({
  name: 'Start-VMBackup',
  synopsis: 'Back up a VM into a repository: the first point is full, the next ones read only the blocks changed since (all disks at one moment; application-consistent when the guest agent freezes its file systems, else crash-consistent; an off or saved VM from its files)',
  params: {
    VMName: { ...vmNameMandatory, aliases: [] }, Destination: repository,
    KeepLast: { type: 'int', min: 1, help: 'Then keep only the VM\'s newest N points in the repository (the oldest kept is rebased as full when its full point goes)' },
    AsJob: asJob,
  },
  positional: ['VMName', 'Destination'],
  view: backupView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return runJob<VmBackup>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/backups`, { Destination: resolve(args.Destination), KeepLast: args.KeepLast });
    });
    return oneOrMany(out, args.VMName);
  },
});

export const getVmBackup = defineCmdlet({
  name: 'Get-VMBackup',
  synopsis: 'List the backup points in a repository (of one VM with -VMName), oldest first',
  params: { Path: repository, VMName: { type: 'string', help: 'Only this VM\'s points' } },
  positional: ['Path'],
  view: backupView,
  run: async (args, ctx) => {
    const q = new URLSearchParams({ Path: resolve(args.Path) });
    if (args.VMName !== undefined) q.set('VMName', args.VMName);
    return clientFor(ctx).call<VmBackup[]>('GET', `/backups?${q}`);
  },
});

export const restoreVmBackup = defineCmdlet({
  name: 'Restore-VMBackup',
  synopsis: 'Restore a backup point\'s disks as new VHDX files in -DestinationPath (its full point and the incrementals up to it applied); -NewVMName: and register a new VM (new id, new dynamic MACs, Off) on them; -VMName: over that off VM\'s own disks',
  params: {
    Path: repository, BackupId: backupId,
    DestinationPath: { type: 'string', help: 'Folder for the restored disks (with -NewVMName by default DIR/Virtual Hard Disks/<NewVMName> on the host)' },
    NewVMName: { type: 'string', help: 'Register a new VM with this name from the point\'s configuration on the restored disks' },
    VMName: { type: 'string', help: 'Restore over this VM\'s own disks (it must be off, without checkpoints)' },
    AsJob: asJob,
  },
  positional: ['Path', 'BackupId', 'DestinationPath'],
  view: restoredView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(`${args.BackupId} → ${args.NewVMName ?? args.DestinationPath ?? `the disks of ${args.VMName}`}`)) return undefined;
    return runJob<RestoredDisk[] | VmView>(clientFor(ctx), ctx, args.AsJob, 'POST', '/backups/restore', {
      Path: resolve(args.Path), BackupId: args.BackupId, NewVMName: args.NewVMName, VMName: args.VMName,
      DestinationPath: args.DestinationPath === undefined ? undefined : resolve(args.DestinationPath),
    });
  },
});

export const removeVmBackup = defineCmdlet({
  name: 'Remove-VMBackup',
  synopsis: 'Remove a backup point and the later points of its chain (they build on it); the repository is pruned',
  params: { Path: repository, BackupId: backupId },
  positional: ['Path', 'BackupId'],
  view: backupView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.BackupId)) return undefined;
    const gone = await clientFor(ctx).call<VmBackup[]>('POST', '/backups/remove', { Path: resolve(args.Path), BackupId: args.BackupId });
    return args.PassThru ? gone : undefined;
  },
});
