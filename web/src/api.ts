// The one way the web console talks to vmhostd: JSON over /api/v1 with the session cookie
// (same origin, so the browser adds it; the token itself never reaches this code after
// sign-in). Errors arrive as the API's own {code, message}; a 401 anywhere means the
// session ended, and the app goes back to the sign-in page.
import type { VmState } from '../../src/host/vm-state.ts';

export type { VmState };

/**
 * Get-VM's object as the API sends it (src/host/vm-view.ts), the fields the console shows.
 * Written out here rather than imported: the host's config types pull in Node modules, and
 * this app compiles with DOM types only. vm-state.ts is imported because it must stay
 * runtime-free — this build fails if it stops being so.
 */
export interface VmView {
  Name: string;
  Id: string;
  State: VmState;
  Status: string;
  Heartbeat: 'Disabled' | 'NoContact' | 'OK' | 'LostCommunication' | 'Paused';
  Generation: number;
  ProcessorCount: number;
  MemoryStartup: number;
  MemoryAssigned: number;
  CPUUsage: number;
  Uptime: string;
  UptimeSeconds: number;
  NumaNodesCount: number;
  SecureBoot: boolean;
  Notes: string;
  Path: string;
  CreationTime: string;
  ComputerName: string;
  GuestKvp: Record<string, unknown>;
  ProcessId: number | null;
  /** Enable-VMResourceMetering counts for it (Measure-VM answers). */
  ResourceMeteringEnabled: boolean;
  /** What a start boots: the VM's own devices through its firmware, the built-in test guest, or a kernel given directly. */
  BootSource: 'Firmware' | 'TestGuest' | 'Kernel';
  /** The checkpoint the VM runs from (its place in the checkpoint tree: Hyper-V's "Now"); null before any. */
  ParentSnapshotId: string | null;
  ParentSnapshotName: string | null;
}

/** One host event (src/host/events.ts; repeated here because that file needs Node). */
export interface HostEvent {
  Seq: number;
  Time: string;
  Level: 'Information' | 'Warning' | 'Error';
  Code: string;
  Message: string;
  VMId?: string;
  VMName?: string;
  JobId?: string;
}

/** One job (src/host/jobs.ts). */
export interface Job {
  Id: string;
  Name: string;
  VMId?: string;
  VMName?: string;
  State: 'Running' | 'Completed' | 'Failed';
  PercentComplete: number;
  StatusDescription: string;
  StartTime: string;
  EndTime?: string;
  Error?: { Code: string; Message: string };
}

export interface HostView {
  ComputerName: string;
  LogicalProcessorCount: number;
  MemoryCapacity: number;
  FreeMemory: number;
  VirtualMachinePath: string;
  VirtualMachineCount: number;
  RunningVirtualMachineCount: number;
  Accelerator: string;
  QemuVersion: string;
  Version: string;
  CpuModel: string;
  DataDir: string;
  /** The dynamic MAC pool (Set-VMHost -MacAddressMinimum/-MacAddressMaximum), 12 hex digits each. */
  MacAddressMinimum: string;
  MacAddressMaximum: string;
}

export interface IntegrationService {
  Name: string;
  Enabled: boolean;
  PrimaryStatusDescription: string;
  OperationalStatus: string;
}

export interface SessionView {
  Authenticated: boolean;
  Via: 'session' | 'token';
  ExpiresAt?: string;
  /** Who is signed in (the host token signs in as the built-in Administrator) and their role. */
  UserName?: string;
  Role?: string;
  ComputerName: string;
  Version: string;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly context: Record<string, unknown> = {}) {
    super(message);
  }
}

let unauthorized: () => void = () => undefined;

/** Called on any 401 except the sign-in call itself. */
export function onUnauthorized(fn: () => void): void {
  unauthorized = fn;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  if (!res.ok) {
    const e = json as { code?: string; message?: string; context?: Record<string, unknown> } | undefined;
    if (res.status === 401 && !(method === 'POST' && path === '/session')) unauthorized();
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text || res.statusText), e?.context ?? {});
  }
  return (json === undefined ? text : json) as T;
}

export const vmPath = (vm: string) => `/vms/${encodeURIComponent(vm)}`;

/** Lifecycle verbs as the API names them; all answer with a job at once (?wait=false). */
export type VmVerb = 'start' | 'shutdown' | 'turnoff' | 'save' | 'suspend' | 'resume' | 'restart';

export function runAction(vmId: string, verb: VmVerb): Promise<Job> {
  const base = `${vmPath(vmId)}`;
  switch (verb) {
    case 'shutdown': return api<Job>('POST', `${base}/stop?wait=false`, {});
    case 'turnoff': return api<Job>('POST', `${base}/stop?wait=false`, { TurnOff: true });
    default: return api<Job>('POST', `${base}/${verb}?wait=false`);
  }
}

/** The parameter a 400 is about: the API names it in context.param or at the start of the message. */
export function errorParam(e: ApiError, known: readonly string[]): string | undefined {
  const fromContext = typeof e.context.param === 'string' ? e.context.param : undefined;
  if (fromContext) return fromContext;
  return known.find((k) => e.message.startsWith(`${k}:`) || e.message.includes(`'${k}'`));
}

// ---- networking and storage views (src/host/vm-network.ts, src/host/vm-drives.ts) ----

/** Switch counters as the switch module names them (the CLI's -Json Pascal-cases them; the API does not). */
export interface PortCounters { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number; drops: Record<string, number> }

