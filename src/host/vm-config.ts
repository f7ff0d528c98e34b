// The persisted description of one VM: what the admin configured, nothing that is only
// true while it runs. Written as pretty JSON to <data-dir>/vms/<id>/vm.json so an admin
// can read it; every field is validated on load as well as on change.
import { invalid } from './invalid-argument.ts';
import { checkIops, checkSlot, sameSlot, slotText, type DvdDrive, type HardDrive } from './drives.ts';
import type { PortPolicy } from '../switch/index.ts';
import { addMapping, checkVsid, defaultIsolation, setIsolation, type AdapterIsolation, type RoutingDomainMapping } from '../hnv/index.ts';
import { checkBootConfig, type BiosDevice } from './boot-order.ts';

export type Generation = 1 | 2;

/** What the VM boots. The built-in test guest is the default for a VM without disks. */
export type BootSource =
  | { kind: 'TestGuest' }
  | { kind: 'Kernel'; kernel: string; initrd?: string; cmdline?: string };

export interface VmConfig {
  id: string;
  name: string;
  generation: Generation;
  processorCount: number;
  memoryStartupBytes: number;
  /** Dynamic memory (Set-VMMemory); memoryStartupBytes is what the VM starts with. */
  dynamicMemory: DynamicMemoryConfig;
  /** The folder of the smart paging file (Set-VM -SmartPagingFilePath); null: the VM's folder. */
  smartPagingFilePath: string | null;
  /** Guest NUMA nodes; vCPUs and memory are split evenly across them. */
  numaNodes: number;
  secureBoot: boolean;
  notes: string;
  boot: BootSource;
  /** Generation 1: Set-VMBios (startup order of device classes, NumLock at boot). */
  bios: { startupOrder: BiosDevice[]; numLockEnabled: boolean };
  /** Generation 2: Set-VMFirmware -BootOrder, as drive/adapter ids (boot-order.ts resolves and completes it). */
  bootOrder: string[];
  /** SCSI controllers 0..n-1 (Add-/Remove-VMScsiController); a VM always has controller 0 so disks can hot-plug. */
  scsiControllers: number;
  /** Generation 1: the virtual floppy disk (.vfd) in drive A, or null (Set-VMFloppyDiskDrive). */
  floppyPath: string | null;
  /** COM 2's unix socket (Set-VMComPort -Number 2 -Path); COM 1 is vmhost's serial console. */
  com2Path: string | null;
  /** Which integration services the host offers to the guest (Enable-/Disable-VMIntegrationService). */
  integrationServices: Record<IntegrationServiceName, boolean>;
  hardDrives: HardDrive[];
  dvdDrives: DvdDrive[];
  /** Network adapters (Add-VMNetworkAdapter); each is a switch port while connected. */
  networkAdapters: NetworkAdapter[];
  /** The checkpoint the VM's current state grew from (Get-VM's ParentSnapshotId); null without one. */
  parentSnapshotId: string | null;
  /** The folder of the VM's checkpoint records and memory (Hyper-V's SnapshotFileLocation). */
  snapshotFileLocation: string;
  createdAt: string;
  /** config-version.ts: CONFIG_VERSION, and the steps from older versions. */
  configVersion: 3;
}

/** Set-VMMemory's settings besides the startup memory, as Get-VMMemory shows them. */
export interface DynamicMemoryConfig {
  enabled: boolean;
  minimumBytes: number;
  maximumBytes: number;
  /** Memory kept above the guest's use, as a percentage of it (Hyper-V's Buffer, 5–2000). */
  bufferPercent: number;
  /** Who gets memory first when the host is short (Hyper-V's Priority, memory weight 0–100). */
  priority: number;
}

/** One VM NIC. Its switch port (id = the adapter id) exists while switchName is set. */
export interface NetworkAdapter {
  id: string;
  name: string;
  /** `00:15:5D:xx:xx:xx` (dynamic, from this host's pool) or the static address given. */
  mac: string;
  dynamicMac: boolean;
  /**
   * A dynamic MAC kept because saved memory carries it (Import-VM -GenerateNewId of a saved VM,
   * or a checkpoint's memory): the guest's NIC state holds this address, so it stays until the
   * next start from Off, which gives the adapter a new one from the host's pool — Hyper-V's
   * dynamic MACs change only at a cold start. Absent otherwise.
   */
  renewMacAtColdStart?: boolean;
  switchName: string | null;
  /** Emulated e1000 (generation 1 only) instead of the synthetic virtio adapter. */
  isLegacy: boolean;
  /** The port policy (switch vocabulary; `mac` is always the adapter's MAC). */
  policy: PortPolicy;
  /**
   * Set-VMNetworkAdapter -VirtualSubnetId (network virtualization); absent = 0, none. The
   * adapter owns it, as it owns its MAC: the port's policy gets it (switch-registry.ts portPolicy).
   */
  virtualSubnetId?: number;
  /** Set-VmNetworkAdapterIsolation (hnv/adapter-isolation.ts); absent = mode None. Kept consistent with virtualSubnetId (adapter-policy.ts), which the port gets. */
  isolation?: AdapterIsolation;
  /** Add-VmNetworkAdapterRoutingDomainMapping; absent = none. virtualSubnetId must be one of their subnets when there are any. */
  routingDomains?: RoutingDomainMapping[];
}

