// Networking routes: virtual switches (New-/Get-/Set-/Remove-VMSwitch, extensions), the host's
// network adapters (Get-NetAdapter) and VM network adapters (Add-/Get-/Remove-/Connect-/
// Disconnect-/Set-VMNetworkAdapter, VLANs, ACLs).
// Adapter routes take ?Name= to pick adapters by name; without it they act on all of the VM's.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import {
  AclBody, AdapterQuery, AddAdapterBody, ConnectBody, ExtendedAclBody, ExtendedAclQuery, ExtensionBody, NewSwitchBody, RemoveQuery,
  SetAdapterBody, SetSwitchBody, SetVlanBody, SwitchRef, VmRef,
} from './schemas.ts';

type Sw = { Params: { name: string } };
type Vm = { Params: { vm: string }; Querystring: AdapterQuery };

export function registerNetworkRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['network'];
  const net = host.network;

  app.get('/api/v1/switches', { schema: { summary: 'Get-VMSwitch', tags } }, async () => net.switches.list());
  app.post<{ Body: NewSwitchBody }>('/api/v1/switches', { schema: { summary: 'New-VMSwitch', tags, body: NewSwitchBody } },
    async (req, reply) => reply.code(201).send(await net.switches.create(req.body)));
  app.get<Sw>('/api/v1/switches/:name', { schema: { summary: 'Get-VMSwitch -Name', tags, params: SwitchRef } }, async (req) => net.switches.get(req.params.name));
  app.patch<Sw & { Body: SetSwitchBody }>('/api/v1/switches/:name', { schema: { summary: 'Set-VMSwitch', tags, params: SwitchRef, body: SetSwitchBody } },
    async (req) => net.switches.set(req.params.name, req.body));
  app.delete<Sw & { Querystring: { force?: boolean } }>('/api/v1/switches/:name',
    { schema: { summary: 'Remove-VMSwitch (refused while adapters are connected unless force)', tags, params: SwitchRef, querystring: RemoveQuery } },
    async (req, reply) => {
      await net.switches.remove(req.params.name, req.query.force ?? false);
      return reply.code(204).send();
    });
  app.get('/api/v1/net-adapters', { schema: { summary: 'Get-NetAdapter (the host\'s "physical" adapters: vmhostd --net-adapter)', tags } }, async () => net.switches.netAdapters());
  app.get<Sw>('/api/v1/switches/:name/extensions', { schema: { summary: 'Get-VMSwitchExtension', tags, params: SwitchRef } }, async (req) => net.switches.extensions(req.params.name));
  app.patch<Sw & { Body: ExtensionBody }>('/api/v1/switches/:name/extensions',
    { schema: { summary: 'Enable-/Disable-VMSwitchExtension', tags, params: SwitchRef, body: ExtensionBody } },
    async (req) => net.switches.setExtension(req.params.name, req.body.Name, req.body.Enabled));

  app.get<Vm>('/api/v1/vms/:vm/network-adapters', { schema: { summary: 'Get-VMNetworkAdapter (PoolName: its Ethernet resource pool)', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => net.listAdapters(req.params.vm, req.query.Name).map((a) => ({ ...a, PoolName: host.pools.poolName('Ethernet', a.VMId as string, a.Id as string) })));
  app.post<{ Params: { vm: string }; Body: AddAdapterBody }>('/api/v1/vms/:vm/network-adapters',
    { schema: { summary: 'Add-VMNetworkAdapter (VM off)', tags, params: VmRef, body: AddAdapterBody } },
    async (req, reply) => reply.code(201).send(await net.addAdapter(req.params.vm, req.body)));
  app.delete<Vm>('/api/v1/vms/:vm/network-adapters', { schema: { summary: 'Remove-VMNetworkAdapter (VM off)', tags, params: VmRef, querystring: AdapterQuery } },
    async (req, reply) => {
      await net.removeAdapter(req.params.vm, req.query.Name);
      return reply.code(204).send();
    });
  app.patch<Vm & { Body: SetAdapterBody }>('/api/v1/vms/:vm/network-adapters',
    { schema: { summary: 'Set-VMNetworkAdapter (guards, mirroring, bandwidth; live)', tags, params: VmRef, querystring: AdapterQuery, body: SetAdapterBody } },
    async (req) => net.policies.setAdapter(req.params.vm, req.query.Name, req.body));
  app.post<Vm & { Body: ConnectBody }>('/api/v1/vms/:vm/network-adapters/connect',
    { schema: { summary: 'Connect-VMNetworkAdapter (live: the NIC is re-plugged)', tags, params: VmRef, querystring: AdapterQuery, body: ConnectBody } },
    async (req) => net.connect(req.params.vm, req.query.Name, req.body.SwitchName));
  app.post<Vm>('/api/v1/vms/:vm/network-adapters/disconnect',
    { schema: { summary: 'Disconnect-VMNetworkAdapter (live)', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => net.disconnect(req.params.vm, req.query.Name));

  app.get<Vm>('/api/v1/vms/:vm/network-adapters/vlan', { schema: { summary: 'Get-VMNetworkAdapterVlan', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => net.policies.vlans(req.params.vm, req.query.Name));
  app.put<Vm & { Body: SetVlanBody }>('/api/v1/vms/:vm/network-adapters/vlan',
    { schema: { summary: 'Set-VMNetworkAdapterVlan (live)', tags, params: VmRef, querystring: AdapterQuery, body: SetVlanBody } },
    async (req) => net.policies.setVlan(req.params.vm, req.query.Name, req.body));

  app.get<Vm>('/api/v1/vms/:vm/network-adapters/extended-acls', { schema: { summary: 'Get-VMNetworkAdapterExtendedAcl', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => net.policies.extendedAcls(req.params.vm, req.query.Name));
  app.post<Vm & { Body: ExtendedAclBody }>('/api/v1/vms/:vm/network-adapters/extended-acls',
    { schema: { summary: 'Add-VMNetworkAdapterExtendedAcl', tags, params: VmRef, querystring: AdapterQuery, body: ExtendedAclBody } },
    async (req, reply) => reply.code(201).send(await net.policies.addExtendedAcl(req.params.vm, req.query.Name, req.body)));
  app.delete<{ Params: { vm: string }; Querystring: ExtendedAclQuery }>('/api/v1/vms/:vm/network-adapters/extended-acls',
    { schema: { summary: 'Remove-VMNetworkAdapterExtendedAcl', tags, params: VmRef, querystring: ExtendedAclQuery } },
    async (req, reply) => {
      await net.policies.removeExtendedAcl(req.params.vm, req.query.Name, req.query.Direction, req.query.Weight);
      return reply.code(204).send();
    });

  app.get<Vm>('/api/v1/vms/:vm/network-adapters/acls', { schema: { summary: 'Get-VMNetworkAdapterAcl (Meter rules with their counters)', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => net.policies.acls(req.params.vm, req.query.Name));
  app.post<Vm & { Body: AclBody }>('/api/v1/vms/:vm/network-adapters/acls',
    { schema: { summary: 'Add-VMNetworkAdapterAcl (Allow, Deny, Meter)', tags, params: VmRef, querystring: AdapterQuery, body: AclBody } },
    async (req, reply) => reply.code(201).send(await net.policies.addAcl(req.params.vm, req.query.Name, req.body)));
  app.post<Vm & { Body: AclBody }>('/api/v1/vms/:vm/network-adapters/acls/remove',
    { schema: { summary: 'Remove-VMNetworkAdapterAcl (the rule given in the body)', tags, params: VmRef, querystring: AdapterQuery, body: AclBody } },
    async (req, reply) => {
      await net.policies.removeAcl(req.params.vm, req.query.Name, req.body);
      return reply.code(204).send();
    });
}
