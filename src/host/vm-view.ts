// Get-VM's output object, built from config + live state. PascalCase names follow the
// Hyper-V VirtualMachine object (shared/reference/hyperv-cmdlets.md §3) so scripts port over.
import type { VmConfig } from './vm-config.ts';
import { VM_ACTIONS, isLegal, unavailableActions, type VmAction, type VmState } from './vm-state.ts';
import type { BootSourceKind } from './boot-order.ts';

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
}

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
    MemoryAssigned: active ? c.memoryStartupBytes : 0,
    MemoryMinimum: c.memoryStartupBytes,
    MemoryMaximum: c.memoryStartupBytes,
    DynamicMemoryEnabled: false,
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
    IsClustered: false,
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
