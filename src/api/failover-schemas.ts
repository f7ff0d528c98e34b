// Request shapes of the failover cmdlets (src/replica/failover.ts) and Set-VMReplication.
import { Type, type Static } from '@sinclair/typebox';

export const FailoverBody = Type.Object({
  AsTest: Type.Optional(Type.Boolean({ description: 'A test VM ("<name> - Test") on the point; replication goes on' })),
  Prepare: Type.Optional(Type.Boolean({ description: 'On the primary of an off VM: send the last changes, then PreparedForFailover' })),
  VMRecoverySnapshot: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'The recovery point (its Name or Id from Get-VMSnapshot); default the newest' })),
}, { additionalProperties: false });
export type FailoverBody = Static<typeof FailoverBody>;

export const SetReplicationBody = Type.Object({
  Reverse: Type.Optional(Type.Boolean({ description: 'On a failed-over Replica VM: this host becomes the primary, the old primary its Replica server' })),
  ReplicaServerName: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  ReplicaServerPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  AuthenticationType: Type.Optional(Type.Union([Type.Literal('Kerberos'), Type.Literal('Certificate')])),
  CertificateThumbprint: Type.Optional(Type.String({ pattern: '^[0-9A-Fa-f]{40}$' })),
  ReplicationFrequencySec: Type.Optional(Type.Integer({ description: '30, 300 or 900' })),
  RecoveryHistory: Type.Optional(Type.Integer({ description: '0..24' })),
  CompressionEnabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type SetReplicationBody = Static<typeof SetReplicationBody>;
