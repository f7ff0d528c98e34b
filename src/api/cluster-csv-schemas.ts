// Request shapes of the Cluster Shared Volume routes (routes-cluster-csv.ts).
import { Type, type Static } from '@sinclair/typebox';

const VolumeName = Type.String({ minLength: 1, maxLength: 64, description: 'The volume\'s name' });
const AbsPath = Type.String({ minLength: 2, maxLength: 4096, pattern: '^/', description: 'An absolute path' });
const Sector = Type.Union([Type.Literal(512), Type.Literal(4096)]);
const Format = Type.Union([Type.Literal('VHDX'), Type.Literal('VHD')]);

export const VolumeQuery = Type.Object({ Name: Type.Optional(VolumeName) }, { additionalProperties: false });
export type VolumeQuery = Static<typeof VolumeQuery>;
export const VolumeRef = Type.Object({ volume: VolumeName });
export const AddVolumeBody = Type.Object({
  Name: VolumeName,
  Path: Type.String({ minLength: 1, maxLength: 4096, description: 'The directory every node reaches at this path' }),
}, { additionalProperties: false });
export type AddVolumeBody = Static<typeof AddVolumeBody>;

/** New-VHD and Resize-VHD of a file on a volume: the operation the coordinator performs (storage/volume-ops.ts). */
export const VolumeOpBody = Type.Union([
  Type.Object({
    Op: Type.Literal('create'), Path: AbsPath,
    Spec: Type.Object({
      format: Format, type: Type.Union([Type.Literal('Fixed'), Type.Literal('Dynamic')]), size: Type.Integer({ minimum: 1 }),
      blockSize: Type.Optional(Type.Integer({ minimum: 1 })), logicalSectorSize: Type.Optional(Sector), physicalSectorSize: Type.Optional(Sector),
    }, { additionalProperties: false }),
  }, { additionalProperties: false }),
  Type.Object({
    Op: Type.Literal('createDifferencing'), Path: AbsPath, ParentPath: AbsPath,
    Spec: Type.Object({
      format: Format, size: Type.Optional(Type.Integer({ minimum: 1 })), blockSize: Type.Optional(Type.Integer({ minimum: 1 })),
      logicalSectorSize: Type.Optional(Sector), physicalSectorSize: Type.Optional(Sector),
    }, { additionalProperties: false }),
  }, { additionalProperties: false }),
  Type.Object({
    Op: Type.Literal('resize'), Path: AbsPath, SizeBytes: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('minimum')]),
  }, { additionalProperties: false }),
]);
export type VolumeOpBody = Static<typeof VolumeOpBody>;
