// Resource pools (host/vm-resource-pools.ts): New-/Get-/Set-/Rename-/Remove-VMResourcePool,
// Enable-/Disable-/Reset-VMResourceMetering -ResourcePoolName, Measure-VMResourcePool under
// /api/v1/resource-pools/:name (?ResourcePoolType=VHD,Ethernet picks the types; none: every
// type the name exists in), Add-/Remove-VMStoragePath, and a VM's or device's pool (the -ResourcePoolName parameter of
// Set-VMMemory, Set-VMProcessor, Add-/Set-VMHardDiskDrive, Add-/Set-VMNetworkAdapter) at
// PUT /api/v1/vms/:vm/resource-pool; a switch's Ethernet pools (Add-VMSwitch, Remove-VMSwitch
// -ResourcePoolName) at /api/v1/switches/:name/resource-pools.
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { METERED_POOL_TYPES, POOL_TYPES, type Host, type PoolType } from '../host/index.ts';
import { VmRef } from './schemas.ts';

const PoolName = Type.String({ minLength: 1, maxLength: 256, description: 'Resource pool name (case-insensitive; Primordial is each type\'s root)' });
const PoolTypeSchema = Type.Union(POOL_TYPES.map((t) => Type.Literal(t)));
const MeteredType = Type.Union(METERED_POOL_TYPES.map((t) => Type.Literal(t)));
const TypesQuery = Type.Object({
  ResourcePoolType: Type.Optional(Type.String({ pattern: `^(${POOL_TYPES.join('|')})(,(${POOL_TYPES.join('|')}))*$`, description: 'Comma-separated types' })),
}, { additionalProperties: false });
type TypesQuery = Static<typeof TypesQuery>;
const ListQuery = Type.Object({ ...TypesQuery.properties, Name: Type.Optional(PoolName) }, { additionalProperties: false });
type ListQuery = Static<typeof ListQuery>;
const PoolRef = Type.Object({ name: PoolName });

const NewPoolBody = Type.Object({
  Name: PoolName,
  ResourcePoolType: Type.Array(PoolTypeSchema, { minItems: 1, maxItems: POOL_TYPES.length, uniqueItems: true }),
  ParentName: Type.Optional(Type.Array(PoolName, { minItems: 1, maxItems: POOL_TYPES.length, description: 'One parent, or one per type' })),
  Paths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: 64, description: 'Folders of a VHD/ISO/VFD pool (absolute host paths)' })),
}, { additionalProperties: false });
type NewPoolBody = Static<typeof NewPoolBody>;
const SetPoolBody = Type.Object({ ParentName: PoolName }, { additionalProperties: false });
type SetPoolBody = Static<typeof SetPoolBody>;
const RenamePoolBody = Type.Object({ NewName: PoolName }, { additionalProperties: false });
type RenamePoolBody = Static<typeof RenamePoolBody>;
const StoragePath = Type.String({ minLength: 1, maxLength: 4096, description: 'An absolute host folder' });
const PathsBody = Type.Object({
  Add: Type.Optional(Type.Array(StoragePath, { minItems: 1, maxItems: 64, description: 'Add-VMStoragePath' })),
  Remove: Type.Optional(Type.Array(StoragePath, { minItems: 1, maxItems: 64, description: 'Remove-VMStoragePath (refused while a member drive would be left under none of the pool\'s paths)' })),
}, { additionalProperties: false, minProperties: 1 });
type PathsBody = Static<typeof PathsBody>;
const MemberBody = Type.Object({
  ResourcePoolType: MeteredType,
  ResourcePoolName: PoolName,
  DeviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'VHD: the hard drive\'s Id; Ethernet: the network adapter\'s Id; none for Memory and Processor (the VM)' })),
}, { additionalProperties: false });
type MemberBody = Static<typeof MemberBody>;
const SwitchPoolsBody = Type.Object({ ResourcePoolName: Type.Array(PoolName, { minItems: 1, maxItems: 64 }) }, { additionalProperties: false });
type SwitchPoolsBody = Static<typeof SwitchPoolsBody>;
const SwitchPoolsQuery = Type.Object({ ResourcePoolName: Type.String({ minLength: 1, maxLength: 4096, description: 'Comma-separated Ethernet pool names' }) }, { additionalProperties: false });
type SwitchPoolsQuery = Static<typeof SwitchPoolsQuery>;

const typesOf = (q: TypesQuery): PoolType[] | undefined => (q.ResourcePoolType ? (q.ResourcePoolType.split(',') as PoolType[]) : undefined);

