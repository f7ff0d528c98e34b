// Request schemas: the single source for request validation (fastify + ajv) and for the
// OpenAPI document. Property names are the cmdlet parameter names, so a CLI parameter, a
// JSON body field and an OpenAPI property are the same word.
import { Type, type Static } from '@sinclair/typebox';

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'VM name (unique on the host, case-insensitive)' });
const Bytes = Type.Integer({ minimum: 0, description: 'Size in bytes' });

export const VmRef = Type.Object({ vm: Type.String({ minLength: 1, description: 'VM id or exact name' }) });

export const NewVmBody = Type.Object({
  Name,
  Generation: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2)])),
  MemoryStartupBytes: Type.Optional(Bytes),
  ProcessorCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  Notes: Type.Optional(Type.String({ maxLength: 4096 })),
  NewVHDPath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Create a dynamic VHDX/VHD here (absolute host path) and attach it (IDE 0:0 on generation 1, SCSI 0:0 on 2)' })),
  NewVHDSizeBytes: Type.Optional(Type.Integer({ minimum: 1, description: 'Size of the new disk' })),
  VHDPath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Attach this existing disk' })),
  SwitchName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Connect the VM\'s network adapter to this switch' })),
  BootDevice: Type.Optional(Type.Union([
    Type.Literal('CD'), Type.Literal('Floppy'), Type.Literal('LegacyNetworkAdapter'), Type.Literal('IDE'), Type.Literal('NetworkAdapter'), Type.Literal('VHD'),
  ], { description: 'Boot first from this device class (generation 2: CD, VHD, NetworkAdapter)' })),
}, { additionalProperties: false });
export type NewVmBody = Static<typeof NewVmBody>;

const DeviceRef = Type.String({ minLength: 1, maxLength: 200, description: 'SCSI:<controller>:<location>, NetworkAdapter[:<name>] or a device Id (Get-VMFirmware DeviceRef)' });

export const SetFirmwareBody = Type.Object({
  EnableSecureBoot: Type.Optional(Type.Boolean()),
  BootOrder: Type.Optional(Type.Array(DeviceRef, { minItems: 1, maxItems: 80 })),
  FirstBootDevice: Type.Optional(DeviceRef),
}, { additionalProperties: false, minProperties: 1 });
export type SetFirmwareBody = Static<typeof SetFirmwareBody>;

export const SetBiosBody = Type.Object({
  StartupOrder: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 40 }), { minItems: 1, maxItems: 8, description: 'CD, IDE, LegacyNetworkAdapter, Floppy — each once' })),
  EnableNumLock: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1 });
export type SetBiosBody = Static<typeof SetBiosBody>;

export const ScsiControllerQuery = Type.Object({ ControllerNumber: Type.Integer({ minimum: 0, maximum: 3 }) }, { additionalProperties: false });
export type ScsiControllerQuery = Static<typeof ScsiControllerQuery>;

export const FloppyBody = Type.Object({
  Path: Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()], { description: 'A .vfd virtual floppy disk; null removes it' }),
}, { additionalProperties: false });
export type FloppyBody = Static<typeof FloppyBody>;

export const ComPortParams = Type.Object({ vm: Type.String({ minLength: 1, maxLength: 100 }), number: Type.Integer({ minimum: 1, maximum: 2 }) });
export const ComPortBody = Type.Object({
  Path: Type.String({ maxLength: 4096, description: 'Unix socket QEMU listens on (Hyper-V: a named pipe); empty disconnects' }),
}, { additionalProperties: false });
export type ComPortBody = Static<typeof ComPortBody>;

export const DebugBody = Type.Object({
  InjectNonMaskableInterrupt: Type.Literal(true),
}, { additionalProperties: false });
export type DebugBody = Static<typeof DebugBody>;

