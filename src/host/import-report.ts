// Compare-VM's compatibility report (Hyper-V's VMCompatibilityReport): what keeps an exported VM
// from being imported on this host, each item with its fix. Pure: import-facts.ts gathers what
// the host and the files say, `incompatibilities` judges it, so every kind is unit-tested
// without a daemon. MessageIds: 33012 is the id Hyper-V reports for a switch it cannot find;
// the others are vmhost's own, stable, numbered in this table.
import { IOPS_MAX } from './drives.ts';
import type { NetworkAdapter, VmConfig } from './vm-config.ts';

export type IncompatibilityKind =
  | 'SwitchNotFound' | 'SwitchAdapterMissing' | 'MacAddressInUse'
  | 'VhdNotFound' | 'VhdParentNotFound' | 'VhdParentMismatch' | 'VhdUnreadable' | 'VhdInUse' | 'QosOutOfRange'
  | 'DuplicateVmId' | 'NameInUse' | 'MemoryAboveHost' | 'ProcessorsAboveHost' | 'GenerationNotSupported' | 'ConfigVersionUnsupported'
  | 'PathCollision' | 'IsoNotFound' | 'FloppyNotFound' | 'KernelNotFound'
  | 'FirmwareVarsMissing' | 'SavedStateMissing' | 'CheckpointMemoryMissing';

/** What an incompatibility is about (Hyper-V's Source: the object to change). */
export interface IncompatibilitySource {
  Type: 'VirtualMachine' | 'NetworkAdapter' | 'HardDiskDrive' | 'DvdDrive' | 'FloppyDiskDrive' | 'Firmware' | 'SavedState' | 'Checkpoint' | 'File';
  Id?: string;
  Name?: string;
  Path?: string;
}

export interface Incompatibility {
  Message: string;
  MessageId: number;
  Kind: IncompatibilityKind;
  Source: IncompatibilitySource;
  /** How to resolve it: an Import-VM option, or the report field to edit. */
  Fix: string;
}

const MESSAGE_IDS: Record<IncompatibilityKind, number> = {
  SwitchNotFound: 33012, SwitchAdapterMissing: 71001, MacAddressInUse: 71002,
  VhdNotFound: 71010, VhdParentNotFound: 71011, VhdParentMismatch: 71012, VhdUnreadable: 71013, VhdInUse: 71014, QosOutOfRange: 71015,
  DuplicateVmId: 71020, NameInUse: 71021, MemoryAboveHost: 71022, ProcessorsAboveHost: 71023, GenerationNotSupported: 71024, ConfigVersionUnsupported: 71025,
  PathCollision: 71030, IsoNotFound: 71031, FloppyNotFound: 71032, KernelNotFound: 71033,
  FirmwareVarsMissing: 71040, SavedStateMissing: 71041, CheckpointMemoryMissing: 71042,
};

/** Why a drive's chain cannot be opened (import-facts.ts maps the storage errors to these). */
export type DiskProblem = 'missing' | 'missing-parent' | 'parent-mismatch' | 'in-use' | 'unreadable';

/** Everything `incompatibilities` judges: the VM as it would be imported and what this host has. */
export interface ImportFacts {
  /** The VM as it would be registered (absolute source paths, the id it would get). */
  vm: VmConfig;
  host: { logicalProcessors: number; memoryBytes: number; generations: readonly number[] };
  vms: readonly { id: string; name: string; macs: readonly string[] }[];
  switches: readonly { name: string; type: string; degraded: boolean; netAdapterName: string | null }[];
  /** Per disk chain (the VM's or a checkpoint's) that does not open: the drive, the file at fault (the disk or a parent) and the storage error. */
  disks: readonly { driveId: string; problem: DiskProblem; path: string; detail: string }[];
  /** Files the config names that do not exist (ISOs, floppy, kernel/initrd). */
  missing: ReadonlySet<string>;
  /** Generation 2: the exported NVRAM; 'New' once the admin accepts fresh firmware variables. */
  firmwareVars: 'Exported' | 'Missing' | 'New';
  /** The saved state the export carries; 'MemoryMissing' when its description is there but not the memory. */
  savedState: 'None' | 'Whole' | 'MemoryMissing';
  checkpointsWithoutMemory: readonly { id: string; name: string }[];
  /** Destination files that exist already (a -Copy import never overwrites). */
  collisions: readonly string[];
}

function item(kind: IncompatibilityKind, Message: string, Source: IncompatibilitySource, Fix: string): Incompatibility {
  return { Message, MessageId: MESSAGE_IDS[kind], Kind: kind, Source, Fix };
}

