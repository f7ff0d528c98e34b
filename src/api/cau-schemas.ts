// Request shapes of Cluster-Aware Updating's routes (routes-cau.ts).
import { Type, type Static } from '@sinclair/typebox';

const NodeName = Type.String({ minLength: 1, maxLength: 253 });
const Script = Type.String({ minLength: 1, maxLength: 8192, description: 'A shell command run on each node (/bin/sh -c)' });

const PluginName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const PluginArguments = Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]*$', maxLength: 64 }), Type.String({ maxLength: 8192 }));
const runOptions = {
  MaxFailedNodes: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
  MaxRetriesPerNode: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  NodeOrder: Type.Optional(Type.Array(NodeName, { minItems: 1, maxItems: 64 })),
  RequireAllNodesOnline: Type.Optional(Type.Boolean()),
  RebootTimeoutMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, description: 'How long one node\'s update and its return may take (default 15)' })),
  FailbackMode: Type.Optional(Type.Union([Type.Literal('NoFailback'), Type.Literal('Immediate'), Type.Literal('Policy')])),
  PreUpdateScript: Type.Optional(Script),
  PostUpdateScript: Type.Optional(Script),
};
export const InvokeCauRunBody = Type.Object({
  CauPluginName: PluginName, CauPluginArguments: PluginArguments, ...runOptions,
  StopAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400, description: '-StopAfter: past this long from the start no node is started; the run ends Cancelled' })),
  ForceRecovery: Type.Optional(Type.Boolean({ description: 'End a run left in progress (its record kept as a Cancelled report) and start this one' })),
}, { additionalProperties: false });
export type InvokeCauRunBody = Static<typeof InvokeCauRunBody>;

export const CauScanBody = Type.Object({ CauPluginName: PluginName, CauPluginArguments: PluginArguments }, { additionalProperties: false });
export type CauScanBody = Static<typeof CauScanBody>;

const Day = Type.String({ minLength: 1, maxLength: 16, description: 'Sunday … Saturday' });
const schedule = {
  DaysOfWeek: Type.Optional(Type.Array(Day, { minItems: 1, maxItems: 7 })),
  WeeksOfMonth: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 5 }), { minItems: 1, maxItems: 5, description: '1–4: the n-th such day of the month; 5: the last' })),
  IntervalWeeks: Type.Optional(Type.Integer({ minimum: 1, maximum: 52 })),
  StartDate: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601; its UTC time of day is every run\'s' })),
};
export const AddCauRoleBody = Type.Object({ ...schedule, CauPluginName: PluginName, CauPluginArguments: PluginArguments, ...runOptions, Disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type AddCauRoleBody = Static<typeof AddCauRoleBody>;
export const SetCauRoleBody = Type.Object({ ...schedule, CauPluginName: Type.Optional(PluginName), CauPluginArguments: Type.Optional(PluginArguments), ...runOptions, UpdateNow: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type SetCauRoleBody = Static<typeof SetCauRoleBody>;

export const RegisterCauPluginBody = Type.Object({
  Name: PluginName,
  Description: Type.Optional(Type.String({ maxLength: 1024 })),
  UpdateCommand: Type.String({ minLength: 1, maxLength: 8192, description: 'The update command template; {Name} is argument Name, shell-quoted' }),
  ScanCommand: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: 'The scan command template: one update per output line' })),
}, { additionalProperties: false });
export type RegisterCauPluginBody = Static<typeof RegisterCauPluginBody>;
export const CauPluginQuery = Type.Object({ Name: Type.Optional(PluginName) }, { additionalProperties: false });
export type CauPluginQuery = Static<typeof CauPluginQuery>;
export const CauPluginRef = Type.Object({ name: PluginName });

export const CauRunQuery = Type.Object({ ShowClusterNodeState: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type CauRunQuery = Static<typeof CauRunQuery>;
export const CauReportQuery = Type.Object({
  Last: Type.Optional(Type.Boolean()), Detailed: Type.Optional(Type.Boolean()),
  StartDate: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601: runs that started at or after it' })),
  EndDate: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601: runs that started at or before it' })),
}, { additionalProperties: false });
export type CauReportQuery = Static<typeof CauReportQuery>;
