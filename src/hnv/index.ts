// Hyper-V Network Virtualization: the policy model (policy.ts), its compiled lookups (lookup.ts,
// compiled.ts), a VM adapter's isolation and routing domain mappings (adapter-isolation.ts), and
// the NVGRE data path and distributed router as a switch extension (datapath.ts, router.ts),
// the multitenant gateway (gateway.ts, nat-table.ts, nat-rewrite.ts),
// registered here once per process.
import { findExtension, registerExtension } from '../switch/index.ts';
import { hnvExtension } from './datapath.ts';

export * from './policy.ts';
export { HnvTables, sameVirtualSubnet } from './lookup.ts';
export * from './adapter-isolation.ts';
export { HNV_EXTENSION, CUSTOMER_MTU, DEFAULT_PROVIDER_MTU, type HnvExtensionConfig } from './datapath.ts';
export { paMac } from './compiled.ts';
export { GATEWAY_MAC } from './router.ts';
export { HnvGateway, GATEWAY_DATACENTER_PORT, gatewayTenantPort, type GatewayDomain, type GatewayMode, type GatewayOptions } from './gateway.ts';
export { DEFAULT_DATACENTER_MTU, type GatewayIpv6 } from './gateway6.ts';
export { NPT_MAX_PREFIX } from './nptv6.ts';

if (!findExtension(hnvExtension.name)) registerExtension(hnvExtension);