/** The report of a config this host cannot read at all: its version is newer than this host's. */
export function versionIncompatibility(path: string, version: number, supported: number): Incompatibility {
  return item('ConfigVersionUnsupported', `The configuration ${path} has version ${version}; this host reads versions up to ${supported}`,
    { Type: 'File', Path: path }, 'Upgrade vmhost on this host (no option can import a newer configuration)');
}

const DISK_TEXT: Record<DiskProblem, { kind: IncompatibilityKind; what: string; fix: string }> = {
  missing: { kind: 'VhdNotFound', what: 'The virtual hard disk was not found', fix: 'Import-VM -VhdSourcePath <folder holding it>, or set its Path in the report\'s VM.hardDrives' },
  'missing-parent': { kind: 'VhdParentNotFound', what: 'The parent of a differencing disk was not found', fix: 'Import-VM -VhdSourcePath <folder holding the parent>, or Set-VHD -ParentPath on the child first' },
  'parent-mismatch': { kind: 'VhdParentMismatch', what: 'The parent found is not the disk the child was made from', fix: 'Point -VhdSourcePath at the right parent, or Set-VHD -ParentPath <parent> -IgnoreIdMismatch if it really is' },
  unreadable: { kind: 'VhdUnreadable', what: 'The file is not a usable virtual hard disk', fix: 'Test-VHD / Repair it, or set another Path in the report\'s VM.hardDrives' },
  'in-use': { kind: 'VhdInUse', what: 'The virtual hard disk is in use', fix: 'Stop the VM or process holding it (Get-VHD names it), or import with -Copy' },
};

/** Every reason the VM of `f` cannot be imported here, in the order an admin would fix them. */
export function incompatibilities(f: ImportFacts): Incompatibility[] {
  const vm = f.vm;
  const out: Incompatibility[] = [];
  const self: IncompatibilitySource = { Type: 'VirtualMachine', Id: vm.id, Name: vm.name };
  const same = f.vms.find((o) => o.id.toLowerCase() === vm.id.toLowerCase());
  if (same) {
    out.push(item('DuplicateVmId', `A virtual machine with Id ${vm.id} already exists on this host ('${same.name}')`, self,
      'Import-VM -Copy -GenerateNewId, or Remove-VM the existing one'));
  }
  const named = f.vms.find((o) => o.id !== same?.id && o.name.toLowerCase() === vm.name.toLowerCase());
  if (named) {
    // Hyper-V allows two VMs of one name; vmhost keeps names unique (Get-VM by name must find one).
    out.push(item('NameInUse', `A virtual machine named '${vm.name}' already exists on this host (Id ${named.id})`, self,
      'Set the report\'s VM.name and import with -CompatibilityReport, or rename the existing VM (Set-VM -NewVMName)'));
  }
  if (!f.host.generations.includes(vm.generation)) {
    out.push(item('GenerationNotSupported', `Generation ${String(vm.generation)} virtual machines are not supported on this host (${f.host.generations.join(', ')})`, self,
      'None on this host: only generation 1 and 2 VMs run here'));
  }
  if (vm.memoryStartupBytes > f.host.memoryBytes) {
    out.push(item('MemoryAboveHost', `Startup memory ${mib(vm.memoryStartupBytes)} MB is more than this host has (${mib(f.host.memoryBytes)} MB)`, self,
      'Set the report\'s VM.memoryStartupBytes lower'));
  }
  if (vm.processorCount > f.host.logicalProcessors) {
    out.push(item('ProcessorsAboveHost', `${vm.processorCount} virtual processors are more than this host's ${f.host.logicalProcessors} logical processors`, self,
      'Set the report\'s VM.processorCount (and numaNodes) lower'));
  }
  out.push(...networkItems(f), ...storageItems(f), ...fileItems(f));
  for (const p of f.collisions) {
    out.push(item('PathCollision', `${p} exists already; an import does not overwrite files`, { Type: 'File', Path: p },
      'Import-VM -VhdDestinationPath/-SnapshotFilePath/-VirtualMachinePath elsewhere, or remove the file'));
  }
  return out;
}

function macFix(a: NetworkAdapter): string {
  if (a.renewMacAtColdStart) return 'The saved state holds this address (it is kept until the VM\'s next cold start): set SavedState to \'None\' and the adapter\'s mac in the report\'s VM.networkAdapters, or import on a host where no VM uses it';
  return a.dynamicMac ? 'Import-VM -Copy -GenerateNewId (a dynamic MAC gets a new address)' : 'Set the adapter\'s mac in the report\'s VM.networkAdapters (or dynamicMac: true for a new one)';
}

