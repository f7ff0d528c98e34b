// The NetWNV cmdlets of Windows Server 2012 R2 (network virtualization policy):
// New-/Get-/Remove-NetVirtualizationProviderAddress, -LookupRecord, -CustomerRoute. The policy
// is stored by the daemon (host/hnv-store.ts) and forwarded by on every External switch while
// the host has a provider address (src/hnv/datapath.ts). Values are checked by the daemon (src/hnv/policy.ts).
// Also vmhost's own *-VmhostNetVirtualizationGateway: the in-daemon gateway (host/hnv-gateways.ts).
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const BASE = '/host/network-virtualization';
const Vsid = { type: 'int', min: 4096, max: 16_777_214, help: 'Virtual subnet ID (VSID), 4096-16777214' } as const;
const Address = { type: 'string', help: 'IPv4 or IPv6 address' } as const;
const Guid = { type: 'string', help: 'Routing domain ID, a GUID ({…} or bare)' } as const;

const cols = (...names: string[]) => ({ columns: names.map((c) => ({ label: c, value: c })) });
const paView = cols('ProviderAddress', 'InterfaceIndex', 'PrefixLength', 'VlanID', 'AddressState');
const recordView = cols('CustomerAddress', 'VirtualSubnetID', 'MACAddress', 'ProviderAddress', 'CustomerID', 'Rule', 'Type', 'VMName');
const routeView = cols('RoutingDomainID', 'VirtualSubnetID', 'DestinationPrefix', 'NextHop', 'Metric');

/** The given filter parameters as a query string (Get- and Remove- take the same ones). */
function query<T extends object>(args: T, names: readonly (keyof T & string)[]): string {
  const q = new URLSearchParams();
  for (const n of names) if (args[n] !== undefined) q.set(n, String(args[n]));
  return q.size ? `?${q}` : '';
}

const PA_FILTER = ['ProviderAddress', 'InterfaceIndex'] as const;
const RECORD_FILTER = ['CustomerAddress', 'VirtualSubnetID', 'ProviderAddress', 'MACAddress', 'CustomerID', 'VMName'] as const;
const ROUTE_FILTER = ['RoutingDomainID', 'VirtualSubnetID', 'DestinationPrefix'] as const;

export const getNetVirtualizationProviderAddress = defineCmdlet({
  name: 'Get-NetVirtualizationProviderAddress', synopsis: 'List this host\'s provider addresses (network virtualization)',
  params: { ProviderAddress: Address, InterfaceIndex: { type: 'int', min: 1 } }, positional: ['ProviderAddress'], view: paView,
  async run(args, ctx) { return clientFor(ctx).call('GET', `${BASE}/provider-addresses${query(args, PA_FILTER)}`); },
});

export const newNetVirtualizationProviderAddress = defineCmdlet({
  name: 'New-NetVirtualizationProviderAddress', synopsis: 'Give this host a provider address on an interface',
  params: {
    ProviderAddress: { ...Address, mandatory: true }, InterfaceIndex: { type: 'int', min: 1, mandatory: true, help: 'Get-NetAdapter\'s ifIndex' },
    PrefixLength: { type: 'int', min: 1, max: 128, mandatory: true }, VlanID: { type: 'int', min: 0, max: 4094 },
  },
  positional: ['ProviderAddress'], view: paView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', `${BASE}/provider-addresses`, { ProviderAddress: args.ProviderAddress, InterfaceIndex: args.InterfaceIndex, PrefixLength: args.PrefixLength, VlanID: args.VlanID });
  },
});

export const removeNetVirtualizationProviderAddress = defineCmdlet({
  name: 'Remove-NetVirtualizationProviderAddress', synopsis: 'Remove the provider addresses the parameters match',
  params: { ProviderAddress: Address, InterfaceIndex: { type: 'int', min: 1 } }, positional: ['ProviderAddress'], supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.ProviderAddress ?? 'all provider addresses')) return undefined;
    await clientFor(ctx).call('DELETE', `${BASE}/provider-addresses${query(args, PA_FILTER)}`);
    return undefined;
  },
});

const recordFilter = { CustomerAddress: Address, VirtualSubnetID: Vsid, ProviderAddress: Address, MACAddress: { type: 'string' }, CustomerID: Guid, VMName: { type: 'string' } } as const;

