// Resource pool cmdlets: New-/Get-/Set-/Rename-/Remove-VMResourcePool and Measure-VMResourcePool
// over /resource-pools. Enable-/Disable-/
// Reset-VMResourceMetering -ResourcePoolName are in vm-metering.ts, the helpers in pool-member.ts.
import { resolve } from 'node:path';
import { defineCmdlet, type CmdletContext } from '../cmdlet.ts';
import type { View } from '../table.ts';
import { hasWildcard, matchWildcard } from '../wildcard.ts';
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

/** Get-VMResourcePool's pools: a name with wildcards is matched here, as Get-VM's are (an exact one the daemon finds or refuses). */
async function listPools<T extends { Name: string }>(ctx: CmdletContext, name: string | undefined, types: readonly string[] | undefined): Promise<T[]> {
  const q = new URLSearchParams();
  if (name && !hasWildcard(name)) q.set('Name', name);
  if (types) q.set('ResourcePoolType', types.join(','));
  const pools = await clientFor(ctx).call<T[]>('GET', `/resource-pools?${q}`);
  return name && hasWildcard(name) ? pools.filter((p) => matchWildcard(name, p.Name)) : pools;
}

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
  run: async (args, ctx) => listPools(ctx, args.Name, args.ResourcePoolType),
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

const storageTypes = ['VHD', 'ISO', 'VFD'] as const;

/** Add-/Remove-VMStoragePath differ only in the list they fill. */
function storagePathCmdlet(name: string, synopsis: string, list: 'Add' | 'Remove') {
  return defineCmdlet({
    name, synopsis,
    params: {
      ResourcePoolName: { type: 'string', mandatory: true, aliases: ['Name'] },
      ResourcePoolType: { type: 'enum', values: storageTypes, mandatory: true },
      Path: { type: 'string', array: true, mandatory: true, help: 'Host folders' },
    },
    positional: ['Path', 'ResourcePoolName', 'ResourcePoolType'],
    async run(args, ctx) {
      await clientFor(ctx).call('PATCH', `/resource-pools/${encodeURIComponent(args.ResourcePoolName)}/paths${typesQuery([args.ResourcePoolType])}`, { [list]: args.Path.map((p) => resolve(p)) });
      return undefined;
    },
  });
}

export const addVmStoragePath = storagePathCmdlet('Add-VMStoragePath', 'Add folders to a VHD, ISO or VFD resource pool', 'Add');
export const removeVmStoragePath = storagePathCmdlet('Remove-VMStoragePath', 'Remove folders from a VHD, ISO or VFD resource pool (refused while a member drive would be left outside its paths)', 'Remove');

export const getVmStoragePath = defineCmdlet({
  name: 'Get-VMStoragePath',
  synopsis: 'List the folders of VHD, ISO and VFD resource pools',
  params: {
    ResourcePoolName: { type: 'string', wildcards: true, aliases: ['Name'] },
    ResourcePoolType: { type: 'enum', array: true, values: storageTypes },
    Path: { type: 'string', wildcards: true },
  },
  positional: ['Path', 'ResourcePoolName', 'ResourcePoolType'],
  view: { columns: ['Path', 'ResourcePoolName', 'ResourcePoolType'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    const pools = await listPools<{ Name: string; ResourcePoolType: string; Paths: string[] }>(ctx, args.ResourcePoolName, args.ResourcePoolType ?? storageTypes);
    const match = (path: string) => args.Path === undefined || matchWildcard(args.Path, path);
    return pools.flatMap((p) => p.Paths.filter(match).map((path) => ({ Path: path, ResourcePoolName: p.Name, ResourcePoolType: p.ResourcePoolType })));
  },
});

export const addVmSwitch = defineCmdlet({
  name: 'Add-VMSwitch',
  synopsis: 'Put a virtual switch into Ethernet resource pools (their adapters connect to it with Connect-VMNetworkAdapter -UseAutomaticConnection)',
  params: { Name: { type: 'string', array: true, mandatory: true, aliases: ['SwitchName'] }, ResourcePoolName: { type: 'string', array: true, mandatory: true } },
  positional: ['Name', 'ResourcePoolName'],
  async run(args, ctx) {
    const api = clientFor(ctx);
    for (const name of args.Name) await api.call('PUT', `/switches/${encodeURIComponent(name)}/resource-pools`, { ResourcePoolName: args.ResourcePoolName });
    return undefined;
  },
});
