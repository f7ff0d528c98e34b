// Resource pool cmdlets: New-/Get-/Set-/Rename-/Remove-VMResourcePool and Measure-VMResourcePool
// over /resource-pools. Enable-/Disable-/
// Reset-VMResourceMetering -ResourcePoolName are in vm-metering.ts, the helpers in pool-member.ts.
import { resolve } from 'node:path';
import { defineCmdlet } from '../cmdlet.ts';
import type { View } from '../table.ts';
import { METERED_TYPE_VALUES, POOL_TYPE_VALUES, typesQuery } from './pool-member.ts';
import { clientFor } from './vm-select.ts';

const poolView: View = {
  columns: [
    { label: 'Name', value: 'Name' }, { label: 'ResourcePoolType', value: 'ResourcePoolType' }, { label: 'ParentName', value: 'ParentName' },
    { label: 'ResourceMeteringEnabled', value: 'ResourceMeteringEnabled' },
    { label: 'Members', value: (r) => (r.Members as { VMName: string; DeviceName: string | null }[]).map((m) => (m.DeviceName ? `${m.VMName}:${m.DeviceName}` : m.VMName)).join(', ') },
  ],
};
const poolName = { type: 'string', mandatory: true, help: 'The pool\'s name' } as const;
const poolTypes = { type: 'enum', array: true, values: POOL_TYPE_VALUES, help: 'Which of the pools of this name (all when not given)' } as const;
const one = <T>(r: T[]): T | T[] => (r.length === 1 ? r[0]! : r);

export const newVmResourcePool = defineCmdlet({
  name: 'New-VMResourcePool',
  synopsis: 'Create a resource pool of each type given (the unit a tenant\'s VMs and devices are billed by)',
  params: {
    Name: poolName,
    ResourcePoolType: { ...poolTypes, mandatory: true, help: 'Memory, Processor, Ethernet, VHD (metered); ISO, VFD, FibreChannelPort, FibreChannelConnection' },
    ParentName: { type: 'string', array: true, help: 'Parent pool (Primordial by default): one, or one per type' },
    Paths: { type: 'string', array: true, help: 'Folders of a VHD/ISO/VFD pool; a VHD pool with paths takes only drives under them' },
  },
  positional: ['Name', 'ResourcePoolType', 'ParentName', 'Paths'],
  view: poolView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return one(await clientFor(ctx).call<unknown[]>('POST', '/resource-pools', {
      Name: args.Name, ResourcePoolType: args.ResourcePoolType, ParentName: args.ParentName, Paths: args.Paths?.map((p) => resolve(p)),
    }));
  },
});

export const getVmResourcePool = defineCmdlet({
  name: 'Get-VMResourcePool',
  synopsis: 'List resource pools (the Primordial root of each type included) and their members',
  params: { Name: { type: 'string', wildcards: true, help: 'Pool name; wildcards allowed' }, ResourcePoolType: { ...poolTypes, help: 'Only these types' } },
  positional: ['Name', 'ResourcePoolType'],
  view: poolView,
  async run(args, ctx) {
    const q = new URLSearchParams();
    if (args.Name) q.set('Name', args.Name);
    if (args.ResourcePoolType) q.set('ResourcePoolType', args.ResourcePoolType.join(','));
    return clientFor(ctx).call<unknown[]>('GET', `/resource-pools?${q}`);
  },
});

export const setVmResourcePool = defineCmdlet({
  name: 'Set-VMResourcePool',
  synopsis: 'Give a resource pool another parent pool',
  params: { Name: poolName, ParentName: { type: 'string', mandatory: true }, ResourcePoolType: poolTypes },
  positional: ['Name', 'ParentName', 'ResourcePoolType'],
  view: poolView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    const r = await clientFor(ctx).call<unknown[]>('PATCH', `/resource-pools/${encodeURIComponent(args.Name)}${typesQuery(args.ResourcePoolType)}`, { ParentName: args.ParentName });
    return args.PassThru ? one(r) : undefined;
  },
});

export const renameVmResourcePool = defineCmdlet({
  name: 'Rename-VMResourcePool',
  synopsis: 'Rename a resource pool (members, child pools and metering counts follow)',
  params: { Name: poolName, NewName: { type: 'string', mandatory: true }, ResourcePoolType: poolTypes },
  positional: ['Name', 'NewName', 'ResourcePoolType'],
  view: poolView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    const r = await clientFor(ctx).call<unknown[]>('POST', `/resource-pools/${encodeURIComponent(args.Name)}/rename${typesQuery(args.ResourcePoolType)}`, { NewName: args.NewName });
    return args.PassThru ? one(r) : undefined;
  },
});

export const removeVmResourcePool = defineCmdlet({
  name: 'Remove-VMResourcePool',
  synopsis: 'Delete a resource pool (refused while it has child pools or members)',
  params: { Name: poolName, ResourcePoolType: poolTypes },
  positional: ['Name', 'ResourcePoolType'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (ctx.shouldProcess(args.Name)) await clientFor(ctx).call('DELETE', `/resource-pools/${encodeURIComponent(args.Name)}${typesQuery(args.ResourcePoolType)}`);
    return undefined;
  },
});

const mb = (v: unknown) => Math.round(Number(v) / 1048576);

export const measureVmResourcePool = defineCmdlet({
  name: 'Measure-VMResourcePool',
  synopsis: 'Resource use of a pool\'s members since its metering was enabled or reset (one report over the types given)',
  params: { Name: poolName, ResourcePoolType: { type: 'enum', array: true, values: METERED_TYPE_VALUES, help: 'Which of the pools of this name (every metered one when not given)' } },
  positional: ['Name', 'ResourcePoolType'],
  view: {
    columns: [
      { label: 'Name', value: 'Name' },
      { label: 'ResourcePoolType', value: (r) => (r.ResourcePoolType as string[]).join(',') },
      { label: 'AvgCPU(MHz)', value: 'AverageProcessorUsage' },
      { label: 'AvgRAM(M)', value: 'AverageMemoryUsage' },
      { label: 'TotalDisk(M)', value: 'TotalDiskAllocation' },
      { label: 'NetworkInbound(M)', value: (r) => mb(r.NetworkInboundBytes) },
      { label: 'NetworkOutbound(M)', value: (r) => mb(r.NetworkOutboundBytes) },
    ],
  },
  run: async (args, ctx) => clientFor(ctx).call('GET', `/resource-pools/${encodeURIComponent(args.Name)}/metering${typesQuery(args.ResourcePoolType)}`),
});
