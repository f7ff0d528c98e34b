// Hyper-V Replica (layer 5): primaries and the Replica server between two daemons over TLS.
export { Replication } from './replication.ts';
export type { ReplicationSettings, ReplicationView } from './primary.ts';
export type { ReplicationServerSettings, AuthorizationEntry } from './authorization.ts';
