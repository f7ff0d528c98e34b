// Checkpoint cmdlets (Hyper-V 2012 R2: the verb says Checkpoint, the nouns Snapshot):
// Checkpoint-VM, Get-VMSnapshot, Rename-VMSnapshot, Remove-VMSnapshot, Restore-VMSnapshot.
import { VmhostError } from '../../common/index.ts';
import type { SnapshotView, VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { hasWildcard, matchWildcard } from '../wildcard.ts';
import type { ApiClient } from '../client.ts';
import { clientFor, oneOrMany, perVm, selectVms, vmNameMandatory } from './vm-select.ts';

const snapshotView = {
  columns: ['VMName', 'Name', 'SnapshotType', 'CreationTime', 'ParentSnapshotName'].map((c) => ({ label: c, value: c })),
};
const vmName = { ...vmNameMandatory, aliases: [] } as const;
const snapshotPath = (vm: VmView, s?: SnapshotView) => `/vms/${vm.Id}/snapshots${s ? `/${s.Id}` : ''}`;

/** A VM's checkpoints whose names match `patterns` (wildcards); a plain name that matches none is an error. */
async function pick(api: ApiClient, vm: VmView, patterns: readonly string[] | undefined): Promise<SnapshotView[]> {
  const all = await api.call<SnapshotView[]>('GET', snapshotPath(vm));
  if (!patterns) return all;
  return patterns.flatMap((p) => {
    const hits = all.filter((s) => (hasWildcard(p) ? matchWildcard(p, s.Name) : s.Name.toLowerCase() === p.toLowerCase() || s.Id === p));
    if (hits.length === 0 && !hasWildcard(p)) throw new VmhostError('NOT_FOUND', `VM '${vm.Name}' has no checkpoint named '${p}'`, { vm: vm.Name, snapshot: p });
    return hits;
  });
}

/** Exactly one checkpoint of one VM (Restore and Rename act on one). */
async function one(api: ApiClient, vm: VmView, name: string): Promise<SnapshotView> {
  const hits = await pick(api, vm, [name]);
  if (hits.length !== 1) throw new VmhostError('CLI_INVALID_PARAMETER', `VM '${vm.Name}' has ${hits.length} checkpoints matching '${name}': name one (or give its Id)`, { vm: vm.Name, snapshot: name });
  return hits[0]!;
}

export const checkpointVm = defineCmdlet({
  name: 'Checkpoint-VM',
  synopsis: 'Take a checkpoint: each disk goes on a new .avhdx; a running VM keeps running and its memory is saved with the checkpoint',
  params: {
    Name: vmNameMandatory,
    SnapshotName: { type: 'string', help: 'Default: "<VM name> - (<date time>)"' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' },
  },
  positional: ['Name', 'SnapshotName'],
  view: snapshotView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out: unknown[] = [];
    for (const vm of await selectVms(api, args.Name)) {
      if (!ctx.shouldProcess(vm.Name)) continue;
      const body = args.SnapshotName === undefined ? {} : { SnapshotName: args.SnapshotName };
      const r = await runJob<VmView>(api, ctx, args.AsJob, 'POST', snapshotPath(vm), body);
      if (args.AsJob) out.push(r);
      else if (args.PassThru) out.push((await api.call<SnapshotView[]>('GET', snapshotPath(vm))).find((s) => s.Id === (r as VmView).ParentSnapshotId));
    }
    return args.AsJob || args.PassThru ? oneOrMany(out, args.Name) : undefined;
  },
});

export const getVmSnapshot = defineCmdlet({
  name: 'Get-VMSnapshot',
  synopsis: 'List a VM\'s checkpoints, oldest first (Name, SnapshotType, CreationTime, ParentSnapshotName)',
  params: {
    VMName: vmName,
    Name: { type: 'string', array: true, wildcards: true, help: 'Checkpoint name(s) or Id; wildcards allowed' },
  },
  positional: ['VMName', 'Name'],
  view: snapshotView,
  async run(args, ctx) {
    return (await perVm(ctx, args.VMName, (api, vm) => pick(api, vm, args.Name))).flat();
  },
});

export const renameVmSnapshot = defineCmdlet({
  name: 'Rename-VMSnapshot', synopsis: 'Rename a checkpoint',
  params: { VMName: vmName, Name: { type: 'string', mandatory: true, help: 'The checkpoint (name or Id)' }, NewName: { type: 'string', mandatory: true } },
  positional: ['VMName', 'Name', 'NewName'],
  view: snapshotView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      const s = await one(api, vm, args.Name);
      return ctx.shouldProcess(`${vm.Name}: ${s.Name}`) ? api.call<SnapshotView>('PATCH', snapshotPath(vm, s), { NewName: args.NewName }) : undefined;
    });
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const removeVmSnapshot = defineCmdlet({
  name: 'Remove-VMSnapshot',
  synopsis: 'Delete checkpoints and merge their disks (live while the VM runs: the guest keeps reading and writing)',
  params: {
    VMName: vmName,
    Name: { type: 'string', array: true, wildcards: true, mandatory: true, help: 'Checkpoint name(s) or Id; wildcards allowed' },
    IncludeAllChildSnapshots: { type: 'switch', help: 'Also every checkpoint below it' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' },
  },
  positional: ['VMName', 'Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      const done: unknown[] = [];
      for (const s of await pick(api, vm, args.Name)) {
        if (!ctx.shouldProcess(`${vm.Name}: ${s.Name}`)) continue;
        done.push(await runJob(api, ctx, args.AsJob, 'DELETE', `${snapshotPath(vm, s)}?IncludeAllChildSnapshots=${args.IncludeAllChildSnapshots}`));
      }
      return done;
    });
    return args.AsJob ? out.flat() : undefined;
  },
});

export const restoreVmSnapshot = defineCmdlet({
  name: 'Restore-VMSnapshot',
  synopsis: 'Go back to a checkpoint: the current disks are discarded; a running VM goes on from the checkpoint\'s moment, memory included',
  params: {
    VMName: vmName,
    Name: { type: 'string', mandatory: true, help: 'The checkpoint (name or Id)' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' },
  },
  positional: ['VMName', 'Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      const s = await one(api, vm, args.Name);
      if (!ctx.shouldProcess(`${vm.Name}: ${s.Name}`)) return undefined;
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `${snapshotPath(vm, s)}/restore`);
    });
    return args.AsJob || args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