// The services the vmhost agent implements, in Get-VMIntegrationService's order. VSS is the
// agent's freeze/thaw (FIFREEZE): Start-VMBackup's application-consistent points (guest-freeze.ts).
export const INTEGRATION_SERVICES = ['Time Synchronization', 'Heartbeat', 'Key-Value Pair Exchange', 'Shutdown', 'VSS', 'Guest Service Interface'] as const;
export type IntegrationServiceName = (typeof INTEGRATION_SERVICES)[number];

/** As in Hyper-V 2012 R2: all on except Guest Service Interface (Copy-VMFile), which an admin opts into. */
export function defaultIntegrationServices(): Record<IntegrationServiceName, boolean> {
  return Object.fromEntries(INTEGRATION_SERVICES.map((s) => [s, s !== 'Guest Service Interface'])) as Record<IntegrationServiceName, boolean>;
}

/** Whether a service is on; a config written before the service existed (VSS) has the default. */
export function serviceEnabled(c: Pick<VmConfig, 'integrationServices'>, name: IntegrationServiceName): boolean {
  return (c.integrationServices as Partial<Record<IntegrationServiceName, boolean>>)[name] ?? defaultIntegrationServices()[name];
}

export const MiB = 1024 * 1024;
// Hyper-V's own bounds: at least 32 MB, a multiple of 2 MB, at most 1 TB per VM.
export const MEMORY_MIN = 32 * MiB;
export const MEMORY_MAX = 1024 * 1024 * MiB;
export const MEMORY_ALIGN = 2 * MiB;
export const PROCESSOR_MAX = 64;
export const NAME_MAX = 100;

export function checkName(name: string): void {
  if (name.length === 0 || name.length > NAME_MAX) throw invalid('Name', `must be 1–${NAME_MAX} characters`);
  // Wildcard and path characters would make names ambiguous in Get-VM and on disk.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[*?[\]\\/:"<>|\x00-\x1f]/.test(name)) throw invalid('Name', `'${name}' contains a character that is not allowed (* ? [ ] \\ / : " < > | or control)`);
  if (name.trim() !== name) throw invalid('Name', 'must not start or end with spaces');
}

export function checkMemory(bytes: number, param = 'MemoryStartupBytes'): void {
  if (!Number.isSafeInteger(bytes) || bytes < MEMORY_MIN) throw invalid(param, `${fmtBytes(bytes)} is below the minimum of 32 MB`);
  if (bytes > MEMORY_MAX) throw invalid(param, `${fmtBytes(bytes)} is above the maximum of 1 TB`);
  if (bytes % MEMORY_ALIGN !== 0) throw invalid(param, `${fmtBytes(bytes)} is not a multiple of 2 MB`);
}

export const BUFFER_MIN = 5;
export const BUFFER_MAX = 2000;

/**
 * Hyper-V's defaults for a new VM: static; the dynamic bounds 512 MB (or the startup memory
 * when that is less) to 1 TB, Buffer 20 %, Priority 50.
 */
export function defaultDynamicMemory(startupBytes: number): DynamicMemoryConfig {
  return { enabled: false, minimumBytes: Math.min(512 * MiB, startupBytes), maximumBytes: MEMORY_MAX, bufferPercent: 20, priority: 50 };
}

/**
 * Set-VMMemory's rules: each bound a valid memory size, minimum ≤ startup ≤ maximum, Buffer
 * 5–2000, Priority 0–100. Dynamic memory and virtual NUMA exclude each other, as in Hyper-V
 * 2012 R2 (memory that moves cannot stay split evenly across nodes).
 */
export function checkDynamicMemory(d: DynamicMemoryConfig, startupBytes: number, numaNodes: number, vm?: string): void {
  checkMemory(d.minimumBytes, 'MinimumBytes');
  checkMemory(d.maximumBytes, 'MaximumBytes');
  if (d.minimumBytes > startupBytes) throw invalid('MinimumBytes', `the minimum ${fmtBytes(d.minimumBytes)} is above the startup memory ${fmtBytes(startupBytes)}`, vm);
  if (d.maximumBytes < startupBytes) throw invalid('MaximumBytes', `the maximum ${fmtBytes(d.maximumBytes)} is below the startup memory ${fmtBytes(startupBytes)}`, vm);
  if (!Number.isInteger(d.bufferPercent) || d.bufferPercent < BUFFER_MIN || d.bufferPercent > BUFFER_MAX) {
    throw invalid('Buffer', `${d.bufferPercent} is outside ${BUFFER_MIN}–${BUFFER_MAX} (%)`, vm);
  }
  if (!Number.isInteger(d.priority) || d.priority < 0 || d.priority > 100) throw invalid('Priority', `${d.priority} is outside 0–100`, vm);
  if (d.enabled && numaNodes > 1) throw invalid('DynamicMemoryEnabled', `dynamic memory cannot be used with virtual NUMA (the VM has ${numaNodes} NUMA nodes)`, vm);
}

