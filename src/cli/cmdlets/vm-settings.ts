// VM settings cmdlets: Set-VM, Rename-VM, Get-/Set-VMProcessor, Get-/Set-VMMemory. Each
// change is one PATCH; the host refuses what the VM's state forbids. (Firmware and BIOS:
// vm-firmware.ts.)
import { resolve } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import type { VmView } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { vmView } from '../views.ts';
import { setPool } from './pool-member.ts';
import { clientFor, oneOrMany, perVm, selectVms, vmNameMandatory } from './vm-select.ts';

async function patchEach(ctx: Parameters<typeof clientFor>[0], names: string[], body: Record<string, unknown>): Promise<VmView[]> {
  const defined = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
  if (Object.keys(defined).length === 0) throw new VmhostError('CLI_INVALID_PARAMETER', `${ctx.cmdlet}: no setting to change was given`);
  return perVm(ctx, names, (api, vm) => api.call<VmView>('PATCH', `/vms/${vm.Id}`, defined));
}

export const setVm = defineCmdlet({
  name: 'Set-VM',
  synopsis: 'Change a VM\'s processors, memory, name, notes or checkpoint file location',
  params: {
    Name: vmNameMandatory,
    ProcessorCount: { type: 'int', min: 1, max: 64 },
    MemoryStartupBytes: { type: 'size' },
    Notes: { type: 'string' },
    NewVMName: { type: 'string' },
    SnapshotFileLocation: { type: 'string', help: 'Folder for checkpoint files (the VM must have no checkpoints)' },
  },
  positional: ['Name'],
  view: vmView,
  async run(args, ctx) {
    const r = await patchEach(ctx, args.Name, {
      ProcessorCount: args.ProcessorCount, MemoryStartupBytes: args.MemoryStartupBytes, Notes: args.Notes, NewVMName: args.NewVMName,
      // Made absolute here: the daemon has its own working directory.
      SnapshotFileLocation: args.SnapshotFileLocation === undefined ? undefined : resolve(args.SnapshotFileLocation),
    });
    return args.PassThru ? oneOrMany(r, args.Name) : undefined;
  },
});

export const renameVm = defineCmdlet({
  name: 'Rename-VM',
  synopsis: 'Give a VM a new name',
  params: { Name: { ...vmNameMandatory, array: false }, NewName: { type: 'string', mandatory: true } },
  positional: ['Name', 'NewName'],
  view: vmView,
  async run(args, ctx) {
    const r = await patchEach(ctx, [args.Name], { NewVMName: args.NewName });
    return args.PassThru ? r[0] : undefined;
  },
});

const processorView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'Count', value: 'Count' },
    { label: 'MaximumCountPerNumaNode', value: 'MaximumCountPerNumaNode' }, { label: 'NumaNodes', value: 'NumaNodes' },
  ],
};

function processorOf(vm: VmView) {
  return { VMName: vm.Name, VMId: vm.Id, Count: vm.ProcessorCount, NumaNodes: vm.NumaNodesCount, MaximumCountPerNumaNode: Math.ceil(vm.ProcessorCount / vm.NumaNodesCount) };
}

export const getVmProcessor = defineCmdlet({
  name: 'Get-VMProcessor', synopsis: 'Show a VM\'s virtual processor settings', params: { VMName: { ...vmNameMandatory, aliases: [] } }, positional: ['VMName'],
  view: processorView,
  async run(args, ctx) {
    return oneOrMany((await selectVms(clientFor(ctx), args.VMName)).map(processorOf), args.VMName);
  },
});

export const setVmProcessor = defineCmdlet({
  name: 'Set-VMProcessor',
  synopsis: 'Change vCPU count and guest NUMA layout (VM must be off)',
  params: {
    VMName: { ...vmNameMandatory, aliases: [] },
    Count: { type: 'int', min: 1, max: 64 },
    MaximumCountPerNumaNode: { type: 'int', min: 1, max: 64, help: 'vCPUs per guest NUMA node; the node count follows' },
    ResourcePoolName: { type: 'string', help: 'The Processor resource pool the VM is billed in (Primordial: none); also while it runs' },
  },
  positional: ['VMName'],
  view: processorView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = [];
    for (const vm of await selectVms(api, args.VMName)) {
      if (args.ResourcePoolName !== undefined) await setPool(api, vm.Id, 'Processor', args.ResourcePoolName);
      if (args.Count === undefined && args.MaximumCountPerNumaNode === undefined && args.ResourcePoolName !== undefined) { out.push(processorOf(vm)); continue; }
      const count = args.Count ?? vm.ProcessorCount;
      const body: Record<string, unknown> = { ProcessorCount: args.Count };
      if (args.MaximumCountPerNumaNode !== undefined) body.NumaNodes = Math.ceil(count / args.MaximumCountPerNumaNode);
      out.push(processorOf((await patchEach(ctx, [vm.Name], body))[0]!));
    }
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

const memoryView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'DynamicMemoryEnabled', value: 'DynamicMemoryEnabled' },
    { label: 'Startup', value: 'Startup' }, { label: 'Minimum', value: 'Minimum' }, { label: 'Maximum', value: 'Maximum' },
  ],
};

function memoryOf(vm: VmView) {
  return { VMName: vm.Name, VMId: vm.Id, DynamicMemoryEnabled: vm.DynamicMemoryEnabled, Startup: vm.MemoryStartup, Minimum: vm.MemoryMinimum, Maximum: vm.MemoryMaximum };
}

export const getVmMemory = defineCmdlet({
  name: 'Get-VMMemory', synopsis: 'Show a VM\'s memory settings', params: { VMName: { ...vmNameMandatory, aliases: [] } }, positional: ['VMName'],
  view: memoryView,
  async run(args, ctx) {
    return oneOrMany((await selectVms(clientFor(ctx), args.VMName)).map(memoryOf), args.VMName);
  },
});

export const setVmMemory = defineCmdlet({
  name: 'Set-VMMemory', synopsis: 'Change a VM\'s startup memory (VM must be off)',
  params: {
    VMName: { ...vmNameMandatory, aliases: [] }, StartupBytes: { type: 'size' },
    ResourcePoolName: { type: 'string', help: 'The Memory resource pool the VM is billed in (Primordial: none); also while it runs' },
  },
  positional: ['VMName'],
  view: memoryView,
  async run(args, ctx) {
    if (args.ResourcePoolName !== undefined) await perVm(ctx, args.VMName, (api, vm) => setPool(api, vm.Id, 'Memory', args.ResourcePoolName!));
    if (args.StartupBytes === undefined && args.ResourcePoolName !== undefined) return args.PassThru ? oneOrMany((await selectVms(clientFor(ctx), args.VMName)).map(memoryOf), args.VMName) : undefined;
    const r = await patchEach(ctx, args.VMName, { MemoryStartupBytes: args.StartupBytes });
    return args.PassThru ? oneOrMany(r.map(memoryOf), args.VMName) : undefined;
  },
});
