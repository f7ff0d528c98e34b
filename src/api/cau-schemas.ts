// Request shapes of Cluster-Aware Updating's routes (routes-cau.ts).
import { Type, type Static } from '@sinclair/typebox';

const NodeName = Type.String({ minLength: 1, maxLength: 253 });
const Script = Type.String({ minLength: 1, maxLength: 8192, description: 'A shell command run on each node (/bin/sh -c)' });

export const InvokeCauRunBody = Type.Object({
  CauPluginName: Type.String({ minLength: 1, maxLength: 128 }),
  CauPluginArguments: Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]*$', maxLength: 64 }), Type.String({ maxLength: 8192 })),
  MaxFailedNodes: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
  MaxRetriesPerNode: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  NodeOrder: Type.Optional(Type.Array(NodeName, { minItems: 1, maxItems: 64 })),
  RequireAllNodesOnline: Type.Optional(Type.Boolean()),
  RebootTimeoutMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, description: 'How long one node\'s update and its return may take (default 15)' })),
  FailbackMode: Type.Optional(Type.Union([Type.Literal('NoFailback'), Type.Literal('Immediate'), Type.Literal('Policy')])),
  PreUpdateScript: Type.Optional(Script),
  PostUpdateScript: Type.Optional(Script),
}, { additionalProperties: false });
export type InvokeCauRunBody = Static<typeof InvokeCauRunBody>;

export const CauRunQuery = Type.Object({ ShowClusterNodeState: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type CauRunQuery = Static<typeof CauRunQuery>;
export const CauReportQuery = Type.Object({ Last: Type.Optional(Type.Boolean()), Detailed: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type CauReportQuery = Static<typeof CauReportQuery>;