function networkItems(f: ImportFacts): Incompatibility[] {
  const out: Incompatibility[] = [];
  const taken = new Map<string, string>();
  for (const o of f.vms) if (o.id.toLowerCase() !== f.vm.id.toLowerCase()) for (const m of o.macs) taken.set(m.toUpperCase(), o.name);
  for (const a of f.vm.networkAdapters) {
    const src: IncompatibilitySource = { Type: 'NetworkAdapter', Id: a.id, Name: a.name };
    const owner = taken.get(a.mac.toUpperCase());
    if (owner !== undefined) {
      out.push(item('MacAddressInUse', `MAC address ${a.mac} of '${a.name}' is used by VM '${owner}' on this host`, src,
        macFix(a)));
    }
    if (a.switchName === null) continue;
    const sw = f.switches.find((s) => s.name.toLowerCase() === a.switchName!.toLowerCase());
    if (!sw) {
      out.push(item('SwitchNotFound', `Could not find Ethernet switch '${a.switchName}' for '${a.name}'`, src,
        'Import-VM -SwitchName <switch> (or -SwitchName \'\' to leave it disconnected), New-VMSwitch that name, or set switchName in the report\'s VM.networkAdapters'));
    } else if (sw.degraded) {
      out.push(item('SwitchAdapterMissing', `External switch '${sw.name}' has no host network adapter (${sw.netAdapterName ?? 'none'} is missing)`, src,
        'Set-VMSwitch -NetAdapterName <adapter> on this host, or connect the adapter to another switch (-SwitchName)'));
    }
  }
  return out;
}

function storageItems(f: ImportFacts): Incompatibility[] {
  const out: Incompatibility[] = [];
  for (const p of f.disks) {
    const t = DISK_TEXT[p.problem];
    out.push(item(t.kind, `${t.what}: ${p.path} (${p.detail})`, { Type: 'HardDiskDrive', Id: p.driveId, Path: p.path }, t.fix));
  }
  const ok = (v: number) => Number.isInteger(v) && v >= 0 && v <= IOPS_MAX;
  for (const d of f.vm.hardDrives) {
    if (!ok(d.maximumIops) || !ok(d.minimumIops) || (d.maximumIops > 0 && d.minimumIops > d.maximumIops)) {
      out.push(item('QosOutOfRange', `Storage QoS of ${d.path} is out of range (MinimumIOPS ${d.minimumIops}, MaximumIOPS ${d.maximumIops}; each 0–${IOPS_MAX}, minimum ≤ maximum)`,
        { Type: 'HardDiskDrive', Id: d.id, Path: d.path }, 'Set maximumIops/minimumIops in the report\'s VM.hardDrives'));
    }
  }
  return out;
}

function fileItems(f: ImportFacts): Incompatibility[] {
  const out: Incompatibility[] = [];
  for (const d of f.vm.dvdDrives) {
    if (d.path !== null && f.missing.has(d.path)) {
      out.push(item('IsoNotFound', `The ISO image ${d.path} was not found`, { Type: 'DvdDrive', Id: d.id, Path: d.path },
        'Set the DVD drive\'s path to null (empty) or another ISO in the report\'s VM.dvdDrives'));
    }
  }
  if (f.vm.floppyPath !== null && f.missing.has(f.vm.floppyPath)) {
    out.push(item('FloppyNotFound', `The virtual floppy disk ${f.vm.floppyPath} was not found`, { Type: 'FloppyDiskDrive', Path: f.vm.floppyPath },
      'Set the report\'s VM.floppyPath to null or another .vfd'));
  }
  if (f.vm.boot.kind === 'Kernel') {
    for (const p of [f.vm.boot.kernel, f.vm.boot.initrd]) {
      if (p !== undefined && f.missing.has(p)) {
        out.push(item('KernelNotFound', `The boot file ${p} was not found`, { Type: 'File', Path: p }, 'Copy it to this host, or set the report\'s VM.boot'));
      }
    }
  }
  if (f.vm.generation === 2 && f.firmwareVars === 'Missing') {
    out.push(item('FirmwareVarsMissing', 'The export has no firmware variables (NVRAM): the VM\'s UEFI boot entries would be lost', { Type: 'Firmware', Id: f.vm.id },
      'Set the report\'s FirmwareVars to "New" (the VM starts with fresh variables, as a new VM)'));
  }
  if (f.savedState === 'MemoryMissing') {
    out.push(item('SavedStateMissing', 'The export says the VM was saved, but its saved memory is missing', { Type: 'SavedState', Id: f.vm.id },
      'Set the report\'s SavedState to "None" (the VM imports Off, its memory state discarded)'));
  }
  for (const c of f.checkpointsWithoutMemory) {
    out.push(item('CheckpointMemoryMissing', `Checkpoint '${c.name}' has lost its saved memory`, { Type: 'Checkpoint', Id: c.id, Name: c.name },
      'Restore the memory file to the Snapshots folder, or Remove-VMSnapshot it before exporting'));
  }
  return out;
}

function mib(n: number): number {
  return Math.round(n / 1048576);
}
