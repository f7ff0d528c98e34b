// Request shapes of the Failover Clustering routes (routes-cluster.ts).
import { Type, type Static } from '@sinclair/typebox';

const Name = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const RoleName = Type.String({ minLength: 1, maxLength: 256 });

export const NewClusterBody = Type.Object({
  Name,
  Node: Type.Array(Name, { minItems: 1, maxItems: 64, description: 'The nodes (--cluster-node-name of each vmhostd connected to this etcd)' }),
}, { additionalProperties: false });
export type NewClusterBody = Static<typeof NewClusterBody>;

export const NodeQuery = Type.Object({ Name: Type.Optional(Name) }, { additionalProperties: false });
export type NodeQuery = Static<typeof NodeQuery>;
export const NodeBody = Type.Object({ Name }, { additionalProperties: false });
export type NodeBody = Static<typeof NodeBody>;
export const NodeRef = Type.Object({ node: Name });
export const SetNodeBody = Type.Object({
  NodeWeight: Type.Union([Type.Literal(0), Type.Literal(1)], { description: 'The node\'s configured vote: 0 takes its etcd member\'s vote away (a learner), 1 gives it back' }),
}, { additionalProperties: false });
export type SetNodeBody = Static<typeof SetNodeBody>;

export const GroupQuery = Type.Object({ Name: Type.Optional(RoleName) }, { additionalProperties: false });
export type GroupQuery = Static<typeof GroupQuery>;
export const GroupRef = Type.Object({ group: RoleName });
export const AddVmRoleBody = Type.Object({
  VMName: Type.String({ minLength: 1, maxLength: 256 }),
  Name: Type.Optional(RoleName),
}, { additionalProperties: false });
export type AddVmRoleBody = Static<typeof AddVmRoleBody>;
export const SetGroupBody = Type.Object({
  Priority: Type.Optional(Type.Union([Type.Literal(3000), Type.Literal(2000), Type.Literal(1000), Type.Literal(0)], { description: '3000 High, 2000 Medium, 1000 Low, 0 No Auto Start' })),
  OwnerNodes: Type.Optional(Type.Array(Name, { maxItems: 64, description: 'Possible owners (Set-ClusterOwnerNode); empty = every node' })),
  AntiAffinityClassNames: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^,\\s][^,]*$' }), { maxItems: 32, description: 'Roles sharing a class avoid one node while another may take them; empty clears' })),
}, { additionalProperties: false });
export type SetGroupBody = Static<typeof SetGroupBody>;
export const MoveGroupBody = Type.Object({ Node: Name }, { additionalProperties: false });
export type MoveGroupBody = Static<typeof MoveGroupBody>;
export const SuspendNodeBody = Type.Object({
  Drain: Type.Optional(Type.Boolean({ description: 'Move every running role off live first (waits)' })),
}, { additionalProperties: false });
export type SuspendNodeBody = Static<typeof SuspendNodeBody>;
export const ResumeNodeBody = Type.Object({
  Failback: Type.Optional(Type.Union([Type.Literal('Immediate'), Type.Literal('NoFailback'), Type.Literal('Policy')], { description: 'Immediate: the roles the drain moved away come back (default NoFailback)' })),
}, { additionalProperties: false });
export type ResumeNodeBody = Static<typeof ResumeNodeBody>;

export const SetQuorumBody = Type.Object({
  QuorumType: Type.Union([Type.Literal('NodeMajority'), Type.Literal('NodeAndFileShareMajority')]),
  FileShareWitness: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'The witness directory (NodeAndFileShareMajority): it names its etcd member in witness.json' })),
}, { additionalProperties: false });
export type SetQuorumBody = Static<typeof SetQuorumBody>;
