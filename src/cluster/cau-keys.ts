// Cluster-Aware Updating's keys, under the cluster operations' prefix (ops-keys.ts): the nodes'
// loop neither reads nor wakes for them.
//
//   /vmhost/clusterops/cau/run                 CauRunRecord  the current run (one at a time), every node's step in it
//   /vmhost/clusterops/cau/coordinator         {Node}        leased: the node driving the run now (never the one it updates)
//   /vmhost/clusterops/cau/request/<node>      CauRequest    what the run asks the node to run (its updater or a script)
//   /vmhost/clusterops/cau/result/<node>       CauResult     how that ended, written by the node
//   /vmhost/clusterops/cau/report/<RunId>      CauRunRecord  a finished run (Get-CauReport)
//   /vmhost/clusterops/cau/role                CauRoleRecord the self-updating role (Add-CauClusterRole): its schedule and run options
//   /vmhost/clusterops/cau/plugin/<name>       CauPluginRecord a registered plugin (Register-CauPlugin), name lowercased
//   /vmhost/clusterops/cau/scan/<id>/request   CauScanRequest Invoke-CauScan asked (every node answers, installing nothing)
//   /vmhost/clusterops/cau/scan/<id>/<node>    CauScanResult one node's answer
//   /vmhost/clusterops/cau/trace/<id>/request  {}            Save-CauDebugTrace asked (every node answers with its plug-in outputs)
//   /vmhost/clusterops/cau/trace/<id>/<node>   CauTraceResult one node's answer
import { OPS_PREFIX } from './ops-keys.ts';
import type { EtcdOp } from './etcd-client.ts';
import type { CauRunRecord, CauStage } from './cau-plan.ts';

export const CAU_PREFIX = `${OPS_PREFIX}cau/`;
export const CAU_RUN_KEY = `${CAU_PREFIX}run`;
export const CAU_COORDINATOR_KEY = `${CAU_PREFIX}coordinator`;
export const CAU_REQUEST_PREFIX = `${CAU_PREFIX}request/`;
export const CAU_REPORT_PREFIX = `${CAU_PREFIX}report/`;
export const CAU_ROLE_KEY = `${CAU_PREFIX}role`;
export const CAU_PLUGIN_PREFIX = `${CAU_PREFIX}plugin/`;
export const CAU_SCAN_PREFIX = `${CAU_PREFIX}scan/`;
export const CAU_TRACE_PREFIX = `${CAU_PREFIX}trace/`;
export const cauPluginKey = (name: string): string => `${CAU_PLUGIN_PREFIX}${name.toLowerCase()}`;
export const cauRequestKey = (node: string): string => `${CAU_REQUEST_PREFIX}${node}`;
export const cauResultKey = (node: string): string => `${CAU_PREFIX}result/${node}`;
export const cauReportKey = (runId: string): string => `${CAU_REPORT_PREFIX}${runId}`;

/** A run ends (the coordinator's end, -ForceRecovery): its record kept as a report, the run's keys gone so a new run may start. */
export const endRunOps = (run: CauRunRecord): EtcdOp[] => [
  { put: cauReportKey(run.RunId), value: JSON.stringify(run) }, { delete: CAU_RUN_KEY }, { delete: CAU_COORDINATOR_KEY },
  ...run.Nodes.flatMap((n) => [{ delete: cauRequestKey(n.Node) }, { delete: cauResultKey(n.Node) }]),
];

/** Save-CauDebugTrace's answer of one node: its plug-in outputs (cau-runner.ts `outputs`), newest first, each base64. */
export interface CauTraceResult { Node: string; Files: { Name: string; Base64: string }[] }

/** `Command`: the shell command the node runs (the plugin made it from the run's arguments, or a script). */
export interface CauRequest { RunId: string; RequestId: string; Stage: CauStage; Command: string; TimeoutMs: number }
/** `ExitCode` null: the command did not end by itself (timed out, vanished); `Output`: its last lines. */
export interface CauResult { RunId: string; RequestId: string; ExitCode: number | null; Output: string; Message?: string }
export interface CauCoordinatorRecord { Node: string }
/** Invoke-CauScan's question: `Command` is the plugin's scan command, made by the asking node. */
export interface CauScanRequest { ScanId: string; Command: string; TimeoutMs: number }
/** `Updates`: the scan command's output lines (exit 0); else `Error` says why the node has no list. */
export interface CauScanResult { Node: string; Updates?: string[]; Error?: string }
