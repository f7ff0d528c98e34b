// Network virtualization policy routes (the NetWNV cmdlets): provider addresses, lookup
// records, customer routes, the in-daemon gateway (host/hnv-gateways.ts), each with GET (filters in the query), POST (New-) and DELETE
// (Remove-: everything the query matches; 404 when nothing does). The policy is kept by
// host/hnv-store.ts and applied to the External switches' NVGRE data path (host/hnv-datapath.ts).
import type { FastifyInstance } from 'fastify';
import { virtualSubnetAdapterRows, type Host } from '../host/index.ts';
import {
  AddRoutingDomainBody, CustomerRouteBody, GatewayBody, GatewayQuery, CustomerRouteQuery, LookupRecordBody, LookupRecordQuery, ProviderAddressBody, ProviderAddressQuery,
  RemoveRoutingDomainQuery, SetIsolationBody, SetRoutingDomainBody,
} from './hnv-schemas.ts';
import { AdapterQuery, VmRef } from './schemas.ts';

type Vm = { Params: { vm: string }; Querystring: AdapterQuery };

const BASE = '/api/v1/host/network-virtualization';

export function registerHnvRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['network virtualization'];
  const hnv = host.hnv;
  const removed = (n: number) => ({ Removed: n });

  app.get<{ Querystring: ProviderAddressQuery }>(`${BASE}/provider-addresses`,
    { schema: { summary: 'Get-NetVirtualizationProviderAddress', tags, querystring: ProviderAddressQuery } }, async (req) => hnv.providerAddresses(req.query));
  app.post<{ Body: ProviderAddressBody }>(`${BASE}/provider-addresses`,
    { schema: { summary: 'New-NetVirtualizationProviderAddress', tags, body: ProviderAddressBody } },
    async (req, reply) => reply.code(201).send(await hnv.newProviderAddress(req.body)));
  app.delete<{ Querystring: ProviderAddressQuery }>(`${BASE}/provider-addresses`,
    { schema: { summary: 'Remove-NetVirtualizationProviderAddress', tags, querystring: ProviderAddressQuery } },
    async (req) => removed(await hnv.removeProviderAddresses(req.query)));

  app.get<{ Querystring: LookupRecordQuery }>(`${BASE}/lookup-records`,
    { schema: { summary: 'Get-NetVirtualizationLookupRecord', tags, querystring: LookupRecordQuery } }, async (req) => hnv.lookupRecords(req.query));
  app.post<{ Body: LookupRecordBody }>(`${BASE}/lookup-records`,
    { schema: { summary: 'New-NetVirtualizationLookupRecord', tags, body: LookupRecordBody } },
    async (req, reply) => reply.code(201).send(await hnv.newLookupRecord(req.body)));
  app.delete<{ Querystring: LookupRecordQuery }>(`${BASE}/lookup-records`,
    { schema: { summary: 'Remove-NetVirtualizationLookupRecord', tags, querystring: LookupRecordQuery } },
    async (req) => removed(await hnv.removeLookupRecords(req.query)));

  app.get<{ Querystring: CustomerRouteQuery }>(`${BASE}/customer-routes`,
    { schema: { summary: 'Get-NetVirtualizationCustomerRoute', tags, querystring: CustomerRouteQuery } }, async (req) => hnv.customerRoutes(req.query));
  app.post<{ Body: CustomerRouteBody }>(`${BASE}/customer-routes`,
    { schema: { summary: 'New-NetVirtualizationCustomerRoute', tags, body: CustomerRouteBody } },
    async (req, reply) => reply.code(201).send(await hnv.newCustomerRoute(req.body)));
  app.delete<{ Querystring: CustomerRouteQuery }>(`${BASE}/customer-routes`,
    { schema: { summary: 'Remove-NetVirtualizationCustomerRoute', tags, querystring: CustomerRouteQuery } },
    async (req) => removed(await hnv.removeCustomerRoutes(req.query)));

  // The web console's VM networks page: which VM adapter is where (host/hnv-adapter-view.ts).
  app.get(`${BASE}/adapters`, { schema: { summary: 'The VM adapters in virtual subnets, with their lookup records (vmhost)', tags } },
    async () => virtualSubnetAdapterRows(host.list().flatMap((vm) => host.network.listAdapters(vm.Id)), hnv.current()));

  // The in-daemon gateway (vmhost's own cmdlets: 2012 R2 had a gateway VM).
  const gateways = host.hnvGateways;
  app.get<{ Querystring: GatewayQuery }>(`${BASE}/gateways`,
    { schema: { summary: 'Get-VmhostNetVirtualizationGateway', tags, querystring: GatewayQuery } }, async (req) => gateways.list(req.query));
  app.post<{ Body: GatewayBody }>(`${BASE}/gateways`,
    { schema: { summary: 'New-VmhostNetVirtualizationGateway', tags, body: GatewayBody } },
    async (req, reply) => reply.code(201).send(await gateways.add(req.body)));
  app.delete<{ Querystring: GatewayQuery }>(`${BASE}/gateways`,
    { schema: { summary: 'Remove-VmhostNetVirtualizationGateway', tags, querystring: GatewayQuery } },
    async (req) => removed(await gateways.remove(req.query)));

  // A VM adapter's isolation and routing domains (?Name= picks adapters, as the other adapter routes).
  const policies = host.network.policies;
  const adapters = '/api/v1/vms/:vm/network-adapters';
  app.get<Vm>(`${adapters}/isolation`, { schema: { summary: 'Get-VmNetworkAdapterIsolation', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => policies.isolation(req.params.vm, req.query.Name));
  app.patch<Vm & { Body: SetIsolationBody }>(`${adapters}/isolation`,
    { schema: { summary: 'Set-VmNetworkAdapterIsolation (the port\'s virtual subnet or access VLAN follows)', tags, params: VmRef, querystring: AdapterQuery, body: SetIsolationBody } },
    async (req) => policies.setIsolation(req.params.vm, req.query.Name, req.body));
  app.get<Vm>(`${adapters}/routing-domains`, { schema: { summary: 'Get-VmNetworkAdapterRoutingDomainMapping', tags, params: VmRef, querystring: AdapterQuery } },
    async (req) => policies.routingDomains(req.params.vm, req.query.Name));
  app.post<Vm & { Body: AddRoutingDomainBody }>(`${adapters}/routing-domains`,
    { schema: { summary: 'Add-VmNetworkAdapterRoutingDomainMapping', tags, params: VmRef, querystring: AdapterQuery, body: AddRoutingDomainBody } },
    async (req, reply) => reply.code(201).send(await policies.addRoutingDomain(req.params.vm, req.query.Name, req.body)));
  app.patch<Vm & { Body: SetRoutingDomainBody }>(`${adapters}/routing-domains`,
    { schema: { summary: 'Set-VmNetworkAdapterRoutingDomainMapping', tags, params: VmRef, querystring: AdapterQuery, body: SetRoutingDomainBody } },
    async (req) => {
      const { RoutingDomain, ...change } = req.body;
      return policies.setRoutingDomain(req.params.vm, req.query.Name, RoutingDomain, change);
    });
  app.delete<{ Params: { vm: string }; Querystring: RemoveRoutingDomainQuery }>(`${adapters}/routing-domains`,
    { schema: { summary: 'Remove-VmNetworkAdapterRoutingDomainMapping', tags, params: VmRef, querystring: RemoveRoutingDomainQuery } },
    async (req, reply) => {
      await policies.removeRoutingDomain(req.params.vm, req.query.Name, req.query.RoutingDomain);
      return reply.code(204).send();
    });
}
