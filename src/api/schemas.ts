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
}, { additionalProperties: false });
export type NewVmBody = Static<typeof NewVmBody>;

export const SetVmBody = Type.Object({
  NewVMName: Type.Optional(Name),
  ProcessorCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  MemoryStartupBytes: Type.Optional(Bytes),
  NumaNodes: Type.Optional(Type.Integer({ minimum: 1, maximum: 8 })),
  Notes: Type.Optional(Type.String({ maxLength: 4096 })),
  EnableSecureBoot: Type.Optional(Type.Boolean()),
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

export const DvdSlotQuery = Type.Object({
  ControllerNumber: Type.Integer({ minimum: 0, maximum: 3 }),
  ControllerLocation: Type.Integer({ minimum: 0, maximum: 63 }),
}, { additionalProperties: false });

export const ResizeAttachedBody = Type.Object({
  Path: FilePath,
  SizeBytes: Type.Integer({ minimum: 1 }),
}, { additionalProperties: false });
export type ResizeAttachedBody = Static<typeof ResizeAttachedBody>;

export const MountBody = Type.Object({ Path: FilePath, ReadOnly: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type MountBody = Static<typeof MountBody>;

export const PathQuery = Type.Object({ Path: FilePath }, { additionalProperties: false });
