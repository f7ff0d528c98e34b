// Request shapes of the Hyper-V Replica cmdlets (src/replica): the Replica server's settings and
// authorization entries, and a primary VM's relationship.
import { Type, type Static } from '@sinclair/typebox';

const Path = (description: string) => Type.String({ minLength: 1, maxLength: 4096, description });
const Port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });
const Thumbprint = Type.String({ pattern: '^[0-9A-Fa-f]{40}$', description: 'SHA-1 thumbprint of a certificate in the replication certificate store' });
const ServerName = Type.String({ minLength: 1, maxLength: 255, description: 'A server name, *.domain or *' });

export const SetReplicationServerBody = Type.Object({
  ReplicationEnabled: Type.Optional(Type.Boolean()),
  AllowedAuthenticationType: Type.Optional(Type.Union([Type.Literal('Kerberos'), Type.Literal('Certificate'), Type.Literal('CertificateAndKerberos')])),
  ReplicationAllowedFromAnyServer: Type.Optional(Type.Boolean()),
  DefaultStorageLocation: Type.Optional(Path('Where replicas from any allowed server go')),
  CertificateAuthenticationPort: Type.Optional(Port('The listener\'s TCP port')),
  CertificateThumbprint: Type.Optional(Thumbprint),
}, { additionalProperties: false });
export type SetReplicationServerBody = Static<typeof SetReplicationServerBody>;

export const AuthorizationEntryBody = Type.Object({
  AllowedPrimaryServer: ServerName,
  ReplicaStorageLocation: Path('Folder for this primary\'s replicas'),
  TrustGroup: Type.String({ minLength: 1, maxLength: 100 }),
}, { additionalProperties: false });
export type AuthorizationEntryBody = Static<typeof AuthorizationEntryBody>;

export const SetAuthorizationEntryBody = Type.Object({
  ReplicaStorageLocation: Type.Optional(Path('Folder for this primary\'s replicas')),
  TrustGroup: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
}, { additionalProperties: false });
export type SetAuthorizationEntryBody = Static<typeof SetAuthorizationEntryBody>;

export const AuthorizationQuery = Type.Object({
  AllowedPrimaryServer: Type.Optional(ServerName),
  TrustGroup: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
}, { additionalProperties: false });
export type AuthorizationQuery = Static<typeof AuthorizationQuery>;

export const EntryRef = Type.Object({ server: ServerName });

const Connection = {
  ReplicaServerName: Type.String({ minLength: 1, maxLength: 255 }),
  ReplicaServerPort: Port('The Replica server\'s CertificateAuthenticationPort'),
  AuthenticationType: Type.Optional(Type.Union([Type.Literal('Kerberos'), Type.Literal('Certificate')])),
  CertificateThumbprint: Type.Optional(Thumbprint),
};

export const TestConnectionBody = Type.Object(Connection, { additionalProperties: false });
export type TestConnectionBody = Static<typeof TestConnectionBody>;

export const EnableReplicationBody = Type.Object({
  ...Connection,
  ReplicationFrequencySec: Type.Optional(Type.Integer({ description: '30, 300 or 900; 1: continuous (vmhost extension)' })),
  RecoveryHistory: Type.Optional(Type.Integer({ description: '0..24' })),
  CompressionEnabled: Type.Optional(Type.Boolean()),
  ExcludedVhdPath: Type.Optional(Type.Array(Path('A drive file not replicated'), { maxItems: 64 })),
  VSSSnapshotFrequencyHour: Type.Optional(Type.Integer({ description: '0 (off) or 1..12: hours between app-consistent recovery points' })),
}, { additionalProperties: false });
export type EnableReplicationBody = Static<typeof EnableReplicationBody>;

export const InitialReplicationQuery = Type.Object({
  wait: Type.Optional(Type.Boolean({ default: true, description: 'Wait for the job to finish (false: return 202 with the job at once)' })),
  DestinationPath: Type.Optional(Path('A folder (removable media) the initial copy is written to instead of the network')),
  UseBackup: Type.Optional(Type.Boolean({ description: 'The Replica server holds the VM restored from a backup (Import-VMInitialReplication of a backup repository): send only the blocks that differ from it' })),
}, { additionalProperties: false });
export type InitialReplicationQuery = Static<typeof InitialReplicationQuery>;

export const ImportInitialBody = Type.Object({
  VMName: Type.String({ minLength: 1, maxLength: 100 }),
  Path: Path('The folder Start-VMInitialReplication -DestinationPath wrote (or its VM folder), or a vmhost backup repository holding the VM (for Start-VMInitialReplication -UseBackup)'),
}, { additionalProperties: false });
export type ImportInitialBody = Static<typeof ImportInitialBody>;

export const ResumeReplicationQuery = Type.Object({
  Resynchronize: Type.Optional(Type.Boolean({ description: 'Compare the blocks of both sides and send those that differ (a resynchronization), then replicate on' })),
}, { additionalProperties: false });
export type ResumeReplicationQuery = Static<typeof ResumeReplicationQuery>;

export const ReplicationQuery = Type.Object({ VMName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }, { additionalProperties: false });
export type ReplicationQuery = Static<typeof ReplicationQuery>;
