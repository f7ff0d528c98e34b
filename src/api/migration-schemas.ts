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
  Ticket: Type.String({ minLength: 16, maxLength: 200, description: 'The ticket the destination issued to the caller for this VM' }),
}, { additionalProperties: false });
export type MoveBody = Static<typeof MoveBody>;

const Geometry = Type.Object({
  virtualSize: Type.Integer({ minimum: 1 }),
  logicalSectorSize: Type.Union([Type.Literal(512), Type.Literal(4096)]),
  physicalSectorSize: Type.Union([Type.Literal(512), Type.Literal(4096)]),
}, { additionalProperties: false });

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
  /** Dynamic memory: the source machine's boot RAM and virtio-mem region, which the destination's QEMU must have too. */
  memory: Type.Optional(Type.Object({
    bootBytes: Type.Integer({ minimum: 1 }),
    deflateOnOom: Type.Boolean(),
    virtioMem: Type.Array(Type.Object({
      id: Type.Literal('vmem0'), sizeBytes: Type.Integer({ minimum: 1 }), requestedBytes: Type.Integer({ minimum: 0 }),
    }, { additionalProperties: false }), { maxItems: 1 }),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type PrepareBody = Static<typeof PrepareBody>;

export const MoveRef = Type.Object({ move: Uuid });
export const OutcomeQuery = Type.Object({ vm: Uuid }, { additionalProperties: false });
export const CommitBody = Type.Object({ UptimeMs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });
export type CommitBody = Static<typeof CommitBody>;
