// Cluster-Aware Updating's keys, under the cluster operations' prefix (ops-keys.ts): the nodes'
// loop neither reads nor wakes for them.
//
//   /vmhost/clusterops/cau/run                 CauRunRecord  the current run (one at a time), every node's step in it
//   /vmhost/clusterops/cau/coordinator         {Node}        leased: the node driving the run now (never the one it updates)
//   /vmhost/clusterops/cau/request/<node>      CauRequest    what the run asks the node to run (its updater or a script)
//   /vmhost/clusterops/cau/result/<node>       CauResult     how that ended, written by the node
//   /vmhost/clusterops/cau/report/<RunId>      CauRunRecord  a finished run (Get-CauReport)
import { OPS_PREFIX } from './ops-keys.ts';
import type { CauStage } from './cau-plan.ts';

export const CAU_PREFIX = `${OPS_PREFIX}cau/`;
export const CAU_RUN_KEY = `${CAU_PREFIX}run`;
export const CAU_COORDINATOR_KEY = `${CAU_PREFIX}coordinator`;
export const CAU_REQUEST_PREFIX = `${CAU_PREFIX}request/`;
export const CAU_REPORT_PREFIX = `${CAU_PREFIX}report/`;
export const cauRequestKey = (node: string): string => `${CAU_REQUEST_PREFIX}${node}`;
export const cauResultKey = (node: string): string => `${CAU_PREFIX}result/${node}`;
export const cauReportKey = (runId: string): string => `${CAU_REPORT_PREFIX}${runId}`;

/** `Command`: the shell command the node runs (the plugin made it from the run's arguments, or a script). */
export interface CauRequest { RunId: string; RequestId: string; Stage: CauStage; Command: string; TimeoutMs: number }
/** `ExitCode` null: the command did not end by itself (timed out, vanished); `Output`: its last lines. */
export interface CauResult { RunId: string; RequestId: string; ExitCode: number | null; Output: string; Message?: string }
export interface CauCoordinatorRecord { Node: string }
