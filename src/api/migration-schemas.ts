// Request shapes of Move-VM and the host's migration settings. The prepare body carries the
// VM's whole config, which the destination checks as it checks any vm.json (config-version.ts
// upgrade, checkConfig), so here only its envelope is typed.
import { Type, type Static } from '@sinclair/typebox';

const Uuid = Type.String({ format: 'uuid' });

export const MigrationSettingsBody = Type.Object({
  VirtualMachineMigrationEnabled: Type.Optional(Type.Boolean()),
  MaximumVirtualMachineMigrations: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  MaximumStorageMigrations: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  VirtualMachineMigrationPerformanceOption: Type.Optional(Type.Union([Type.Literal('TCPIP'), Type.Literal('Compression'), Type.Literal('SMB')])),
  VirtualMachineMigrationAuthenticationType: Type.Optional(Type.Union([Type.Literal('CredSSP'), Type.Literal('Kerberos')])),
  UseAnyNetworkForMigration: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type MigrationSettingsBody = Static<typeof MigrationSettingsBody>;

export const TicketBody = Type.Object({ VMId: Uuid }, { additionalProperties: false });
export type TicketBody = Static<typeof TicketBody>;

export const MoveBody = Type.Object({
  DestinationHost: Type.String({ minLength: 3, maxLength: 300, description: 'HOST:PORT of the destination daemon' }),
  Ticket: Type.Optional(Type.String({ minLength: 16, maxLength: 200, description: 'The ticket the destination issued to the caller for this VM' })),
  Credential: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Instead of a ticket (the web console): the caller\'s token on the destination, used once to get one, never stored' })),
  IncludeStorage: Type.Optional(Type.Boolean({ description: 'Shared-nothing: copy the disks to the destination live, then the memory' })),
  DestinationStoragePath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Folder on the destination for every disk not named in Vhds (absolute)' })),
  Vhds: Type.Optional(Type.Array(Type.Object({
    SourceFilePath: Type.String({ minLength: 1, maxLength: 4096 }), DestinationFilePath: Type.String({ minLength: 1, maxLength: 4096 }),
  }, { additionalProperties: false }), { maxItems: 256, description: 'Per-disk destinations on the destination host (absolute)' })),
  VirtualMachinePath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Refused: the configuration goes to the destination\'s data folder' })),
  SnapshotFilePath: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Folder on the destination for checkpoint records (none travel yet)' })),
  RetainVhdCopiesOnSource: Type.Optional(Type.Boolean({ description: 'Keep the source\'s disk files after a successful move' })),
}, { additionalProperties: false });
export type MoveBody = Static<typeof MoveBody>;

const Geometry = Type.Object({
  virtualSize: Type.Integer({ minimum: 1 }),
  logicalSectorSize: Type.Union([Type.Literal(512), Type.Literal(4096)]),
  physicalSectorSize: Type.Union([Type.Literal(512), Type.Literal(4096)]),
}, { additionalProperties: false });

const AbsolutePath = Type.String({ minLength: 2, maxLength: 4096, pattern: '^/' });
/** A file name in the VM's checkpoint folder: no separator, not `.` or `..`. */
const FileName = Type.String({ minLength: 1, maxLength: 255, pattern: '^(?!\\.\\.?$)[^/\\x00]+$' });
const StreamName = Type.String({ pattern: '^file:[0-9]{1,4}$' });

