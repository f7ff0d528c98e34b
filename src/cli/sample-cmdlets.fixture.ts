// Sample cmdlet definitions for the tests, shaped like the Hyper-V reference (sections 1.1, 1.3, 1.4).
// Handlers work on an in-memory list and record the arguments they received; no daemon involved.
import { VmhostError } from '../common/index.ts';
import { defineCmdlet } from './cmdlet.ts';
import { CmdletRegistry } from './registry.ts';
import { vmView } from './views.ts';
import { matchesAny } from './wildcard.ts';

export interface SampleVm {
  Name: string; State: string; CPUUsage: number; MemoryAssigned: number; Uptime: number; Status: string;
}

export function sampleRegistry(vms: SampleVm[] = []) {
  const calls: { cmdlet: string; args: Record<string, unknown>; set: string | undefined }[] = [];
  const record = (cmdlet: string, args: object, set: string | undefined) => calls.push({ cmdlet, args: { ...args }, set });

  const newVm = defineCmdlet({
    name: 'New-VM',
    synopsis: 'Create a VM',
    params: {
      Name: { type: 'string', mandatory: true, aliases: ['VMName'] },
      MemoryStartupBytes: { type: 'size', help: 'Startup memory, e.g. 512MB' },
      Generation: { type: 'int', values: [1, 2] },
      BootDevice: { type: 'enum', values: ['Floppy', 'CD', 'IDE', 'LegacyNetworkAdapter', 'NetworkAdapter', 'VHD'] },
      Path: { type: 'string' },
      SwitchName: { type: 'string' },
      NewVHDPath: { type: 'string' },
      NewVHDSizeBytes: { type: 'size' },
      NoVHD: { type: 'switch' },
    },
    positional: ['Name'],
    view: vmView,
    async run(args, ctx) {
      // Compile-time checks of the inferred argument types.
      const name: string = args.Name;
      const mem: number | undefined = args.MemoryStartupBytes;
      const boot: 'Floppy' | 'CD' | 'IDE' | 'LegacyNetworkAdapter' | 'NetworkAdapter' | 'VHD' | undefined = args.BootDevice;
      const noVhd: boolean = args.NoVHD;
      void boot; void noVhd;
      record('New-VM', args, ctx.parameterSet);
      const vm = { Name: name, State: 'Off', CPUUsage: 0, MemoryAssigned: 0, Uptime: 0, Status: 'Operating normally', MemoryStartup: mem ?? 512 * 1024 * 1024 };
      return vm;
    },
  });

  const getVm = defineCmdlet({
    name: 'Get-VM',
    synopsis: 'List VMs',
    params: {
      Name: { type: 'string', array: true, wildcards: true, aliases: ['VMName'], sets: ['Name'] },
      Id: { type: 'guid', sets: ['Id'], mandatory: ['Id'] },
    },
    positional: ['Name'],
    defaultSet: 'Name',
    view: vmView,
    async run(args, ctx) {
      const names: string[] | undefined = args.Name;
      record('Get-VM', args, ctx.parameterSet);
      ctx.verbose(`listing VMs on ${ctx.computerName.join(',')}`);
      const hits = vms.filter((v) => names === undefined || matchesAny(names, v.Name));
      if (names && !names.some((n) => /[*?[]/.test(n)) && hits.length === 0) {
        throw new VmhostError('VM_NOT_FOUND', `Hyper-V was unable to find a virtual machine with name '${names.join(',')}'.`);
      }
      return hits;
    },
  });

  const stopVm = defineCmdlet({
    name: 'Stop-VM',
    synopsis: 'Shut down, turn off or save a VM',
    params: {
      Name: { type: 'string', array: true, mandatory: true, wildcards: true, aliases: ['VMName'] },
      Force: { type: 'switch' },
      TurnOff: { type: 'switch' },
      Save: { type: 'switch' },
    },
    positional: ['Name'],
    supportsShouldProcess: true,
    async run(args, ctx) {
      const names: string[] = args.Name;
      const turnOff: boolean = args.TurnOff;
      void turnOff;
      const vm = vms.filter((v) => matchesAny(names, v.Name)).filter((v) => ctx.shouldProcess(v.Name))[0];
      if (!vm) return undefined;
      record('Stop-VM', args, ctx.parameterSet);
      if (vm?.State === 'Off') throw new VmhostError('INVALID_STATE', `the VM '${vm.Name}' is already off`);
      return args.PassThru ? vm : undefined;
    },
  });

  const newVhd = defineCmdlet({
    name: 'New-VHD',
    synopsis: 'Create a virtual disk file',
    params: {
      Path: { type: 'string', mandatory: true },
      SizeBytes: { type: 'size', sets: ['Fixed', 'Dynamic', 'Differencing'], mandatory: ['Fixed', 'Dynamic'] },
      Fixed: { type: 'switch', sets: ['Fixed'], mandatory: ['Fixed'] },
      Dynamic: { type: 'switch', sets: ['Dynamic'] },
      Differencing: { type: 'switch', sets: ['Differencing'] },
      ParentPath: { type: 'string', sets: ['Differencing'], mandatory: ['Differencing'] },
      BlockSizeBytes: { type: 'size' },
      LogicalSectorSizeBytes: { type: 'int', values: [512, 4096] },
    },
    positional: ['Path', 'SizeBytes'],
    defaultSet: 'Dynamic',
    async run(args, ctx) {
      const path: string = args.Path;
      record('New-VHD', args, ctx.parameterSet);
      return { Path: path, VhdType: ctx.parameterSet, Size: args.SizeBytes ?? 0 };
    },
  });

  const setVmMemory = defineCmdlet({
    name: 'Set-VMMemory',
    synopsis: 'Change memory settings',
    params: {
      VMName: { type: 'string', array: true, mandatory: true },
      DynamicMemoryEnabled: { type: 'bool' },
      StartupBytes: { type: 'size' },
      MinimumBytes: { type: 'size' },
      MaximumBytes: { type: 'size' },
      Priority: { type: 'int', min: 0, max: 100 },
      Buffer: { type: 'int', min: 5, max: 2000 },
    },
    positional: ['VMName'],
    async run(args, ctx) {
      const dyn: boolean | undefined = args.DynamicMemoryEnabled;
      void dyn;
      record('Set-VMMemory', args, ctx.parameterSet);
      return undefined;
    },
  });

  const addDisk = defineCmdlet({
    name: 'Add-VMHardDiskDrive',
    synopsis: 'Attach a disk to a VM',
    params: {
      VMName: { type: 'string', array: true, mandatory: true },
      Path: { type: 'string' },
      ControllerType: { type: 'enum', values: ['IDE', 'SCSI'] },
      ControllerNumber: { type: 'int', min: 0 },
      VMId: { type: 'guid', array: true },
    },
    positional: ['VMName', 'Path'],
    async run(args, ctx) {
      const ct: 'IDE' | 'SCSI' | undefined = args.ControllerType;
      void ct;
      record('Add-VMHardDiskDrive', args, ctx.parameterSet);
      return undefined;
    },
  });

  const registry = new CmdletRegistry().add(newVm).add(getVm).add(stopVm).add(newVhd).add(setVmMemory).add(addDisk);
  return { registry, calls };
}
