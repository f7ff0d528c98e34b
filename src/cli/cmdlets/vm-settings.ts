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
    MemoryMinimumBytes: { type: 'size', help: 'Dynamic memory minimum (may be lowered while the VM runs)' },
    MemoryMaximumBytes: { type: 'size', help: 'Dynamic memory maximum (may be raised while the VM runs)' },
    DynamicMemory: { type: 'switch', help: 'Turn dynamic memory on (VM off)' },
    StaticMemory: { type: 'switch', help: 'Turn dynamic memory off (VM off)' },
    Notes: { type: 'string' },
    NewVMName: { type: 'string' },
    SnapshotFileLocation: { type: 'string', help: 'Folder for checkpoint files (the VM must have no checkpoints)' },
    SmartPagingFilePath: { type: 'string', help: 'Folder of the smart paging file (default: the VM\'s folder)' },
  },
  positional: ['Name'],
  view: vmView,
  async run(args, ctx) {
    if (args.DynamicMemory && args.StaticMemory) throw new VmhostError('CLI_PARAMETER_SET', 'Set-VM: -DynamicMemory and -StaticMemory exclude each other');
    const r = await patchEach(ctx, args.Name, {
      ProcessorCount: args.ProcessorCount, MemoryStartupBytes: args.MemoryStartupBytes, Notes: args.Notes, NewVMName: args.NewVMName,
      MemoryMinimumBytes: args.MemoryMinimumBytes, MemoryMaximumBytes: args.MemoryMaximumBytes,
      DynamicMemoryEnabled: args.DynamicMemory ? true : args.StaticMemory ? false : undefined,
      // Made absolute here: the daemon has its own working directory.
      SnapshotFileLocation: args.SnapshotFileLocation === undefined ? undefined : resolve(args.SnapshotFileLocation),
      SmartPagingFilePath: args.SmartPagingFilePath === undefined ? undefined : resolve(args.SmartPagingFilePath),
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
    { label: 'Minimum', value: 'Minimum' }, { label: 'Startup', value: 'Startup' }, { label: 'Maximum', value: 'Maximum' },
  ],
};

/** Get-VMMemory's VMMemory object, with Hyper-V's property names. */
function memoryOf(vm: VmView) {
  return {
    VMName: vm.Name, VMId: vm.Id, DynamicMemoryEnabled: vm.DynamicMemoryEnabled, Startup: vm.MemoryStartup, Minimum: vm.MemoryMinimum, Maximum: vm.MemoryMaximum,
    Buffer: vm.MemoryBuffer, Priority: vm.MemoryPriority, MaximumPerNumaNode: Math.floor(vm.MemoryMaximum / vm.NumaNodesCount),
  };
}

export const getVmMemory = defineCmdlet({
  name: 'Get-VMMemory', synopsis: 'Show a VM\'s memory settings', params: { VMName: { ...vmNameMandatory, aliases: [] } }, positional: ['VMName'],
  view: memoryView,
  async run(args, ctx) {
    return oneOrMany((await selectVms(clientFor(ctx), args.VMName)).map(memoryOf), args.VMName);
  },
});

export const setVmMemory = defineCmdlet({
  name: 'Set-VMMemory', synopsis: 'Change a VM\'s memory: startup, dynamic memory and its range, buffer, priority',
  params: {
    VMName: { ...vmNameMandatory, aliases: [] },
    StartupBytes: { type: 'size', help: 'Startup memory (VM off)' },
    DynamicMemoryEnabled: { type: 'bool', help: 'Dynamic memory on or off (VM off)' },
    MinimumBytes: { type: 'size', help: 'Dynamic memory minimum (may be lowered while the VM runs)' },
    MaximumBytes: { type: 'size', help: 'Dynamic memory maximum (may be raised while the VM runs)' },
    Buffer: { type: 'int', help: 'Memory kept above the guest\'s use, % (5–2000)' },
    Priority: { type: 'int', help: 'Memory weight when the host is short (0–100)' },
    ResourcePoolName: { type: 'string', help: 'The Memory resource pool the VM is billed in (Primordial: none); also while it runs' },
  },
  positional: ['VMName'],
  view: memoryView,
  async run(args, ctx) {
    if (args.ResourcePoolName !== undefined) await perVm(ctx, args.VMName, (api, vm) => setPool(api, vm.Id, 'Memory', args.ResourcePoolName!));
    const memoryChange = [args.StartupBytes, args.DynamicMemoryEnabled, args.MinimumBytes, args.MaximumBytes, args.Buffer, args.Priority].some((v) => v !== undefined);
    if (!memoryChange && args.ResourcePoolName !== undefined) return args.PassThru ? oneOrMany((await selectVms(clientFor(ctx), args.VMName)).map(memoryOf), args.VMName) : undefined;
    const r = await patchEach(ctx, args.VMName, {
      MemoryStartupBytes: args.StartupBytes, DynamicMemoryEnabled: args.DynamicMemoryEnabled, MemoryMinimumBytes: args.MinimumBytes,
      MemoryMaximumBytes: args.MaximumBytes, MemoryBuffer: args.Buffer, MemoryPriority: args.Priority,
    });
    return args.PassThru ? oneOrMany(r.map(memoryOf), args.VMName) : undefined;
  },
});