export const PrepareBody = Type.Object({
  config: Type.Object({ id: Uuid, name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: true }),
  disks: Type.Record(Type.String(), Geometry),
  chs: Type.Record(Type.String(), Type.Object({
    cyls: Type.Integer({ minimum: 1, maximum: 65535 }), heads: Type.Integer({ minimum: 1, maximum: 255 }), secs: Type.Integer({ minimum: 1, maximum: 255 }),
  }, { additionalProperties: false })),
  firmwareVars: Type.Optional(Type.String({ maxLength: 16 * 1024 * 1024 })),
  boot: Type.Union([Type.Literal('Firmware'), Type.Literal('TestGuest'), Type.Literal('Kernel')]),
  counters: Type.Record(Type.String(), Type.Unknown()),
  performance: Type.Union([Type.Literal('TCPIP'), Type.Literal('Compression'), Type.Literal('SMB')]),
  sourceHost: Type.String({ maxLength: 300 }),
  snapshotFilePath: Type.Optional(Type.String({ minLength: 2, maxLength: 4096 })),
  storage: Type.Optional(Type.Record(Type.String(), Type.Object({
    path: Type.String({ minLength: 2, maxLength: 4096 }), format: Type.Union([Type.Literal('VHDX'), Type.Literal('VHD')]),
    parent: Type.Optional(AbsolutePath),
  }, { additionalProperties: false }))),
  /** The VM's checkpoint records (host/vm-checkpoints.ts CheckpointRecord): their ids and memory names become file names here. */
  checkpoints: Type.Optional(Type.Array(Type.Object({
    id: Uuid, parentId: Type.Union([Uuid, Type.Null()]), name: Type.String({ minLength: 1, maxLength: 100 }), memory: Type.Union([FileName, Type.Null()]),
    config: Type.Object({ id: Uuid, name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: true }),
  }, { additionalProperties: true }), { maxItems: 50 })),
  /** Files sent as files before the mirrors (host/move-incoming-files.ts IncomingFile). */
  files: Type.Optional(Type.Array(Type.Union([
    Type.Object({ stream: StreamName, size: Type.Integer({ minimum: 0 }), kind: Type.Literal('memory'), name: FileName }, { additionalProperties: false }),
    Type.Object({ stream: StreamName, size: Type.Integer({ minimum: 0 }), kind: Type.Literal('disk'), path: AbsolutePath, parent: Type.Union([AbsolutePath, Type.Null()]) }, { additionalProperties: false }),
  ]), { maxItems: 1024 })),
  /** Dynamic memory: the source machine's boot RAM and virtio-mem region, which the destination's QEMU must have too. */
  memory: Type.Optional(Type.Object({
    bootBytes: Type.Integer({ minimum: 1 }),
    deflateOnOom: Type.Boolean(),
    virtioMem: Type.Array(Type.Object({
      id: Type.Literal('vmem0'), sizeBytes: Type.Integer({ minimum: 1 }), requestedBytes: Type.Integer({ minimum: 0 }),
    }, { additionalProperties: false }), { maxItems: 1 }),
  }, { additionalProperties: false })),
  /** A multifd option's stream over QEMU's own TLS: the source's per-move CA certificate, PEM (host/migration-tls.ts). */
  streamCa: Type.Optional(Type.String({ maxLength: 16 * 1024 })),
  /** Compression's multifd channels, chosen by the source for its spare CPU. */
  channels: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
}, { additionalProperties: false });
export type PrepareBody = Static<typeof PrepareBody>;

export const MoveRef = Type.Object({ move: Uuid });
export const OutcomeQuery = Type.Object({ vm: Uuid }, { additionalProperties: false });
/** host/metering-state.ts's MeteringState, as the source carries it (the sources' positions stay behind). */
const CarriedMetering = Type.Object({
  version: Type.Literal(1),
  resetAt: Type.String({ format: 'date-time' }),
  durationSeconds: Type.Number({ minimum: 0 }),
  counters: Type.Record(Type.String({ pattern: '^(cpuSeconds|diskReadBytes|diskWrittenBytes|normalizedIos|latencyMsSum|latencyCount|networkInboundBytes|networkOutboundBytes|range(In|Out)boundBytes:.{1,100})$' }), Type.Number({ minimum: 0 }), { maxProperties: 512 }),
  memoryByteSeconds: Type.Number({ minimum: 0 }),
  minMemoryBytes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  maxMemoryBytes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  maxDiskAllocatedBytes: Type.Number({ minimum: 0 }),
  last: Type.Record(Type.String({ maxLength: 300 }), Type.Number(), { maxProperties: 0 }),
}, { additionalProperties: false });
export const CommitBody = Type.Object({
  UptimeMs: Type.Integer({ minimum: 0 }),
  Metering: Type.Optional(CarriedMetering),
}, { additionalProperties: false });
export type CommitBody = Static<typeof CommitBody>;

const Subnet = Type.String({ minLength: 1, maxLength: 60, description: 'ADDRESS/PREFIX, IPv4 or IPv6 (10.1.0.0/16, fd00:1::/64)' });
const Priority = Type.Integer({ minimum: 0, maximum: 2147483647, description: 'Lower is tried first' });
export const MigrationNetworkQuery = Type.Object({ Subnet: Type.Optional(Subnet), Priority: Type.Optional(Priority) }, { additionalProperties: false });
export type MigrationNetworkQuery = Static<typeof MigrationNetworkQuery>;
export const AddMigrationNetworkBody = Type.Object({ Subnet, Priority: Type.Optional(Priority) }, { additionalProperties: false });
export type AddMigrationNetworkBody = Static<typeof AddMigrationNetworkBody>;
export const SetMigrationNetworkBody = Type.Object({ Subnet, NewSubnet: Type.Optional(Subnet), NewPriority: Type.Optional(Priority) }, { additionalProperties: false });
export type SetMigrationNetworkBody = Static<typeof SetMigrationNetworkBody>;
export const RemoveMigrationNetworkQuery = Type.Object({ Subnet }, { additionalProperties: false });
export type RemoveMigrationNetworkQuery = Static<typeof RemoveMigrationNetworkQuery>;