export const SetVmBody = Type.Object({
  NewVMName: Type.Optional(Name),
  ProcessorCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  MemoryStartupBytes: Type.Optional(Bytes),
  DynamicMemoryEnabled: Type.Optional(Type.Boolean({ description: 'Set-VMMemory -DynamicMemoryEnabled; Set-VM -DynamicMemory/-StaticMemory (VM off)' })),
  MemoryMinimumBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Dynamic memory minimum (may be lowered while the VM runs)' })),
  MemoryMaximumBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Dynamic memory maximum (may be raised while the VM runs)' })),
  MemoryBuffer: Type.Optional(Type.Integer({ description: 'Set-VMMemory -Buffer: memory kept above the guest\'s use, % (5–2000)' })),
  MemoryPriority: Type.Optional(Type.Integer({ description: 'Set-VMMemory -Priority: memory weight when the host is short (0–100)' })),
  SmartPagingFilePath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Folder of the smart paging file (absolute)' })),
  NumaNodes: Type.Optional(Type.Integer({ minimum: 1, maximum: 8 })),
  Notes: Type.Optional(Type.String({ maxLength: 4096 })),
  EnableSecureBoot: Type.Optional(Type.Boolean()),
  SnapshotFileLocation: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
}, { additionalProperties: false, minProperties: 1 });
export type SetVmBody = Static<typeof SetVmBody>;

export const StopBody = Type.Object({
  TurnOff: Type.Optional(Type.Boolean()),
  Force: Type.Optional(Type.Boolean()),
  Save: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type StopBody = Static<typeof StopBody>;

export const ActionQuery = Type.Object({
  wait: Type.Optional(Type.Boolean({ default: true, description: 'Wait for the job to finish (false: return 202 with the job at once)' })),
}, { additionalProperties: false });

export const RemoveQuery = Type.Object({ force: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false });

export const InvokeBody = Type.Object({
  ScriptBlock: Type.String({ minLength: 1, maxLength: 1_000_000, description: 'Shell command run with /bin/sh in the guest' }),
  TimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: 60 })),
}, { additionalProperties: false });
export type InvokeBody = Static<typeof InvokeBody>;

export const InvokeResult = Type.Object({
  StdOut: Type.String({ description: 'base64' }),
  StdErr: Type.String({ description: 'base64' }),
  ExitCode: Type.Integer(),
});

// Copy-VMFile (Guest Services): a file on the daemon's host into a running guest.
export const CopyFileBody = Type.Object({
  SourcePath: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path of a regular file on the daemon\'s host' }),
  DestinationPath: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path of the file to create in the guest' }),
  FileSource: Type.String({ minLength: 1, description: 'Host (the only direction Hyper-V 2012 R2 supports)' }),
  CreateFullPath: Type.Optional(Type.Boolean({ description: 'Create missing guest directories' })),
  Force: Type.Optional(Type.Boolean({ description: 'Replace an existing guest file' })),
}, { additionalProperties: false });
export type CopyFileBody = Static<typeof CopyFileBody>;

export const IntegrationServiceBody = Type.Object({
  Name: Type.String({ minLength: 1 }),
  Enabled: Type.Boolean(),
}, { additionalProperties: false });
export type IntegrationServiceBody = Static<typeof IntegrationServiceBody>;

export const ConsoleQuery = Type.Object({
  TailBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024, default: 65536 })),
}, { additionalProperties: false });

export const EventsQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0 })),
  vm: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
}, { additionalProperties: false });

export const JobRef = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

const ControllerType = Type.Union([Type.Literal('IDE'), Type.Literal('SCSI')]);
const Iops = Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Normalized IOPS (each 8 KB counts as one); 0 = none' });
const FilePath = Type.String({ minLength: 1, maxLength: 4096, description: 'Path of a VHDX/VHD/raw file on the host' });

export const AddHardDriveBody = Type.Object({
  Path: FilePath,
  ControllerType: Type.Optional(ControllerType),
  ControllerNumber: Type.Optional(Type.Integer({ minimum: 0, maximum: 3 })),
  ControllerLocation: Type.Optional(Type.Integer({ minimum: 0, maximum: 63 })),
  MaximumIOPS: Type.Optional(Iops),
  MinimumIOPS: Type.Optional(Iops),
}, { additionalProperties: false });
export type AddHardDriveBody = Static<typeof AddHardDriveBody>;