export const getNetVirtualizationLookupRecord = defineCmdlet({
  name: 'Get-NetVirtualizationLookupRecord', synopsis: 'List lookup records: where a customer address of a virtual subnet lives (CA → PA)',
  params: recordFilter, positional: ['CustomerAddress'], view: recordView,
  async run(args, ctx) { return clientFor(ctx).call('GET', `${BASE}/lookup-records${query(args, RECORD_FILTER)}`); },
});

export const newNetVirtualizationLookupRecord = defineCmdlet({
  name: 'New-NetVirtualizationLookupRecord', synopsis: 'Add a lookup record (customer address in a virtual subnet → provider address)',
  params: {
    CustomerAddress: { ...Address, mandatory: true }, VirtualSubnetID: { ...Vsid, mandatory: true }, MACAddress: { type: 'string', mandatory: true },
    ProviderAddress: { ...Address, mandatory: true }, Rule: { type: 'enum', values: ['TranslationMethodEncap', 'TranslationMethodNat'], mandatory: true },
    Type: { type: 'enum', values: ['Static', 'Dynamic', 'L2Only', 'GatewayWildcard'] }, CustomerID: Guid, VMName: { type: 'string' }, UseVmMACAddress: { type: 'bool' },
  },
  positional: ['CustomerAddress'], view: recordView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', `${BASE}/lookup-records`, {
      CustomerAddress: args.CustomerAddress, VirtualSubnetID: args.VirtualSubnetID, MACAddress: args.MACAddress, ProviderAddress: args.ProviderAddress,
      Rule: args.Rule, Type: args.Type, CustomerID: args.CustomerID, VMName: args.VMName, UseVmMACAddress: args.UseVmMACAddress,
    });
  },
});

export const removeNetVirtualizationLookupRecord = defineCmdlet({
  name: 'Remove-NetVirtualizationLookupRecord', synopsis: 'Remove the lookup records the parameters match',
  params: recordFilter, positional: ['CustomerAddress'], supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.CustomerAddress ?? 'the matching lookup records')) return undefined;
    await clientFor(ctx).call('DELETE', `${BASE}/lookup-records${query(args, RECORD_FILTER)}`);
    return undefined;
  },
});

const routeFilter = { RoutingDomainID: Guid, VirtualSubnetID: Vsid, DestinationPrefix: { type: 'string', help: 'ADDRESS/LENGTH' } } as const;

export const getNetVirtualizationCustomerRoute = defineCmdlet({
  name: 'Get-NetVirtualizationCustomerRoute', synopsis: 'List customer routes of routing domains',
  params: routeFilter, positional: ['DestinationPrefix'], view: routeView,
  async run(args, ctx) { return clientFor(ctx).call('GET', `${BASE}/customer-routes${query(args, ROUTE_FILTER)}`); },
});

export const newNetVirtualizationCustomerRoute = defineCmdlet({
  name: 'New-NetVirtualizationCustomerRoute', synopsis: 'Add a customer route: a prefix of a routing domain, on-link in a virtual subnet (NextHop 0.0.0.0) or via a next hop',
  params: {
    RoutingDomainID: { ...Guid, mandatory: true }, VirtualSubnetID: { ...Vsid, mandatory: true }, DestinationPrefix: { ...routeFilter.DestinationPrefix, mandatory: true },
    NextHop: { ...Address, mandatory: true }, Metric: { type: 'int', min: 0, max: 4_294_967_295 },
  },
  positional: ['DestinationPrefix'], view: routeView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', `${BASE}/customer-routes`, {
      RoutingDomainID: args.RoutingDomainID, VirtualSubnetID: args.VirtualSubnetID, DestinationPrefix: args.DestinationPrefix, NextHop: args.NextHop, Metric: args.Metric,
    });
  },
});

export const removeNetVirtualizationCustomerRoute = defineCmdlet({
  name: 'Remove-NetVirtualizationCustomerRoute', synopsis: 'Remove the customer routes the parameters match',
  params: routeFilter, positional: ['DestinationPrefix'], supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.DestinationPrefix ?? 'the matching customer routes')) return undefined;
    await clientFor(ctx).call('DELETE', `${BASE}/customer-routes${query(args, ROUTE_FILTER)}`);
    return undefined;
  },
});

// vmhost's own: the in-daemon multitenant gateway (2012 R2 ran a gateway VM and had no NAT gateway cmdlets). One routing domain each.
const gatewayView = cols('RoutingDomainID', 'VirtualSubnetID', 'CustomerAddress', 'Mode', 'ExternalAddress', 'ExternalIPv6Prefix', 'Translations', 'Status');
const GATEWAY_FILTER = ['RoutingDomainID'] as const;