export function registerResourcePoolRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['resource-pools'];
  type Named = { Params: { name: string }; Querystring: TypesQuery };

  app.get<{ Querystring: ListQuery }>('/api/v1/resource-pools', { schema: { summary: 'Get-VMResourcePool (the Primordial pools included)', tags, querystring: ListQuery } },
    async (req) => host.pools.list(req.query.Name, typesOf(req.query)));

  app.post<{ Body: NewPoolBody }>('/api/v1/resource-pools', { schema: { summary: 'New-VMResourcePool: one pool per type', tags, body: NewPoolBody } },
    async (req) => host.pools.create({ name: req.body.Name, types: req.body.ResourcePoolType, parents: req.body.ParentName, paths: req.body.Paths }));

  app.patch<Named & { Body: SetPoolBody }>('/api/v1/resource-pools/:name', { schema: { summary: 'Set-VMResourcePool -ParentName', tags, params: PoolRef, querystring: TypesQuery, body: SetPoolBody } },
    async (req) => host.pools.setParent(req.params.name, typesOf(req.query), req.body.ParentName));

  app.post<Named & { Body: RenamePoolBody }>('/api/v1/resource-pools/:name/rename', { schema: { summary: 'Rename-VMResourcePool (members, child pools and counts follow)', tags, params: PoolRef, querystring: TypesQuery, body: RenamePoolBody } },
    async (req) => host.pools.rename(req.params.name, typesOf(req.query), req.body.NewName));

  app.delete<Named>('/api/v1/resource-pools/:name', { schema: { summary: 'Remove-VMResourcePool (refused while it has child pools or members: RESOURCE_POOL_IN_USE)', tags, params: PoolRef, querystring: TypesQuery } },
    async (req, reply) => {
      await host.pools.remove(req.params.name, typesOf(req.query));
      return reply.code(204).send();
    });

  app.patch<Named & { Body: PathsBody }>('/api/v1/resource-pools/:name/paths',
    { schema: { summary: 'Add-VMStoragePath / Remove-VMStoragePath: folders of a VHD, ISO or VFD pool (Get-VMStoragePath reads Paths from Get-VMResourcePool)', tags, params: PoolRef, querystring: TypesQuery, body: PathsBody } },
    async (req) => host.pools.changePaths(req.params.name, typesOf(req.query), req.body.Add ?? [], req.body.Remove ?? []));

  app.get<Named>('/api/v1/resource-pools/:name/metering', { schema: { summary: 'Measure-VMResourcePool: the members\' use since the pool\'s metering was enabled or reset', tags, params: PoolRef, querystring: TypesQuery } },
    async (req) => host.pools.measure(req.params.name, typesOf(req.query)));

  app.put<Named>('/api/v1/resource-pools/:name/metering', { schema: { summary: 'Enable-VMResourceMetering -ResourcePoolName', tags, params: PoolRef, querystring: TypesQuery } },
    async (req) => {
      await host.pools.enableMetering(req.params.name, typesOf(req.query));
      return host.pools.list(req.params.name, typesOf(req.query));
    });

  app.delete<Named>('/api/v1/resource-pools/:name/metering', { schema: { summary: 'Disable-VMResourceMetering -ResourcePoolName (what was counted is dropped)', tags, params: PoolRef, querystring: TypesQuery } },
    async (req) => {
      await host.pools.disableMetering(req.params.name, typesOf(req.query));
      return host.pools.list(req.params.name, typesOf(req.query));
    });

  app.post<Named>('/api/v1/resource-pools/:name/metering/reset', { schema: { summary: 'Reset-VMResourceMetering -ResourcePoolName', tags, params: PoolRef, querystring: TypesQuery } },
    async (req) => {
      await host.pools.resetMetering(req.params.name, typesOf(req.query));
      return host.pools.list(req.params.name, typesOf(req.query));
    });

  const SwitchRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) });
  app.put<{ Params: { name: string }; Body: SwitchPoolsBody }>('/api/v1/switches/:name/resource-pools',
    { schema: { summary: 'Add-VMSwitch -ResourcePoolName: the switch joins Ethernet pools (adapters of the pool connect to it with -UseAutomaticConnection)', tags, params: SwitchRef, body: SwitchPoolsBody } },
    async (req) => host.pools.setSwitchPools(req.params.name, req.body.ResourcePoolName, true));
  app.delete<{ Params: { name: string }; Querystring: SwitchPoolsQuery }>('/api/v1/switches/:name/resource-pools',
    { schema: { summary: 'Remove-VMSwitch -ResourcePoolName: the switch leaves those Ethernet pools (it is not deleted)', tags, params: SwitchRef, querystring: SwitchPoolsQuery } },
    async (req) => host.pools.setSwitchPools(req.params.name, req.query.ResourcePoolName.split(','), false));

  app.put<{ Params: { vm: string }; Body: MemberBody }>('/api/v1/vms/:vm/resource-pool',
    { schema: { summary: 'A VM\'s (Memory, Processor) or device\'s (VHD, Ethernet) pool: the -ResourcePoolName of the device cmdlets; Primordial takes it out', tags, params: VmRef, body: MemberBody } },
    async (req) => host.pools.setMember(req.params.vm, req.body.ResourcePoolType, req.body.DeviceId ?? null, req.body.ResourcePoolName));
}