export const DriveSlotQuery = Type.Object({
  ControllerType: ControllerType,
  ControllerNumber: Type.Integer({ minimum: 0, maximum: 3 }),
  ControllerLocation: Type.Integer({ minimum: 0, maximum: 63 }),
}, { additionalProperties: false });
export type DriveSlotQuery = Static<typeof DriveSlotQuery>;

export const SetHardDriveBody = Type.Object({
  Path: Type.Optional(FilePath),
  MaximumIOPS: Type.Optional(Iops),
  MinimumIOPS: Type.Optional(Iops),
}, { additionalProperties: false, minProperties: 1 });
export type SetHardDriveBody = Static<typeof SetHardDriveBody>;

export const AddDvdDriveBody = Type.Object({
  Path: Type.Optional(FilePath),
  ControllerNumber: Type.Optional(Type.Integer({ minimum: 0, maximum: 3 })),
  ControllerLocation: Type.Optional(Type.Integer({ minimum: 0, maximum: 63 })),
}, { additionalProperties: false });
export type AddDvdDriveBody = Static<typeof AddDvdDriveBody>;

export const SetDvdDriveBody = Type.Object({
  Path: Type.Union([FilePath, Type.Null()], { description: 'ISO to insert (also while the VM runs); null ejects' }),
}, { additionalProperties: false });
export type SetDvdDriveBody = Static<typeof SetDvdDriveBody>;

export const DvdSlotQuery = Type.Object({
  ControllerNumber: Type.Integer({ minimum: 0, maximum: 3 }),
  ControllerLocation: Type.Integer({ minimum: 0, maximum: 63 }),
}, { additionalProperties: false });

export const ResizeAttachedBody = Type.Object({
  Path: FilePath,
  SizeBytes: Type.Integer({ minimum: 1 }),
}, { additionalProperties: false });
export type ResizeAttachedBody = Static<typeof ResizeAttachedBody>;

export const NewVhdBody = Type.Object({
  Path: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute host path of the new file, named .vhdx or .vhd (the format); it must not exist' }),
  SizeBytes: Type.Integer({ minimum: 3 * 1024 * 1024, multipleOf: 512, description: 'Virtual size: at least 3 MB, a multiple of 512 bytes' }),
}, { additionalProperties: false });
export type NewVhdBody = Static<typeof NewVhdBody>;