export const getVmhostNetVirtualizationGateway = defineCmdlet({
  name: 'Get-VmhostNetVirtualizationGateway', synopsis: 'List the routing domains the in-daemon gateway serves, with its translations and drop counters (vmhost cmdlet)',
  params: { RoutingDomainID: Guid }, positional: ['RoutingDomainID'], view: gatewayView,
  async run(args, ctx) { return clientFor(ctx).call('GET', `${BASE}/gateways${query(args, GATEWAY_FILTER)}`); },
});

export const newVmhostNetVirtualizationGateway = defineCmdlet({
  name: 'New-VmhostNetVirtualizationGateway',
  synopsis: 'Serve a routing domain by the in-daemon gateway: a port in one of its subnets on the External switch (the CA its default route names, with a lookup record on this host) and one on the Internal "datacenter" switch; NAT to the external address or forwarding (vmhost cmdlet: 2012 R2 had no NAT gateway cmdlets)',
  params: {
    RoutingDomainID: { ...Guid, mandatory: true }, VirtualSubnetID: { ...Vsid, mandatory: true },
    CustomerAddress: { ...Address, mandatory: true, help: 'The gateway\'s CA in the subnet (the next hop of the domain\'s 0.0.0.0/0 customer route)' },
    ExternalSwitchName: { type: 'string', mandatory: true, help: 'The External switch carrying the virtual subnet' },
    DatacenterSwitchName: { type: 'string', mandatory: true, help: 'The Internal switch standing for the datacenter' },
    ExternalAddress: { ...Address, mandatory: true, help: 'IPv4 address on the datacenter switch: the NAT source, or the next hop toward the domain (Forwarding)' },
    Mode: { type: 'enum', values: ['Nat', 'Forwarding'], help: 'Nat (default) or Forwarding (routed unchanged)' },
    CustomerIPv6Address: { ...Address, help: 'IPv6 through the gateway: its IPv6 CA in the subnet (the next hop of the domain\'s ::/0 route; a lookup record with the same MAC as CustomerAddress\'s)' },
    ExternalIPv6Address: { ...Address, help: 'Its IPv6 address on the datacenter switch, to which the datacenter routes the domain\'s prefix (Forwarding) or its external prefix (Nat)' },
    InternalIPv6Prefix: { type: 'string', help: 'Nat mode: the NPTv6 (RFC 6296) internal prefix, holding the domain\'s IPv6 subnets (at most /64)' },
    ExternalIPv6Prefix: { type: 'string', help: 'Nat mode: the NPTv6 external prefix on the datacenter, as long as the internal one, this domain\'s alone' },
    DatacenterIPv6Mtu: { type: 'int', min: 1280, max: 9000, help: 'The datacenter\'s IPv6 MTU (default 1500): a bigger packet from a VM gets Packet Too Big' },
  },
  positional: ['RoutingDomainID'], view: gatewayView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', `${BASE}/gateways`, {
      RoutingDomainID: args.RoutingDomainID, VirtualSubnetID: args.VirtualSubnetID, CustomerAddress: args.CustomerAddress, ExternalSwitchName: args.ExternalSwitchName,
      DatacenterSwitchName: args.DatacenterSwitchName, ExternalAddress: args.ExternalAddress, Mode: args.Mode,
      CustomerIPv6Address: args.CustomerIPv6Address, ExternalIPv6Address: args.ExternalIPv6Address, InternalIPv6Prefix: args.InternalIPv6Prefix,
      ExternalIPv6Prefix: args.ExternalIPv6Prefix, DatacenterIPv6Mtu: args.DatacenterIPv6Mtu,
    });
  },
});

export const removeVmhostNetVirtualizationGateway = defineCmdlet({
  name: 'Remove-VmhostNetVirtualizationGateway', synopsis: 'Stop serving the routing domains the parameters match (vmhost cmdlet)',
  params: { RoutingDomainID: Guid }, positional: ['RoutingDomainID'], supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.RoutingDomainID ?? 'every routing domain the gateway serves')) return undefined;
    await clientFor(ctx).call('DELETE', `${BASE}/gateways${query(args, GATEWAY_FILTER)}`);
    return undefined;
  },
});
