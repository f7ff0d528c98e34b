// Cluster-Aware Updating's cmdlets (reference §2): Invoke-CauRun, Get-CauRun, Stop-CauRun,
// Get-CauReport, Test-CauSetup. -ClusterName is accepted and means the cluster of the node this
// CLI reaches. Invoke-CauRun and Get-CauRun -WaitForCompletion follow the run until it ends; the
// node they reach may be restarted by the run itself (its update), so they ride out a daemon that
// does not answer for a while.
import { VmhostError, isVmhostError } from '../../common/index.ts';
import type { CauReportView, CauRunView, CauSetupCheck } from '../../cluster/index.ts';
import type { ApiClient } from '../client.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { parseHashtable } from '../hashtable.ts';
import { query } from '../query.ts';
import { clientFor } from './vm-select.ts';

const ClusterName = { type: 'string', aliases: ['Cluster'], help: 'The cluster (the one of the node this CLI reaches)' } as const;
const cols = (...names: string[]): { columns: { label: string; value: string }[] } => ({ columns: names.map((c) => ({ label: c, value: c })) });
const POLL_MS = 1000;
/** How long the reached daemon may be unreachable (its own update restarting it) before the wait gives up. */
const UNREACHABLE_MS = 300_000;

async function waitForEnd(api: ApiClient, runId: string | undefined, warn: (m: string) => void): Promise<void> {
  let unreachableSince: number | undefined;
  for (;;) {
    try {
      const v = await api.call<CauRunView>('GET', '/cluster/cau/run');
      unreachableSince = undefined;
      if (v.RunState === 'NotRunning' || (runId !== undefined && v.RunId !== runId)) return;
    } catch (e) {
      if (!isVmhostError(e) || e.code !== 'CONNECTION_FAILED') throw e;
      if (unreachableSince === undefined) {
        unreachableSince = Date.now();
        warn('the node this CLI reaches does not answer (the run may be updating it): waiting');
      }
      if (Date.now() - unreachableSince > UNREACHABLE_MS) throw e;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export const invokeCauRun = defineCmdlet({
  name: 'Invoke-CauRun',
  synopsis: 'Update every node in turn: drain it (live moves), run the plugin\'s updater on it, wait until it is back, resume it',
  params: {
    ClusterName,
    CauPluginName: { type: 'string', help: 'The updater (default vmhost.Command: the administrator\'s command)' },
    CauPluginArguments: { type: 'string', array: true, mandatory: true, help: 'The plugin\'s arguments: @{Command=\'…\'} (vmhost.Command)' },
    MaxFailedNodes: { type: 'int', min: 0, max: 64, help: 'Nodes that may fail before the run fails (default 0)' },
    MaxRetriesPerNode: { type: 'int', min: 1, max: 64, help: 'Update attempts per node (default 3)' },
    NodeOrder: { type: 'string', array: true, help: 'Every node, in the order to update them (default: by name)' },
    RequireAllNodesOnline: { type: 'switch', help: 'Refuse to start while a node is not Up' },
    RebootTimeoutMinutes: { type: 'int', min: 1, max: 1440, help: 'How long one node\'s update and its return may take (default 15)' },
    FailbackMode: { type: 'enum', values: ['NoFailback', 'Immediate', 'Policy'], help: 'What resuming a node does with the roles its drain moved (default NoFailback)' },
    PreUpdateScript: { type: 'string', help: 'A shell command each node runs before it is drained' },
    PostUpdateScript: { type: 'string', help: 'A shell command each node runs after it is resumed' },
    Force: { type: 'switch', help: 'Accepted: the run starts without asking' },
  },
  view: cols('ClusterName', 'RunId', 'ClusterResult', 'NodesSucceeded', 'NodesFailed', 'RunDuration', 'Message'),
  supportsShouldProcess: true,
  async run(args, ctx) {
    const body = {
      CauPluginName: args.CauPluginName ?? 'vmhost.Command', CauPluginArguments: parseHashtable('CauPluginArguments', args.CauPluginArguments),
      ...(args.MaxFailedNodes !== undefined ? { MaxFailedNodes: args.MaxFailedNodes } : {}),
      ...(args.MaxRetriesPerNode !== undefined ? { MaxRetriesPerNode: args.MaxRetriesPerNode } : {}),
      ...(args.NodeOrder !== undefined ? { NodeOrder: args.NodeOrder } : {}),
      ...(args.RequireAllNodesOnline ? { RequireAllNodesOnline: true } : {}),
      ...(args.RebootTimeoutMinutes !== undefined ? { RebootTimeoutMinutes: args.RebootTimeoutMinutes } : {}),
      ...(args.FailbackMode !== undefined ? { FailbackMode: args.FailbackMode } : {}),
      ...(args.PreUpdateScript !== undefined ? { PreUpdateScript: args.PreUpdateScript } : {}),
      ...(args.PostUpdateScript !== undefined ? { PostUpdateScript: args.PostUpdateScript } : {}),
    };
    if (!ctx.shouldProcess(`cluster ${args.ClusterName ?? '(this node\'s)'}`)) return undefined;
    const api = clientFor(ctx);
    const started = await api.call<CauRunView>('POST', '/cluster/cau/run', body);
    await waitForEnd(api, started.RunId, ctx.warn);
    const report = (await api.call<CauReportView[]>('GET', '/cluster/cau/reports?Detailed=true')).find((r) => r.RunId === started.RunId);
    if (!report) throw new VmhostError('NOT_FOUND', `CAU run ${started.RunId} ended without a report`, {});
    if (report.ClusterResult !== 'Succeeded') ctx.warn(`Invoke-CauRun: the run ${report.ClusterResult}${report.Message ? `: ${report.Message}` : ''}`);
    return report;
  },
});

export const getCauRun = defineCmdlet({
  name: 'Get-CauRun',
  synopsis: 'The updating run in progress: its state, the current node, each node\'s step',
  params: {
    ClusterName,
    ShowClusterNodeState: { type: 'switch', help: 'Add each node\'s cluster state (Up, Down, Paused)' },
    WaitForStart: { type: 'switch', help: 'Accepted: a run is started by Invoke-CauRun at once' },
    WaitForCompletion: { type: 'switch', help: 'Wait until the run in progress ends' },
  },
  view: cols('ClusterName', 'RunState', 'RunId', 'CurrentNode', 'CurrentOrchestrator'),
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (args.WaitForCompletion) await waitForEnd(api, undefined, ctx.warn);
    return api.call<CauRunView>('GET', `/cluster/cau/run${query({ ShowClusterNodeState: args.ShowClusterNodeState ? 'true' : undefined })}`);
  },
});

export const stopCauRun = defineCmdlet({
  name: 'Stop-CauRun',
  synopsis: 'End the updating run at its next step (a node it paused stays Paused)',
  params: { ClusterName, Wait: { type: 'switch', help: 'Wait until the run has ended' }, Force: { type: 'switch', help: 'Accepted' } },
  view: cols('ClusterName', 'RunState', 'RunId', 'CurrentNode'),
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess('the updating run')) return undefined;
    const api = clientFor(ctx);
    const v = await api.call<CauRunView>('DELETE', '/cluster/cau/run');
    if (args.Wait) await waitForEnd(api, v.RunId, ctx.warn);
    return args.PassThru ? v : undefined;
  },
});

export const getCauReport = defineCmdlet({
  name: 'Get-CauReport',
  synopsis: 'Finished updating runs: result, nodes updated and failed (-Detailed: each node\'s steps)',
  params: { ClusterName, Last: { type: 'switch', help: 'Only the last run' }, Detailed: { type: 'switch', help: 'Each node\'s result' } },
  view: cols('ClusterName', 'RunStartTime', 'RunDuration', 'ClusterResult', 'NodesSucceeded', 'NodesFailed'),
  async run(args, ctx) {
    return clientFor(ctx).call<CauReportView[]>('GET', `/cluster/cau/reports${query({ Last: args.Last ? 'true' : undefined, Detailed: args.Detailed ? 'true' : undefined })}`);
  },
});

export const testCauSetup = defineCmdlet({
  name: 'Test-CauSetup',
  synopsis: 'Whether an updating run could go through now: nodes Up, roles movable, quorum with one node down',
  params: { ClusterName },
  view: cols('Title', 'State', 'Detail'),
  async run(_args, ctx) {
    return clientFor(ctx).call<CauSetupCheck[]>('GET', '/cluster/cau/setup');
  },
});
