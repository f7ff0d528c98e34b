// The keys of the cluster's operations (Test-Cluster, Get-ClusterLog, VM monitoring, CAU): a
// prefix of their own beside keys.ts's, so the nodes' loop — which reads everything under
// /vmhost/cluster/ on every pass and runs again on every change there — neither reads nor wakes
// for a log line or a validation report.
//
//   /vmhost/clusterops/log/<node>/<slot>            ClusterLogRecord   the node's cluster-relevant events; slot = Seq mod LOG_SLOTS, so a node holds at most LOG_SLOTS
//   /vmhost/clusterops/validate/<run>/request       ValidationRequest  Test-Cluster asked (every node answers)
//   /vmhost/clusterops/validate/<run>/report/<node> ValidationReport   one node's findings
//   /vmhost/clusterops/monitor/<vmId>               MonitorRecord      Add-ClusterVMMonitoredItem's items of a role, its heartbeat monitoring, and its failures
export const OPS_PREFIX = '/vmhost/clusterops/';
export const LOG_PREFIX = `${OPS_PREFIX}log/`;
export const VALIDATE_PREFIX = `${OPS_PREFIX}validate/`;
export const MONITOR_PREFIX = `${OPS_PREFIX}monitor/`;

/** Events kept per node in etcd: enough for the last hours of a node's cluster activity, bounded whatever it logs. */
export const LOG_SLOTS = 512;

export const logKey = (node: string, seq: number): string => `${LOG_PREFIX}${node}/${String(seq % LOG_SLOTS).padStart(4, '0')}`;
export const validateRequestKey = (run: string): string => `${VALIDATE_PREFIX}${run}/request`;
export const validateReportKey = (run: string, node: string): string => `${VALIDATE_PREFIX}${run}/report/${node}`;
export const monitorKey = (vmId: string): string => `${MONITOR_PREFIX}${vmId}`;

export interface ClusterLogRecord { Node: string; Seq: number; Time: string; Level: string; Code: string; Message: string; VMId?: string; VMName?: string }

/** `Probe`: a file the asking node wrote in the shared folder (relative to it) and what it holds. */
export interface ValidationRequest { Run: string; By: string; Probe: string; ProbeContent: string }

export interface EtcdEndpointCheck { Endpoint: string; Healthy: boolean; Version?: string; Leader?: string; Ms: number; Error?: string }
export interface ValidationReport {
  Node: string;
  /** This node's wall clock when it saw the request (ms since the epoch): the asking node brackets it with its own. */
  ClockMs: number;
  Version: string;
  Etcd: EtcdEndpointCheck[];
  /** The asking node's probe file read here with the same content. */
  StorageVisible: boolean;
  /** A file of this node's written, read back and removed in the shared folder. */
  StorageWritable: boolean;
  StorageError?: string;
  Switches: { Name: string; SwitchType: string }[];
}

export interface MonitoredItem { Service: string }
/**
 * A role's monitored guest services (Add-ClusterVMMonitoredItem) and heartbeat monitoring.
 * `Failures`: when the owner found a service stopped or the heartbeat failed (ms since the epoch),
 * within the restart period — the VM resource's one restart policy; past the threshold the role
 * fails over. `CheckHeartbeat`: the VM resource's private property (absent: 1, Hyper-V's default).
 * `AgentSeen`: the role's guest answered a heartbeat once (heartbeat-policy.ts: only such a guest
 * is restarted for never answering after a start).
 */
export interface MonitorRecord { VMId: string; Items: MonitoredItem[]; Failures: number[]; CheckHeartbeat?: 0 | 1; AgentSeen?: true }

/** The record keeps more than its items: emptied of them it stays. */
export const monitorRecordEmpty = (r: MonitorRecord): boolean => r.Items.length === 0 && r.CheckHeartbeat === undefined && r.AgentSeen === undefined;