export const MountBody = Type.Object({ Path: FilePath, ReadOnly: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type MountBody = Static<typeof MountBody>;

export const PathQuery = Type.Object({ Path: FilePath }, { additionalProperties: false });

// ---- networking (switches, adapters, VLANs, ACLs, extensions) ----
const OnOff = Type.Union([Type.Literal('On'), Type.Literal('Off')]);
const VlanId = Type.Integer({ minimum: 1, maximum: 4094 });
const Bits = Type.Integer({ minimum: 0, description: 'bits per second; 0 = none' });

export const SwitchRef = Type.Object({ name: Type.String({ minLength: 1, description: 'Switch name' }) });

const SwitchType = Type.Union([Type.Literal('Private'), Type.Literal('Internal'), Type.Literal('External')]);
// External switches: the host network adapter (Get-NetAdapter), by name or description; either implies External.
const SwitchBinding = {
  SwitchType: Type.Optional(SwitchType),
  NetAdapterName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Host network adapter (vmhostd --net-adapter); implies External' })),
  NetAdapterInterfaceDescription: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The adapter by its InterfaceDescription instead of its name' })),
  AllowManagementOS: Type.Optional(Type.Boolean({ description: 'true: the host gets a vNIC (a tap) on the switch; default false for External (unlike Hyper-V: the host\'s management network is its real NIC)' })),
};

export const NewSwitchBody = Type.Object({
  Name: Type.String({ minLength: 1, maxLength: 100 }),
  ...SwitchBinding,
  MinimumBandwidthMode: Type.Optional(Type.Union([Type.Literal('Absolute'), Type.Literal('Weight')])),
  Notes: Type.Optional(Type.String({ maxLength: 4096 })),
}, { additionalProperties: false });
export type NewSwitchBody = Static<typeof NewSwitchBody>;

export const SetSwitchBody = Type.Object({
  ...SwitchBinding,
  Notes: Type.Optional(Type.String({ maxLength: 4096 })),
  DefaultFlowMinimumBandwidthWeight: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  DefaultFlowMinimumBandwidthAbsolute: Type.Optional(Bits),
}, { additionalProperties: false, minProperties: 1 });
export type SetSwitchBody = Static<typeof SetSwitchBody>;

export const ExtensionBody = Type.Object({ Name: Type.String({ minLength: 1 }), Enabled: Type.Boolean() }, { additionalProperties: false });
export type ExtensionBody = Static<typeof ExtensionBody>;

export const AdapterQuery = Type.Object({ Name: Type.Optional(Type.String({ minLength: 1, description: 'Adapter name; absent = every adapter of the VM' })) }, { additionalProperties: false });
export type AdapterQuery = Static<typeof AdapterQuery>;

export const AddAdapterBody = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  SwitchName: Type.Optional(Type.String({ minLength: 1 })),
  StaticMacAddress: Type.Optional(Type.String({ minLength: 12, maxLength: 17 })),
  IsLegacy: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type AddAdapterBody = Static<typeof AddAdapterBody>;

export const ConnectBody = Type.Object({ SwitchName: Type.String({ minLength: 1 }) }, { additionalProperties: false });
export type ConnectBody = Static<typeof ConnectBody>;

export const SetAdapterBody = Type.Object({
  MacAddressSpoofing: Type.Optional(OnOff), DhcpGuard: Type.Optional(OnOff), RouterGuard: Type.Optional(OnOff), ArpGuard: Type.Optional(OnOff),
  PortMirroring: Type.Optional(Type.Union([Type.Literal('None'), Type.Literal('Source'), Type.Literal('Destination')])),
  MaximumBandwidth: Type.Optional(Bits), MinimumBandwidthAbsolute: Type.Optional(Bits),
  MinimumBandwidthWeight: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  VirtualSubnetId: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_777_214 })),
}, { additionalProperties: false, minProperties: 1 });
export type SetAdapterBody = Static<typeof SetAdapterBody>;

export const SetVlanBody = Type.Object({
  Untagged: Type.Optional(Type.Boolean()), Access: Type.Optional(Type.Boolean()), Trunk: Type.Optional(Type.Boolean()),
  Isolated: Type.Optional(Type.Boolean()), Community: Type.Optional(Type.Boolean()), Promiscuous: Type.Optional(Type.Boolean()),
  VlanId: Type.Optional(VlanId), AllowedVlanIdList: Type.Optional(Type.Array(VlanId, { minItems: 1 })),
  NativeVlanId: Type.Optional(Type.Integer({ minimum: 0, maximum: 4094 })), PrimaryVlanId: Type.Optional(VlanId),
  SecondaryVlanId: Type.Optional(VlanId), SecondaryVlanIdList: Type.Optional(Type.Array(VlanId, { minItems: 1 })),
}, { additionalProperties: false });
export type SetVlanBody = Static<typeof SetVlanBody>;

export const ExtendedAclBody = Type.Object({
  Direction: Type.Union([Type.Literal('Inbound'), Type.Literal('Outbound')]),
  Action: Type.Union([Type.Literal('Allow'), Type.Literal('Deny')]),
  Weight: Type.Integer({ minimum: 0 }),
  LocalIPAddress: Type.Optional(Type.String()), RemoteIPAddress: Type.Optional(Type.String()), Protocol: Type.Optional(Type.String()),
  LocalPort: Type.Optional(Type.String()), RemotePort: Type.Optional(Type.String()),
  Stateful: Type.Optional(Type.Boolean()), IdleSessionTimeout: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });
export type ExtendedAclBody = Static<typeof ExtendedAclBody>;

export const ExtendedAclQuery = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1 })),
  Direction: Type.Union([Type.Literal('Inbound'), Type.Literal('Outbound')]),
  Weight: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
export type ExtendedAclQuery = Static<typeof ExtendedAclQuery>;

