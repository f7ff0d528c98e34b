// Request shapes of the network virtualization (NetWNV) routes. The shapes only: values are
// checked and normalized by src/hnv/policy.ts, whose errors name the parameter.
import { Type, type Static } from '@sinclair/typebox';

const Address = Type.String({ minLength: 1, maxLength: 64 });
const Vsid = Type.Integer({ minimum: 4096, maximum: 16_777_214 });
const Guid = Type.String({ minLength: 36, maxLength: 38 });

export const ProviderAddressBody = Type.Object({
  ProviderAddress: Address, InterfaceIndex: Type.Integer({ minimum: 1 }), PrefixLength: Type.Integer({ minimum: 1, maximum: 128 }),
  VlanID: Type.Optional(Type.Integer({ minimum: 0, maximum: 4094 })),
}, { additionalProperties: false });
export type ProviderAddressBody = Static<typeof ProviderAddressBody>;
export const ProviderAddressQuery = Type.Object({ ProviderAddress: Type.Optional(Address), InterfaceIndex: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
export type ProviderAddressQuery = Static<typeof ProviderAddressQuery>;

export const LookupRecordBody = Type.Object({
  CustomerAddress: Address, VirtualSubnetID: Vsid, MACAddress: Type.String({ minLength: 12, maxLength: 17 }), ProviderAddress: Address,
  Rule: Type.Union([Type.Literal('TranslationMethodEncap'), Type.Literal('TranslationMethodNat')]),
  Type: Type.Optional(Type.Union([Type.Literal('Static'), Type.Literal('Dynamic'), Type.Literal('L2Only'), Type.Literal('GatewayWildcard')])),
  CustomerID: Type.Optional(Guid), VMName: Type.Optional(Type.String({ maxLength: 100 })), UseVmMACAddress: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type LookupRecordBody = Static<typeof LookupRecordBody>;
export const LookupRecordQuery = Type.Object({
  CustomerAddress: Type.Optional(Address), VirtualSubnetID: Type.Optional(Vsid), ProviderAddress: Type.Optional(Address),
  MACAddress: Type.Optional(Type.String({ minLength: 12, maxLength: 17 })), CustomerID: Type.Optional(Guid), VMName: Type.Optional(Type.String({ maxLength: 100 })),
}, { additionalProperties: false });
export type LookupRecordQuery = Static<typeof LookupRecordQuery>;

export const CustomerRouteBody = Type.Object({
  RoutingDomainID: Guid, VirtualSubnetID: Vsid, DestinationPrefix: Type.String({ minLength: 1, maxLength: 64 }), NextHop: Address,
  Metric: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
}, { additionalProperties: false });
export type CustomerRouteBody = Static<typeof CustomerRouteBody>;
export const CustomerRouteQuery = Type.Object({
  RoutingDomainID: Type.Optional(Guid), VirtualSubnetID: Type.Optional(Vsid), DestinationPrefix: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, { additionalProperties: false });
export type CustomerRouteQuery = Static<typeof CustomerRouteQuery>;

// A VM adapter's isolation and routing domain mappings (Set-VmNetworkAdapterIsolation, *-VmNetworkAdapterRoutingDomainMapping).
export const SetIsolationBody = Type.Object({
  IsolationMode: Type.Optional(Type.Union([Type.Literal('None'), Type.Literal('NativeVirtualSubnet'), Type.Literal('ExternalVirtualSubnet'), Type.Literal('Vlan')])),
  DefaultIsolationID: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_777_214 })), AllowUntaggedTraffic: Type.Optional(Type.Boolean()),
  MultiTenantStack: Type.Optional(Type.Union([Type.Literal('On'), Type.Literal('Off')])),
}, { additionalProperties: false, minProperties: 1 });
export type SetIsolationBody = Static<typeof SetIsolationBody>;
const IsolationIds = Type.Array(Vsid, { maxItems: 4096 });
const IsolationNames = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 4096 });
export const AddRoutingDomainBody = Type.Object({
  RoutingDomainID: Guid, RoutingDomainName: Type.String({ minLength: 1, maxLength: 100 }), IsolationID: Type.Optional(IsolationIds), IsolationName: Type.Optional(IsolationNames),
}, { additionalProperties: false });
export type AddRoutingDomainBody = Static<typeof AddRoutingDomainBody>;
/** `RoutingDomain`: the mapping's routing domain ID or name. */
export const SetRoutingDomainBody = Type.Object({
  RoutingDomain: Type.String({ minLength: 1, maxLength: 100 }), NewRoutingDomainName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  IsolationID: Type.Optional(IsolationIds), IsolationName: Type.Optional(IsolationNames),
}, { additionalProperties: false });
export type SetRoutingDomainBody = Static<typeof SetRoutingDomainBody>;
export const RemoveRoutingDomainQuery = Type.Object({
  Name: Type.Optional(Type.String({ minLength: 1 })), RoutingDomain: Type.String({ minLength: 1, maxLength: 100 }),
}, { additionalProperties: false });
export type RemoveRoutingDomainQuery = Static<typeof RemoveRoutingDomainQuery>;

// The in-daemon gateway (New-/Get-/Remove-VmhostNetVirtualizationGateway); values checked by host/hnv-gateways.ts.
const SwitchName = Type.String({ minLength: 1, maxLength: 100 });
export const GatewayBody = Type.Object({
  RoutingDomainID: Guid, VirtualSubnetID: Vsid, CustomerAddress: Address, ExternalSwitchName: SwitchName, DatacenterSwitchName: SwitchName,
  ExternalAddress: Address, Mode: Type.Optional(Type.Union([Type.Literal('Nat'), Type.Literal('Forwarding')])),
  CustomerIPv6Address: Type.Optional(Address), ExternalIPv6Address: Type.Optional(Address),
  InternalIPv6Prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })), ExternalIPv6Prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
  DatacenterIPv6Mtu: Type.Optional(Type.Integer()),
}, { additionalProperties: false });
export type GatewayBody = Static<typeof GatewayBody>;
export const GatewayQuery = Type.Object({ RoutingDomainID: Type.Optional(Guid) }, { additionalProperties: false });
export type GatewayQuery = Static<typeof GatewayQuery>;
