// Hyper-V Network Virtualization: the policy model (policy.ts), its compiled lookups (lookup.ts), and a VM adapter's isolation and routing domain mappings (adapter-isolation.ts).
export * from './policy.ts';
export { HnvTables, sameVirtualSubnet } from './lookup.ts';
export * from './adapter-isolation.ts';