export const AclBody = Type.Object({
  Direction: Type.Union([Type.Literal('Inbound'), Type.Literal('Outbound'), Type.Literal('Both')]),
  Action: Type.Union([Type.Literal('Allow'), Type.Literal('Deny'), Type.Literal('Meter')]),
  RemoteIPAddress: Type.Optional(Type.String()), RemoteMacAddress: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type AclBody = Static<typeof AclBody>;

// Start-/Stop-VMSwitchCapture (vmhost extension): the switch, or one VM adapter's port on it.
const CaptureTarget = {
  VMName: Type.Optional(Type.String({ minLength: 1, description: 'Capture this VM\'s adapter on the switch instead of the whole switch' })),
  VMNetworkAdapterName: Type.Optional(Type.String({ minLength: 1, description: 'Which adapter, when the VM has several on the switch' })),
};
export const StartCaptureBody = Type.Object({
  ...CaptureTarget,
  Path: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path of the pcap file on the daemon\'s host; its directory must exist' }),
  Force: Type.Optional(Type.Boolean({ description: 'Overwrite an existing file' })),
  MaxBytes: Type.Optional(Type.Integer({ minimum: 4096, description: 'Stop the capture before the file grows beyond this many bytes (default 1 GiB); an event says so' })),
}, { additionalProperties: false });
export type StartCaptureBody = Static<typeof StartCaptureBody>;
export const CaptureQuery = Type.Object(CaptureTarget, { additionalProperties: false });
export type CaptureQuery = Static<typeof CaptureQuery>;

// NIC teaming (New-NetLbfoTeam …) over the host's network adapters; Disable-/Enable-NetAdapter.
const LoadBalancingAlgorithm = Type.Union([Type.Literal('TransportPorts'), Type.Literal('IPAddresses'), Type.Literal('MacAddresses'), Type.Literal('HyperVPort'), Type.Literal('Dynamic')], {
  description: 'TransportPorts: by IP addresses and TCP/UDP ports, else IP addresses, else MACs (Address Hash); IPAddresses; MacAddresses; HyperVPort: by switch port; Dynamic: flowlets, a flow moves only after 50 ms idle',
});
const TeamingMode = Type.Union([Type.Literal('SwitchIndependent'), Type.Literal('Static'), Type.Literal('Lacp')], {
  description: 'SwitchIndependent; Static (switch-dependent, no negotiation); Lacp (IEEE 802.1AX with the far end\'s team)',
});
const LacpTimer = Type.Union([Type.Literal('Fast'), Type.Literal('Slow')], { description: 'Lacp: LACPDUs every 1 s and a partner lost after 3 s (Fast), or 30 s and 90 s (Slow)' });
export const TeamRef = Type.Object({ name: Type.String({ minLength: 1, description: 'Team name' }) });
export const NetAdapterRef = Type.Object({ name: Type.String({ minLength: 1, description: 'Network adapter name' }) });
export const TeamMemberRef = Type.Object({ name: Type.String({ minLength: 1, description: 'Team name' }), member: Type.String({ minLength: 1, description: 'Network adapter name' }) });
export const NewTeamBody = Type.Object({
  Name: Type.String({ minLength: 1, maxLength: 100 }),
  TeamMembers: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 32, description: 'Declared network adapters (Get-NetAdapter)' }),
  TeamingMode: Type.Optional(TeamingMode),
  LoadBalancingAlgorithm: Type.Optional(LoadBalancingAlgorithm),
  LacpTimer: Type.Optional(LacpTimer),
}, { additionalProperties: false });
export type NewTeamBody = Static<typeof NewTeamBody>;
export const SetTeamBody = Type.Object({
  TeamingMode: Type.Optional(TeamingMode), LoadBalancingAlgorithm: Type.Optional(LoadBalancingAlgorithm), LacpTimer: Type.Optional(LacpTimer),
}, { additionalProperties: false, minProperties: 1 });
export type SetTeamBody = Static<typeof SetTeamBody>;
export const TeamMemberBody = Type.Object({ Name: Type.String({ minLength: 1, maxLength: 100, description: 'The network adapter to add' }) }, { additionalProperties: false });
export type TeamMemberBody = Static<typeof TeamMemberBody>;
export const TeamQuery = Type.Object({ Team: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false });
export type TeamQuery = Static<typeof TeamQuery>;
