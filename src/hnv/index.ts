// Hyper-V Network Virtualization: the policy model (policy.ts) and its compiled lookups (lookup.ts).
export * from './policy.ts';
export { HnvTables, sameVirtualSubnet } from './lookup.ts';
