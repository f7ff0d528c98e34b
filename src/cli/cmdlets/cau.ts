// Cluster-Aware Updating's cmdlets (reference §2): Invoke-CauRun, Get-CauRun, Stop-CauRun,
// Get-CauReport, Export-CauReport, Save-CauDebugTrace, Test-CauSetup, Invoke-CauScan, the self-updating role
// (Add-/Set-/Get-/Enable-/Disable-/Remove-CauClusterRole), Get-/Register-/Unregister-CauPlugin. -ClusterName is accepted and means the cluster of the node this
// CLI reaches. Invoke-CauRun and Get-CauRun -WaitForCompletion follow the run until it ends; the
// node they reach may be restarted by the run itself (its update), so they ride out a daemon that
// does not answer for a while.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VmhostError, isVmhostError } from '../../common/index.ts';
import type { CauPluginView, CauReportView, CauRoleView, CauRunView, CauScanView, CauSetupCheck } from '../../cluster/index.ts';
import { DAYS_OF_WEEK } from '../../cluster/cau-schedule.ts';
import { reportsCsv, reportsHtml } from '../cau-report-format.ts';
import { parseTimeSpan } from '../../host/metering-settings.ts';
import { tarArchive } from '../tar.ts';
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

const runParams = {
    MaxFailedNodes: { type: 'int', min: 0, max: 64, help: 'Nodes that may fail before the run fails (default 0)' },
    MaxRetriesPerNode: { type: 'int', min: 1, max: 64, help: 'Update attempts per node (default 3)' },
    NodeOrder: { type: 'string', array: true, help: 'Every node, in the order to update them (default: by name)' },
    RequireAllNodesOnline: { type: 'switch', help: 'Refuse to start while a node is not Up' },
    RebootTimeoutMinutes: { type: 'int', min: 1, max: 1440, help: 'How long one node\'s update and its return may take (default 15)' },
    FailbackMode: { type: 'enum', values: ['NoFailback', 'Immediate', 'Policy'], help: 'What resuming a node does with the roles its drain moved (default NoFailback)' },
    PreUpdateScript: { type: 'string', help: 'A shell command each node runs before it is drained' },
    PostUpdateScript: { type: 'string', help: 'A shell command each node runs after it is resumed' },
} as const;

type RunArgs = { [K in 'MaxFailedNodes' | 'MaxRetriesPerNode' | 'RebootTimeoutMinutes']?: number } & { NodeOrder?: string[]; RequireAllNodesOnline?: boolean; FailbackMode?: string; PreUpdateScript?: string; PostUpdateScript?: string };
/** The run options given, as the API takes them (a switch not given is left out, so Set-CauClusterRole keeps the role's). */
function runBody(args: RunArgs): Record<string, unknown> {
  return {
    ...(args.MaxFailedNodes !== undefined ? { MaxFailedNodes: args.MaxFailedNodes } : {}),
    ...(args.MaxRetriesPerNode !== undefined ? { MaxRetriesPerNode: args.MaxRetriesPerNode } : {}),
    ...(args.NodeOrder !== undefined ? { NodeOrder: args.NodeOrder } : {}),
    ...(args.RequireAllNodesOnline ? { RequireAllNodesOnline: true } : {}),
    ...(args.RebootTimeoutMinutes !== undefined ? { RebootTimeoutMinutes: args.RebootTimeoutMinutes } : {}),
    ...(args.FailbackMode !== undefined ? { FailbackMode: args.FailbackMode } : {}),
    ...(args.PreUpdateScript !== undefined ? { PreUpdateScript: args.PreUpdateScript } : {}),
    ...(args.PostUpdateScript !== undefined ? { PostUpdateScript: args.PostUpdateScript } : {}),
  };
}