export function checkProcessorCount(count: number, hostLogicalProcessors: number): void {
  const max = Math.min(PROCESSOR_MAX, hostLogicalProcessors);
  if (!Number.isInteger(count) || count < 1 || count > max) {
    throw invalid('ProcessorCount', `${count} is outside 1–${max} (this host has ${hostLogicalProcessors} logical processors)`);
  }
}

export function checkNuma(nodes: number, processorCount: number, memoryBytes: number): void {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 8) throw invalid('NumaNodes', `${nodes} is outside 1–8`);
  if (nodes > processorCount) throw invalid('NumaNodes', `${nodes} nodes need at least as many processors (have ${processorCount})`);
  if (memoryBytes % (nodes * MEMORY_ALIGN) !== 0) throw invalid('NumaNodes', `memory ${fmtBytes(memoryBytes)} does not split evenly into ${nodes} nodes of whole 2 MB units`);
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1 && v % 1024 === 0) { v /= 1024; i++; }
  return `${v} ${units[i]}`;
}

/** Validate a config read from disk; a hand-edited file with a bad value is refused, not guessed at. */
export function checkConfig(c: VmConfig, hostLogicalProcessors: number): void {
  checkName(c.name);
  if (c.generation !== 1 && c.generation !== 2) throw invalid('Generation', `${String(c.generation)} is not 1 or 2`, c.name);
  checkMemory(c.memoryStartupBytes);
  checkProcessorCount(c.processorCount, hostLogicalProcessors);
  checkNuma(c.numaNodes, c.processorCount, c.memoryStartupBytes);
  checkDynamicMemory(c.dynamicMemory, c.memoryStartupBytes, c.numaNodes, c.name);
  if (c.smartPagingFilePath !== null && !c.smartPagingFilePath.startsWith('/')) throw invalid('SmartPagingFilePath', `must be an absolute path, not '${c.smartPagingFilePath}'`, c.name);
  if (c.boot.kind !== 'TestGuest' && c.boot.kind !== 'Kernel') throw invalid('Boot', 'unknown boot source', c.name);
  checkBootConfig(c);
  const slots = [...c.hardDrives, ...c.dvdDrives];
  if (!Number.isInteger(c.scsiControllers) || c.scsiControllers < 1 || c.scsiControllers > 4) throw invalid('ScsiControllers', `${c.scsiControllers} is outside 1–4`, c.name);
  if (c.floppyPath !== null && c.generation !== 1) throw invalid('FloppyDiskDrive', 'generation 2 VMs have no floppy drive', c.name);
  for (const [i, d] of slots.entries()) {
    checkSlot(d, c.generation, c.name);
    if (d.controllerType === 'SCSI' && d.controllerNumber >= c.scsiControllers) throw invalid('ControllerNumber', `SCSI controller ${d.controllerNumber} does not exist (the VM has ${c.scsiControllers})`, c.name);
    if (slots.findIndex((o) => sameSlot(o, d)) !== i) throw invalid('ControllerLocation', `two drives in ${slotText(d)}`, c.name);
  }
  for (const d of c.hardDrives) checkIops(d.maximumIops, d.minimumIops, c.name);
  for (const n of c.networkAdapters) {
    if (n.isLegacy && c.generation !== 1) throw invalid('IsLegacy', 'generation 2 VMs have no legacy network adapter', c.name);
    if (!/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/i.test(n.mac)) throw invalid('MacAddress', `bad MAC address ${n.mac}`, c.name);
    if (n.virtualSubnetId !== undefined) checkVsid(n.virtualSubnetId, 'VirtualSubnetId');
    // Checked as the cmdlets would have made them: a hand-edited vm.json cannot hold what they refuse.
    const i = n.isolation;
    if (i) setIsolation(defaultIsolation(), { IsolationMode: i.isolationMode, DefaultIsolationID: i.defaultIsolationId, AllowUntaggedTraffic: i.allowUntaggedTraffic, MultiTenantStack: i.multiTenantStack });
    (n.routingDomains ?? []).reduce<RoutingDomainMapping[]>((l, m) => addMapping(l, { RoutingDomainID: m.routingDomainId, RoutingDomainName: m.routingDomainName, IsolationID: m.isolationIds, IsolationName: m.isolationNames }), []);
  }
}
