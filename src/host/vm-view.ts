// Get-VM's output object, built from config + live state. PascalCase names follow the
// Hyper-V VirtualMachine object (shared/reference/hyperv-cmdlets.md §3) so scripts port over.
import type { VmConfig } from './vm-config.ts';
import { VM_ACTIONS, isLegal, unavailableActions, type VmAction, type VmState } from './vm-state.ts';
import type { BootSourceKind } from './boot-order.ts';
import type { MemoryStatus } from './memory-balancer.ts';

/** What the dynamic memory driver (vm-memory.ts) last saw of a running VM. */
export interface LiveMemory {
  assignedBytes: number;
  /** Hyper-V's MemoryDemand: what the guest uses, with its overhead, without the buffer. */
  demandBytes: number;
  status: MemoryStatus;
  /** Bytes plugged from the smart paging file (0: not in use). */
  pagingBytes: number;
}

export type HeartbeatStatus = 'Disabled' | 'NoContact' | 'OK' | 'LostCommunication' | 'Paused';

export interface VmLive {
  state: VmState;
  heartbeat: HeartbeatStatus;
  cpuUsage: number;
  uptimeMs: number;
  kvp: Record<string, unknown>;
  path: string;
  computerName: string;
  pid?: number;
  lastExitReason?: string;
  bootSource: BootSourceKind;
  bootFailure?: string;
  parentSnapshotName: string | null;
  resourceMeteringEnabled: boolean;
  /** Undefined while off, or before the memory driver's first look. */
  memory?: LiveMemory;
  /** A role of a failover cluster (src/cluster): its folder is in the cluster's shared folder. */
  clustered: boolean;
  /** Hyper-V Replica's view of the VM (src/replica); absent: not replicated. */
  replication?: ReplicationLook;
}

/** Get-VM's replication columns. */
export interface ReplicationLook { mode: 'Primary' | 'Replica' | 'TestReplica'; state: string; health: 'Normal' | 'Warning' | 'Critical' }

export interface VmView {
  Name: string;
  VMName: string;
  Id: string;
  VMId: string;
  State: VmState;
  Status: string;
  Heartbeat: HeartbeatStatus;
  Generation: number;
  ProcessorCount: number;
  MemoryStartup: number;
  MemoryAssigned: number;
  MemoryMinimum: number;
  MemoryMaximum: number;
  DynamicMemoryEnabled: boolean;
  /** Hyper-V's MemoryDemand: memory the guest uses (0 while off, or without dynamic memory). */
  MemoryDemand: number;
  /** "OK", "Low" (less than demand with buffer), "Warning" (less than the guest uses); empty without dynamic memory. */
  MemoryStatus: MemoryStatus;
  /** Set-VMMemory -Buffer (%) and -Priority, as Get-VMMemory shows them. */
  MemoryBuffer: number;
  MemoryPriority: number;
  SmartPagingFilePath: string;
  SmartPagingFileInUse: boolean;
  CPUUsage: number;
  Uptime: string;
  UptimeSeconds: number;
  NumaNodesCount: number;
  SecureBoot: boolean;
  Notes: string;
  Path: string;
  ConfigurationLocation: string;
  SnapshotFileLocation: string;
  CreationTime: string;
  ComputerName: string;
  IsClustered: boolean;
  ReplicationMode: 'None' | 'Primary' | 'Replica' | 'TestReplica';
  ReplicationState: string;
  ReplicationHealth: 'NotApplicable' | 'Normal' | 'Warning' | 'Critical';
  IntegrationServicesState: string;
  GuestKvp: Record<string, unknown>;
  ProcessId: number | null;
  /** vmhost: what the VM boots (Firmware: its disks/DVD/network in boot order; TestGuest: the built-in test guest; Kernel: a kernel given directly). */
  BootSource: BootSourceKind;
  /** The checkpoint the VM's current state grew from (Get-VMSnapshot), if any. */
  ParentSnapshotId: string | null;
  ParentSnapshotName: string | null;
  /** Enable-VMResourceMetering counts for the VM (Measure-VM answers). */
  ResourceMeteringEnabled: boolean;
  /** vmhost: the actions legal in this state (the table in vm-state.ts, power and device actions alike). */
  AllowedActions: VmAction[];
  /** vmhost: every other action with the words the API refuses it with, for a client to show on a greyed-out button. */
  UnavailableActions: Partial<Record<VmAction, string>>;
}

/** TimeSpan-style text, as PowerShell prints Uptime: d.hh:mm:ss or hh:mm:ss. */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return d > 0 ? `${d}.${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

function status(live: VmLive): string {
  if (live.bootFailure && live.state !== 'Off') return `Boot failure: ${live.bootFailure}`;
  if (live.lastExitReason && live.state === 'Off') return `Operating normally (last stop: ${live.lastExitReason})`;
  return 'Operating normally';
}

export function toView(c: VmConfig, live: VmLive): VmView {
  const active = live.state !== 'Off' && live.state !== 'Saved';
  const dynamic = c.dynamicMemory.enabled;
  const mem = active ? live.memory : undefined;
  return {
    Name: c.name,
    VMName: c.name,
    Id: c.id,
    VMId: c.id,
    State: live.state,
    Status: status(live),
    Heartbeat: live.heartbeat,
    Generation: c.generation,
    ProcessorCount: c.processorCount,
    MemoryStartup: c.memoryStartupBytes,
    MemoryAssigned: mem?.assignedBytes ?? (active ? c.memoryStartupBytes : 0),
    // Hyper-V shows the dynamic bounds whether or not dynamic memory is on.
    MemoryMinimum: c.dynamicMemory.minimumBytes,
    MemoryMaximum: c.dynamicMemory.maximumBytes,
    DynamicMemoryEnabled: dynamic,
    MemoryDemand: dynamic ? (mem?.demandBytes ?? 0) : 0,
    MemoryStatus: dynamic && mem ? mem.status : '',
    MemoryBuffer: c.dynamicMemory.bufferPercent,
    MemoryPriority: c.dynamicMemory.priority,
    SmartPagingFilePath: c.smartPagingFilePath ?? live.path,
    SmartPagingFileInUse: (mem?.pagingBytes ?? 0) > 0,
    CPUUsage: active ? live.cpuUsage : 0,
    Uptime: formatUptime(live.uptimeMs),
    UptimeSeconds: Math.floor(live.uptimeMs / 1000),
    NumaNodesCount: c.numaNodes,
    SecureBoot: c.secureBoot,
    Notes: c.notes,
    Path: live.path,
    ConfigurationLocation: live.path,
    SnapshotFileLocation: c.snapshotFileLocation,
    CreationTime: c.createdAt,
    ComputerName: live.computerName,
    IsClustered: live.clustered,
    ReplicationMode: live.replication?.mode ?? 'None',
    ReplicationState: live.replication?.state ?? 'Disabled',
    ReplicationHealth: live.replication?.health ?? 'NotApplicable',
    IntegrationServicesState: live.heartbeat === 'OK' ? 'Up to date' : '',
    GuestKvp: live.kvp,
    ProcessId: live.pid ?? null,
    BootSource: live.bootSource,
    ParentSnapshotId: c.parentSnapshotId,
    ParentSnapshotName: live.parentSnapshotName,
    ResourceMeteringEnabled: live.resourceMeteringEnabled,
    AllowedActions: VM_ACTIONS.filter((a) => isLegal(a, live.state)),
    UnavailableActions: unavailableActions(live.state, c.name),
  };
}
