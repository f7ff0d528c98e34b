// Request shapes of the checkpoint routes (Checkpoint-VM, Get-/Rename-/Restore-VMSnapshot).
import { Type, type Static } from '@sinclair/typebox';

const SnapshotName = Type.String({ minLength: 1, maxLength: 100, description: 'A checkpoint name (not unique: an ambiguous name asks for the Id)' });

export const SnapshotRef = Type.Object({
  vm: Type.String({ minLength: 1, description: 'VM id or exact name' }),
  snapshot: Type.String({ minLength: 1, maxLength: 100, description: 'Checkpoint id or exact name' }),
});

export const CheckpointBody = Type.Object({
  SnapshotName: Type.Optional(SnapshotName),
}, { additionalProperties: false });
export type CheckpointBody = Static<typeof CheckpointBody>;

export const RemoveSnapshotQuery = Type.Object({
  IncludeAllChildSnapshots: Type.Optional(Type.Boolean({ default: false, description: 'Remove the checkpoint\'s whole subtree' })),
  wait: Type.Optional(Type.Boolean({ default: true, description: 'Wait for the job to finish (false: return 202 with the job at once)' })),
}, { additionalProperties: false });

export const RenameSnapshotBody = Type.Object({ NewName: SnapshotName }, { additionalProperties: false });
export type RenameSnapshotBody = Static<typeof RenameSnapshotBody>;
