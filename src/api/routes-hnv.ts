// Network virtualization policy routes (the NetWNV cmdlets): provider addresses, lookup
// records, customer routes, each with GET (filters in the query), POST (New-) and DELETE
// (Remove-: everything the query matches; 404 when nothing does). Policy is stored only: the
// switch does not yet encapsulate (host/hnv-store.ts).
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import {
  CustomerRouteBody, CustomerRouteQuery, LookupRecordBody, LookupRecordQuery, ProviderAddressBody, ProviderAddressQuery,
} from './hnv-schemas.ts';

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
}