/** Get-VMSwitch. */
export interface SwitchView {
  Name: string;
  Id: string;
  SwitchType: 'Private' | 'Internal' | 'External';
  Notes: string;
  MinimumBandwidthMode: 'Absolute' | 'Weight';
  Ports: number;
  ConnectedPorts: number;
  Extensions: string[];
  Statistics: PortCounters & { macEntries: number };
  NetAdapterName: string | null;
  NetAdapterInterfaceDescription: string | null;
  AllowManagementOS: boolean;
  /** vmhost: Degraded when an External switch's host adapter is missing. */
  Status: 'OK' | 'Degraded';
}

/** Get-NetAdapter: the host's "physical" adapters (UDP tunnels declared with vmhostd --net-adapter). */
export interface NetAdapterView { Name: string; InterfaceDescription: string; Status: string; VMSwitchName: string | null }

/** Get-VMNetworkAdapter -ManagementOS: the host's own vNICs (Linux taps). */
export interface HostNicView { Name: string; Id: string; SwitchName: string; MacAddress: string; InterfaceName: string; Status: string[]; IPAddresses: string[] }

/** Get-VMSwitchExtension. */
export interface SwitchExtension { Name: string; ExtensionType: string; Description: string; Enabled: boolean }

/** Get-VMNetworkAdapter. */
export interface AdapterView {
  Name: string;
  Id: string;
  SwitchName: string | null;
  MacAddress: string;
  DynamicMacAddressEnabled: boolean;
  IsLegacy: boolean;
  IPAddresses: string[];
  Status: string[];
  Connected: boolean;
  MacAddressSpoofing: 'On' | 'Off';
  DhcpGuard: 'On' | 'Off';
  RouterGuard: 'On' | 'Off';
  PortMirroringMode: 'None' | 'Source' | 'Destination';
  VlanSetting: {
    OperationMode: 'Untagged' | 'Access' | 'Trunk' | 'Private'; AccessVlanId: number; NativeVlanId: number; AllowedVlanIdList: string;
    PrivateVlanMode: 'Isolated' | 'Community' | 'Promiscuous' | null; PrimaryVlanId: number; SecondaryVlanId: number; SecondaryVlanIdList: string;
  };
  BandwidthSetting: { MaximumBandwidth: number; MinimumBandwidthAbsolute: number; MinimumBandwidthWeight: number };
}

/** Get-VMHardDiskDrive. */
export interface HardDriveView {
  Id: string;
  Name: string;
  Path: string;
  ControllerType: 'IDE' | 'SCSI';
  ControllerNumber: number;
  ControllerLocation: number;
  MaximumIOPS: number;
  MinimumIOPS: number;
  NbdUri: string | null;
}

/** Get-VMDvdDrive. */
export interface DvdDriveView { Id: string; Name: string; Path: string | null; ControllerType: 'IDE' | 'SCSI'; ControllerNumber: number; ControllerLocation: number }

/** Measure-VM's per-disk counters. */
export interface DiskMetrics {
  Path: string; ReadOperations: number; WriteOperations: number; DataRead: number; DataWritten: number;
  NormalizedIOPS: number; AverageLatencyMs: number; Errors: number;
}

export const switchPath = (name: string) => `/switches/${encodeURIComponent(name)}`;

// ---- checkpoints (src/host/vm-checkpoints.ts) ----

/** Get-VMSnapshot, the fields the console shows. */
export interface SnapshotView {
  Name: string;
  Id: string;
  CreationTime: string;
  ParentSnapshotId: string | null;
  /** What the VM was doing when it was taken: Running and Paused checkpoints carry its memory. */
  State: VmState;
  HardDrives: string[];
}

export const snapshotPath = (vm: string, snapshot?: string) => `${vmPath(vm)}/snapshots${snapshot ? `/${encodeURIComponent(snapshot)}` : ''}`;

// ---- firmware (src/host/vm-firmware.ts, src/host/boot-order.ts) ----

/** One device in a generation 2 boot order (Get-VMFirmware's BootOrder). */
export interface BootEntryView { BootType: 'Drive' | 'Network'; Device: string; Description: string; DeviceRef: string; Id: string }

/** Get-VMFirmware (generation 2). */
export interface FirmwareView { SecureBoot: 'On' | 'Off'; BootOrder: BootEntryView[] }

/** The device classes of a generation 1 startup order (Get-VMBios). */
export type BiosDevice = 'CD' | 'IDE' | 'LegacyNetworkAdapter' | 'Floppy';

/** Get-VMBios (generation 1). */
export interface BiosView { StartupOrder: BiosDevice[]; NumLockEnabled: boolean }

// Failover Clustering (routes-cluster.ts; shapes from src/cluster/cluster-admin.ts).
export interface ClusterView { Name: string; Id: string; DynamicQuorum: number; WitnessDynamicWeight: number; SharedVolumesRoot: string }
export interface ClusterNodeView { Name: string; Id: string; State: 'Up' | 'Down' | 'Paused'; NodeWeight: number; DynamicWeight: number; DrainStatus: string }
export type ClusterPriority = 3000 | 2000 | 1000 | 0;
/** Get-ClusterSharedVolume (routes-cluster-csv.ts; src/cluster/csv-service.ts): OwnerNode is the volume's coordinator. */
export interface ClusterSharedVolumeView { Name: string; Id: string; State: 'Online' | 'Offline'; OwnerNode: string; Path: string; Files: string[] }
export interface ClusterGroupView {
  Name: string; Id: string; OwnerNode: string; State: string; Priority: ClusterPriority; PersistentState: number; OwnerNodes: string[];
}
