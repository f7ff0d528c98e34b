// Request shapes of the backup cmdlets (Start-, Get-, Restore-, Remove-VMBackup; host/vm-backup.ts).
import { Type, type Static } from '@sinclair/typebox';

const HostPath = (description: string) => Type.String({ minLength: 1, maxLength: 4096, description });
const BackupId = Type.String({ minLength: 4, maxLength: 64, pattern: '^[0-9a-fA-F-]+$', description: 'The backup point\'s id (or a unique prefix of it)' });

export const StartBackupBody = Type.Object({
  Destination: HostPath('The restic repository folder on the host (created with a new key when absent)'),
  KeepLast: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Then keep only the VM\'s newest N points in the repository (an incremental kept whose full point goes is rebased as full first)' })),
}, { additionalProperties: false });
export type StartBackupBody = Static<typeof StartBackupBody>;

export const ListBackupsQuery = Type.Object({
  Path: HostPath('The repository folder'),
  VMName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this VM\'s points' })),
}, { additionalProperties: false });
export type ListBackupsQuery = Static<typeof ListBackupsQuery>;

export const RestoreBackupBody = Type.Object({
  Path: HostPath('The repository folder'),
  BackupId,
  DestinationPath: Type.Optional(HostPath('Folder for the restored VHDX files (created when absent; the files must not exist); with NewVMName by default DIR/Virtual Hard Disks/<NewVMName>')),
  NewVMName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Register a new VM (new id, new dynamic MACs, Off) from the point\'s configuration on the restored disks' })),
  VMName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Restore over this VM\'s own disks (the VM off, without checkpoints; the point must be of this VM)' })),
}, { additionalProperties: false });
export type RestoreBackupBody = Static<typeof RestoreBackupBody>;

export const RemoveBackupBody = Type.Object({
  Path: HostPath('The repository folder'),
  BackupId,
}, { additionalProperties: false });
export type RemoveBackupBody = Static<typeof RemoveBackupBody>;
