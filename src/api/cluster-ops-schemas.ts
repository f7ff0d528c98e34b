// Request shapes of the cluster operations' routes (routes-cluster-ops.ts).
import { Type, type Static } from '@sinclair/typebox';

const VmRef = Type.String({ minLength: 1, maxLength: 256, description: 'The VM (its name, its role\'s name or its id)' });
/** A systemd unit or a process name: it goes into the guest's check script, so no quotes, spaces or shell characters. */
const Service = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9@._:+-]+$', description: 'A systemd unit (when the guest runs systemd and knows it) or a process name' });

export const ClusterLogQuery = Type.Object({
  Node: Type.Optional(Type.String({ maxLength: 4096, description: 'Comma-separated node names (default: every node)' })),
  TimeSpan: Type.Optional(Type.Integer({ minimum: 1, maximum: 525_600, description: 'Only the last this many minutes' })),
}, { additionalProperties: false });
export type ClusterLogQuery = Static<typeof ClusterLogQuery>;

export const ResourceQuery = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
  VMId: Type.Optional(Type.String({ format: 'uuid' })),
}, { additionalProperties: false });
export type ResourceQuery = Static<typeof ResourceQuery>;
export const ResourceRef = Type.Object({ resource: Type.String({ minLength: 1, maxLength: 300 }) });
export const ParameterQuery = Type.Object({ Name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }, { additionalProperties: false });
export type ParameterQuery = Static<typeof ParameterQuery>;
export const ParameterRef = Type.Object({ resource: Type.String({ minLength: 1, maxLength: 300 }), name: Type.String({ minLength: 1, maxLength: 128 }) });
export const ParameterBody = Type.Object({ Value: Type.Integer({ minimum: 0, maximum: 4294967295 }) }, { additionalProperties: false });
export type ParameterBody = Static<typeof ParameterBody>;
export const UpdateVmConfigBody = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'The role, or its Virtual Machine Configuration resource' })),
  VMId: Type.Optional(Type.String({ format: 'uuid' })),
}, { additionalProperties: false });
export type UpdateVmConfigBody = Static<typeof UpdateVmConfigBody>;

export const MonitoredQuery = Type.Object({ VirtualMachine: VmRef }, { additionalProperties: false });
export type MonitoredQuery = Static<typeof MonitoredQuery>;
export const MonitoredBody = Type.Object({ VirtualMachine: VmRef, Service: Type.Array(Service, { minItems: 1, maxItems: 32 }) }, { additionalProperties: false });
export type MonitoredBody = Static<typeof MonitoredBody>;
export const MonitoredRef = Type.Object({ vm: VmRef, service: Service });
export const MonitoredVmRef = Type.Object({ vm: VmRef });

