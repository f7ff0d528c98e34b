// The management OS's network adapters (host vNICs on Internal switches):
// Get-/Add-/Remove-/Set-VMNetworkAdapter -ManagementOS, their VLAN and ACLs. The schemas only
// these routes use live here; the port policy bodies are the VM adapters' (schemas.ts).
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Host } from '../host/index.ts';
import { AclBody, AdapterQuery, ExtendedAclBody, ExtendedAclQuery, SetAdapterBody, SetVlanBody } from './schemas.ts';

const HostNicQuery = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1, description: 'Adapter name; absent = every management-OS adapter' })),
  SwitchName: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false });
type HostNicQuery = Static<typeof HostNicQuery>;

const RemoveHostNicQuery = Type.Object({
  Name: Type.String({ minLength: 1 }),
  SwitchName: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false });
type RemoveHostNicQuery = Static<typeof RemoveHostNicQuery>;

const AddHostNicBody = Type.Object({
  Name: Type.String({ minLength: 1, maxLength: 100 }),
  SwitchName: Type.String({ minLength: 1 }),
}, { additionalProperties: false });
type AddHostNicBody = Static<typeof AddHostNicBody>;

const VlanQuery = Type.Object({ VMNetworkAdapterName: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false });
type VlanQuery = Static<typeof VlanQuery>;

export function registerHostNicRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['network'];
  const nics = host.network.hostNics;
  const path = '/api/v1/host/network-adapters';

  app.get<{ Querystring: HostNicQuery }>(path,
    { schema: { summary: 'Get-VMNetworkAdapter -ManagementOS (addresses read from the kernel)', tags, querystring: HostNicQuery } },
    async (req) => nics.list(req.query.Name, req.query.SwitchName));
  app.post<{ Body: AddHostNicBody }>(path,
    { schema: { summary: 'Add-VMNetworkAdapter -ManagementOS (a tap interface on an Internal switch)', tags, body: AddHostNicBody } },
    async (req, reply) => reply.code(201).send(await nics.add(req.body.SwitchName, req.body.Name)));
  app.get<{ Querystring: VlanQuery }>(`${path}/vlan`,
    { schema: { summary: 'Get-VMNetworkAdapterVlan -ManagementOS', tags, querystring: VlanQuery } },
    async (req) => nics.vlans(req.query.VMNetworkAdapterName));
  app.put<{ Querystring: VlanQuery; Body: SetVlanBody }>(`${path}/vlan`,
    { schema: { summary: 'Set-VMNetworkAdapterVlan -ManagementOS (applies at once)', tags, querystring: VlanQuery, body: SetVlanBody } },
    async (req) => nics.setVlan(req.query.VMNetworkAdapterName, req.body));
  app.patch<{ Querystring: AdapterQuery; Body: SetAdapterBody }>(path,
    { schema: { summary: 'Set-VMNetworkAdapter -ManagementOS (guards, mirroring, bandwidth; applies at once)', tags, querystring: AdapterQuery, body: SetAdapterBody } },
    async (req) => nics.setAdapter(req.query.Name, req.body));
  app.get<{ Querystring: AdapterQuery }>(`${path}/extended-acls`,
    { schema: { summary: 'Get-VMNetworkAdapterExtendedAcl -ManagementOS', tags, querystring: AdapterQuery } },
    async (req) => nics.extendedAcls(req.query.Name));
  app.post<{ Querystring: AdapterQuery; Body: ExtendedAclBody }>(`${path}/extended-acls`,
    { schema: { summary: 'Add-VMNetworkAdapterExtendedAcl -ManagementOS', tags, querystring: AdapterQuery, body: ExtendedAclBody } },
    async (req, reply) => reply.code(201).send(await nics.addExtendedAcl(req.query.Name, req.body)));
  app.delete<{ Querystring: ExtendedAclQuery }>(`${path}/extended-acls`,
    { schema: { summary: 'Remove-VMNetworkAdapterExtendedAcl -ManagementOS', tags, querystring: ExtendedAclQuery } },
    async (req, reply) => {
      await nics.removeExtendedAcl(req.query.Name, req.query.Direction, req.query.Weight);
      return reply.code(204).send();
    });
  app.get<{ Querystring: AdapterQuery }>(`${path}/acls`,
    { schema: { summary: 'Get-VMNetworkAdapterAcl -ManagementOS (Meter rules with their counters)', tags, querystring: AdapterQuery } },
    async (req) => nics.acls(req.query.Name));
  app.post<{ Querystring: AdapterQuery; Body: AclBody }>(`${path}/acls`,
    { schema: { summary: 'Add-VMNetworkAdapterAcl -ManagementOS', tags, querystring: AdapterQuery, body: AclBody } },
    async (req, reply) => reply.code(201).send(await nics.addAcl(req.query.Name, req.body)));
  app.post<{ Querystring: AdapterQuery; Body: AclBody }>(`${path}/acls/remove`,
    { schema: { summary: 'Remove-VMNetworkAdapterAcl -ManagementOS (the rule given in the body)', tags, querystring: AdapterQuery, body: AclBody } },
    async (req, reply) => {
      await nics.removeAcl(req.query.Name, req.body);
      return reply.code(204).send();
    });
  app.delete<{ Querystring: RemoveHostNicQuery }>(path,
    { schema: { summary: 'Remove-VMNetworkAdapter -ManagementOS (deletes the interface)', tags, querystring: RemoveHostNicQuery } },
    async (req, reply) => {
      await nics.remove(req.query.Name, req.query.SwitchName);
      return reply.code(204).send();
    });
}