export const invokeCauRun = defineCmdlet({
  name: 'Invoke-CauRun',
  synopsis: 'Update every node in turn: drain it (live moves), run the plugin\'s updater on it, wait until it is back, resume it',
  params: {
    ClusterName,
    CauPluginName: { type: 'string', help: 'The updater (default vmhost.Command: the administrator\'s command)' },
    CauPluginArguments: { type: 'string', array: true, mandatory: true, help: 'The plugin\'s arguments: @{Command=\'…\'} (vmhost.Command)' },
    ...runParams,
    StopAfter: { type: 'string', help: 'A time span ([d.]hh:mm[:ss] or seconds) from the start after which no node is started: the run ends Cancelled (a node being updated is finished first)' },
    ForceRecovery: { type: 'switch', help: 'End a run left in progress now (kept as a Cancelled report) and start this one: for a run the automatic takeover of a failed coordinator does not clear' },
    Force: { type: 'switch', help: 'Accepted: the run starts without asking' },
  },
  view: cols('ClusterName', 'RunId', 'ClusterResult', 'NodesSucceeded', 'NodesFailed', 'RunDuration', 'Message'),
  supportsShouldProcess: true,
  async run(args, ctx) {
    const stopAfter = args.StopAfter === undefined ? undefined : parseTimeSpan(args.StopAfter, 'StopAfter');
    const body = {
      CauPluginName: args.CauPluginName ?? 'vmhost.Command', CauPluginArguments: parseHashtable('CauPluginArguments', args.CauPluginArguments), ...runBody(args),
      ...(stopAfter !== undefined ? { StopAfterSeconds: stopAfter } : {}), ...(args.ForceRecovery ? { ForceRecovery: true } : {}),
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
  params: {
    ClusterName, Last: { type: 'switch', help: 'Only the last run (of those in the dates given)' }, Detailed: { type: 'switch', help: 'Each node\'s result' },
    StartDate: { type: 'string', help: 'Runs that started at or after this date (ISO 8601: 2026-12-07, 2026-12-07T18:00:00Z)' },
    EndDate: { type: 'string', help: 'Runs that started at or before this date (ISO 8601)' },
  },
  view: cols('ClusterName', 'RunStartTime', 'RunDuration', 'ClusterResult', 'NodesSucceeded', 'NodesFailed'),
  async run(args, ctx) {
    return clientFor(ctx).call<CauReportView[]>('GET', `/cluster/cau/reports${query({ Last: args.Last ? 'true' : undefined, Detailed: args.Detailed ? 'true' : undefined, StartDate: args.StartDate, EndDate: args.EndDate })}`);
  },
});

export const saveCauDebugTrace = defineCmdlet({
  name: 'Save-CauDebugTrace',
  synopsis: 'Save what explains the updating runs — their records, each node\'s CAU events and plug-in outputs — as a tar archive',
  params: {
    ClusterName,
    FilePath: { type: 'string', mandatory: true, help: 'The archive to write (tar: tar -tf lists it)' },
    Force: { type: 'switch', help: 'Overwrite the file if it exists' },
  },
  positional: ['FilePath'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const path = resolve(args.FilePath);
    if (!ctx.shouldProcess(path)) return undefined;
    const entries = await clientFor(ctx).call<{ Name: string; Base64: string }[]>('POST', '/cluster/cau/debug-trace');
    const files = entries.map((e) => ({ Name: e.Name, Data: Buffer.from(e.Base64, 'base64') }));
    await writeFile(path, tarArchive(files, new Date()), { flag: args.Force ? 'w' : 'wx' }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') throw new VmhostError('ALREADY_EXISTS', `Save-CauDebugTrace: '${path}' exists (-Force overwrites it)`, { path });
      throw e;
    });
    ctx.verbose(`${files.length} entries written to ${path}`);
    return undefined;
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

export const exportCauReport = defineCmdlet({
  name: 'Export-CauReport',
  synopsis: 'Save updating-run reports as CSV or HTML (from Get-CauReport -Json output, or the cluster\'s reports)',
  params: {
    InputReport: { type: 'string', help: 'A file of Get-CauReport -Json output (- : standard input); default: the cluster\'s reports, -Detailed' },
    Format: { type: 'enum', values: ['Csv', 'Html'], mandatory: true, help: 'Csv (one row per node of a detailed report) or Html' },
    Path: { type: 'string', mandatory: true, help: 'The file to write' },
    Force: { type: 'switch', help: 'Overwrite the file if it exists' },
    ClusterName,
  },
  positional: ['Path'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    let reports: CauReportView[];
    if (args.InputReport !== undefined) {
      const text = args.InputReport === '-' ? await readStdin() : await readFile(resolve(args.InputReport), 'utf8');
      const parsed = JSON.parse(text) as CauReportView | CauReportView[];
      reports = Array.isArray(parsed) ? parsed : [parsed];
      const bad = reports.findIndex((r) => typeof r !== 'object' || r === null || typeof r.RunId !== 'string');
      if (bad >= 0) throw new VmhostError('INVALID_ARGUMENT', `Export-CauReport -InputReport: item ${bad} is no CAU report (Get-CauReport -Json makes them)`, { param: 'InputReport' });
    } else {
      reports = await clientFor(ctx).call<CauReportView[]>('GET', '/cluster/cau/reports?Detailed=true');
    }
    const path = resolve(args.Path);
    if (!ctx.shouldProcess(path)) return undefined;
    await writeFile(path, args.Format === 'Csv' ? reportsCsv(reports) : reportsHtml(reports), { flag: args.Force ? 'w' : 'wx' }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') throw new VmhostError('ALREADY_EXISTS', `Export-CauReport: '${path}' exists (-Force overwrites it)`, { path });
      throw e;
    });
    ctx.verbose(`${reports.length} report(s) written to ${path}`);
    return undefined;
  },
});

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const invokeCauScan = defineCmdlet({
  name: 'Invoke-CauScan',
  synopsis: 'The updates each node would get (each runs the plug-in\'s scan command; nothing is installed)',
  params: {
    ClusterName,
    CauPluginName: { type: 'string', help: 'The plug-in (default vmhost.Command)' },
    CauPluginArguments: { type: 'string', array: true, mandatory: true, help: 'The plug-in\'s arguments: @{ScanCommand=\'…\'} (vmhost.Command: a command printing one update per line, exit 0)' },
  },
  view: cols('NodeName', 'State', 'UpdateCount', 'Updates', 'Message'),
  async run(args, ctx) {
    return clientFor(ctx).call<CauScanView[]>('POST', '/cluster/cau/scan', {
      CauPluginName: args.CauPluginName ?? 'vmhost.Command', CauPluginArguments: parseHashtable('CauPluginArguments', args.CauPluginArguments),
    });
  },
});

const scheduleParams = {
  DaysOfWeek: { type: 'enum', array: true, values: DAYS_OF_WEEK, help: 'The day(s) of the week the role updates the cluster on' },
  WeeksOfMonth: { type: 'int', array: true, min: 1, max: 5, help: 'Only the n-th such day of the month (1–4; 5: the last)' },
  IntervalWeeks: { type: 'int', min: 1, max: 52, help: 'Only every n-th week, counted from StartDate\'s' },
  StartDate: { type: 'string', help: 'ISO 8601: the first possible run; its UTC time of day is every run\'s (default today 03:00 UTC)' },
} as const;
const roleView = cols('ClusterName', 'Status', 'DaysOfWeek', 'WeeksOfMonth', 'IntervalWeeks', 'StartDate', 'NextRun', 'LastRunTime', 'CauPluginName');
type ScheduleArgs = { DaysOfWeek?: string[]; WeeksOfMonth?: number[]; IntervalWeeks?: number; StartDate?: string };
function scheduleBody(args: ScheduleArgs): Record<string, unknown> {
  return {
    ...(args.DaysOfWeek !== undefined ? { DaysOfWeek: args.DaysOfWeek } : {}), ...(args.WeeksOfMonth !== undefined ? { WeeksOfMonth: args.WeeksOfMonth } : {}),
    ...(args.IntervalWeeks !== undefined ? { IntervalWeeks: args.IntervalWeeks } : {}), ...(args.StartDate !== undefined ? { StartDate: args.StartDate } : {}),
  };
}

export const addCauClusterRole = defineCmdlet({
  name: 'Add-CauClusterRole',
  synopsis: 'Add the self-updating role: the cluster\'s leader starts an updating run at each scheduled time',
  params: {
    ClusterName, ...scheduleParams,
    CauPluginName: { type: 'string', help: 'The updater (default vmhost.Command)' },
    CauPluginArguments: { type: 'string', array: true, mandatory: true, help: 'The plug-in\'s arguments: @{Command=\'…\'} (vmhost.Command)' },
    ...runParams,
    VirtualComputerObjectName: { type: 'string', help: 'Accepted: the role is a record in the cluster\'s etcd, with no computer object' },
    EnableFirewallRules: { type: 'switch', help: 'Accepted: the nodes reach each other through etcd' },
    SuspendClusterRole: { type: 'switch', aliases: ['Disabled'], help: 'Add it Offline (Enable-CauClusterRole starts its schedule)' },
    Force: { type: 'switch', help: 'Accepted: the role is added without asking' },
  },
  view: roleView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const body = {
      ...scheduleBody(args), CauPluginName: args.CauPluginName ?? 'vmhost.Command', CauPluginArguments: parseHashtable('CauPluginArguments', args.CauPluginArguments),
      ...runBody(args), ...(args.SuspendClusterRole ? { Disabled: true } : {}),
    };
    if (!ctx.shouldProcess(`cluster ${args.ClusterName ?? '(this node\'s)'}`)) return undefined;
    return clientFor(ctx).call<CauRoleView>('POST', '/cluster/cau/role', body);
  },
});

export const getCauClusterRole = defineCmdlet({
  name: 'Get-CauClusterRole',
  synopsis: 'The self-updating role: its schedule, next run time and run options',
  params: { ClusterName },
  view: roleView,
  async run(_args, ctx) {
    return clientFor(ctx).call<CauRoleView>('GET', '/cluster/cau/role');
  },
});

export const setCauClusterRole = defineCmdlet({
  name: 'Set-CauClusterRole',
  synopsis: 'Change the self-updating role\'s schedule or run options; -UpdateNow starts a run with them now',
  params: {
    ClusterName, ...scheduleParams,
    CauPluginName: { type: 'string', help: 'The updater' },
    CauPluginArguments: { type: 'string', array: true, help: 'The plug-in\'s arguments' },
    ...runParams,
    UpdateNow: { type: 'switch', help: 'Start an updating run with the role\'s options now' },
    Force: { type: 'switch', help: 'Accepted' },
  },
  view: roleView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const body = {
      ...scheduleBody(args), ...(args.CauPluginName !== undefined ? { CauPluginName: args.CauPluginName } : {}),
      ...(args.CauPluginArguments !== undefined ? { CauPluginArguments: parseHashtable('CauPluginArguments', args.CauPluginArguments) } : {}),
      ...runBody(args), ...(args.UpdateNow ? { UpdateNow: true } : {}),
    };
    if (!ctx.shouldProcess('the CAU clustered role')) return undefined;
    const v = await clientFor(ctx).call<CauRoleView>('PATCH', '/cluster/cau/role', body);
    return args.PassThru || args.UpdateNow ? v : undefined;
  },
});

function roleSwitch(name: string, synopsis: string, method: 'POST' | 'DELETE', path: string) {
  return defineCmdlet({
    name, synopsis,
    params: { ClusterName, Force: { type: 'switch', help: 'Accepted: no question is asked' } },
    view: roleView,
    supportsShouldProcess: true,
    async run(args, ctx) {
      if (!ctx.shouldProcess('the CAU clustered role')) return undefined;
      const v = await clientFor(ctx).call<CauRoleView>(method, path);
      return args.PassThru && method !== 'DELETE' ? v : undefined;
    },
  });
}
export const enableCauClusterRole = roleSwitch('Enable-CauClusterRole', 'Put the self-updating role Online: runs at its scheduled times again (from now on)', 'POST', '/cluster/cau/role/enable');
export const disableCauClusterRole = roleSwitch('Disable-CauClusterRole', 'Put the self-updating role Offline: no scheduled run until it is enabled', 'POST', '/cluster/cau/role/disable');
export const removeCauClusterRole = roleSwitch('Remove-CauClusterRole', 'Remove the self-updating role (a run it started goes on)', 'DELETE', '/cluster/cau/role');

export const getCauPlugin = defineCmdlet({
  name: 'Get-CauPlugin',
  synopsis: 'The updating plug-ins: the built-in vmhost.Command and the registered command templates',
  params: { Name: { type: 'string', help: 'One plug-in' }, ClusterName },
  positional: ['Name'],
  view: cols('Name', 'BuiltIn', 'Description'),
  async run(args, ctx) {
    return clientFor(ctx).call<CauPluginView[]>('GET', `/cluster/cau/plugins${query({ Name: args.Name })}`);
  },
});

export const registerCauPlugin = defineCmdlet({
  name: 'Register-CauPlugin',
  synopsis: 'Register a plug-in: named update and scan command templates ({Name} is the argument Name, shell-quoted)',
  params: {
    Name: { type: 'string', mandatory: true, help: 'The plug-in\'s name (-CauPluginName)' },
    UpdateCommand: { type: 'string', mandatory: true, help: 'What a node runs to update itself, e.g. \'apt-get install -y {Package}\'' },
    ScanCommand: { type: 'string', help: 'What a node runs for Invoke-CauScan: one update per output line' },
    Description: { type: 'string', help: 'What it does' },
    ClusterName,
  },
  positional: ['Name'],
  view: cols('Name', 'BuiltIn', 'Description'),
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    const v = await clientFor(ctx).call<CauPluginView>('POST', '/cluster/cau/plugins', {
      Name: args.Name, UpdateCommand: args.UpdateCommand, ...(args.ScanCommand !== undefined ? { ScanCommand: args.ScanCommand } : {}),
      ...(args.Description !== undefined ? { Description: args.Description } : {}),
    });
    return args.PassThru ? v : undefined;
  },
});

export const unregisterCauPlugin = defineCmdlet({
  name: 'Unregister-CauPlugin',
  synopsis: 'Unregister a plug-in (the built-in one cannot be)',
  params: { Name: { type: 'string', mandatory: true, help: 'The plug-in' }, ClusterName, Force: { type: 'switch', help: 'Accepted' } },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    await clientFor(ctx).call('DELETE', `/cluster/cau/plugins/${encodeURIComponent(args.Name)}`);
    return undefined;
  },
});
