// Public surface of failover clustering (cluster/, layer 5): a vmhostd as a node of a cluster
// whose state lives in etcd (DESIGN §7), and the Failover Clustering cmdlets' operations.
export { EtcdClient } from './etcd-client.ts';
export { ClusterNode, type ClusterNodeOptions } from './cluster-node.ts';
export { ClusterAdmin, type ClusterView, type ClusterNodeView, type ClusterGroupView } from './cluster-admin.ts';
export { PRIORITIES, type Priority } from './keys.ts';
export { DEFAULT_LEASE_TIMING, checkLeaseTiming, type LeaseTiming } from './node-lease.ts';
export { drainOnShutdown, SHUTDOWN_DRAIN_TIMEOUT_MS, type ShutdownDrain } from './shutdown-drain.ts';
export { ClusterOps } from './cluster-ops.ts';
export { DEFAULT_HEARTBEAT_TIMING, type HeartbeatTiming } from './heartbeat-policy.ts';
export { ClusterOpsAdmin, type ClusterResourceView, type ClusterParameterView, type MonitoredItemView, type MonitoredStateView } from './ops-admin.ts';
export type { ValidationView, ValidationTest } from './validation.ts';
export type { ClusterLogRecord } from './ops-keys.ts';
export type { ClusterQuorumView } from './quorum.ts';
export { EtcdTenantPolicy } from './hnv-shared.ts';
export { ClusterSharedVolumes, type ClusterSharedVolumeView } from './csv-service.ts';
export { CSV_AUTH_HEADER, CSV_INTERNAL_PATH } from './csv-wire.ts';
export { CauAgent } from './cau-agent.ts';
export { CauAdmin, type CauPluginView, type CauRunView, type CauReportView, type CauScanView, type CauSetupCheck } from './cau-admin.ts';
export { CauRoleAdmin, type CauRoleView } from './cau-role.ts';
export { DEFAULT_CAU_PLUGIN } from './cau-plugin.ts';
export { DAYS_OF_WEEK } from './cau-schedule.ts';
export type { CauFailbackMode } from './cau-plan.ts';
