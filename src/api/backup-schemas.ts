// Request shapes of the backup cmdlets (Start-, Get-, Restore-, Remove-VMBackup; host/vm-backup.ts).
import { Type, type Static } from '@sinclair/typebox';

const HostPath = (description: string) => Type.String({ minLength: 1, maxLength: 4096, description });
const BackupId = Type.String({ minLength: 4, maxLength: 64, pattern: '^[0-9a-fA-F-]+$', description: 'The backup point\'s id (or a unique prefix of it)' });

export const StartBackupBody = Type.Object({
  Destination: HostPath('The restic repository folder on the host (created with a new key when absent)'),
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
  DestinationPath: HostPath('Folder for the restored VHDX files (created when absent; the files must not exist)'),
}, { additionalProperties: false });
export type RestoreBackupBody = Static<typeof RestoreBackupBody>;

export const RemoveBackupBody = Type.Object({
  Path: HostPath('The repository folder'),
  BackupId,
}, { additionalProperties: false });
export type RemoveBackupBody = Static<typeof RemoveBackupBody>;
