// Cluster-Aware Updating's routes (src/cluster/cau-admin.ts, cau-role.ts): Invoke-CauRun,
// Get-CauRun, Stop-CauRun, Get-CauReport, Save-CauDebugTrace, Test-CauSetup, Invoke-CauScan, the self-updating role
// (Add-/Set-/Get-/Enable-/Disable-/Remove-CauClusterRole) and Get-/Register-/Unregister-CauPlugin.
// A daemon that is not a cluster node answers CLUSTER_NOT_CONFIGURED.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { CauAdmin, CauRoleAdmin } from '../cluster/index.ts';
import {
  AddCauRoleBody, CauPluginQuery, CauPluginRef, CauReportQuery, CauRunQuery, CauScanBody, InvokeCauRunBody, RegisterCauPluginBody, SetCauRoleBody,
} from './cau-schemas.ts';

type RunOptions = Omit<InvokeCauRunBody, 'CauPluginName' | 'CauPluginArguments' | 'StopAfterSeconds' | 'ForceRecovery'>;
/** The API's run options as the plan takes them (RebootTimeoutMinutes → TimeoutMs), the plug-in's fields left to the caller. */
function runOptions({ RebootTimeoutMinutes, ...rest }: RunOptions): Omit<RunOptions, 'RebootTimeoutMinutes'> & { TimeoutMs?: number } {
  return { ...rest, ...(RebootTimeoutMinutes !== undefined ? { TimeoutMs: RebootTimeoutMinutes * 60_000 } : {}) };
}

export function registerCauRoutes(app: FastifyInstance, cau: { admin: CauAdmin; role: CauRoleAdmin } | undefined): void {
  const tags = ['cluster'];
  const need = (): { admin: CauAdmin; role: CauRoleAdmin } => {
    if (!cau) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'This vmhostd is not a cluster node: start it with --cluster-etcd-endpoints and --cluster-storage', {});
    return cau;
  };

  app.post<{ Body: InvokeCauRunBody }>('/api/v1/cluster/cau/run',
    { schema: { summary: 'Invoke-CauRun: start an updating run (each node drained, updated, resumed in turn); answers at once, Get-CauRun follows it', tags, body: InvokeCauRunBody } },
    async (req) => {
      const { CauPluginName, CauPluginArguments, StopAfterSeconds, ForceRecovery, ...rest } = req.body;
      const stopAfter = StopAfterSeconds !== undefined ? { StopAfterMs: StopAfterSeconds * 1000 } : {};
      return need().admin.invoke({ ...runOptions(rest), ...stopAfter, Plugin: CauPluginName, Arguments: CauPluginArguments }, ForceRecovery ?? false);
    });
  app.get<{ Querystring: CauRunQuery }>('/api/v1/cluster/cau/run', { schema: { summary: 'Get-CauRun: the run in progress, each node\'s step', tags, querystring: CauRunQuery } },
    async (req) => need().admin.run(req.query.ShowClusterNodeState ?? false));
  app.delete('/api/v1/cluster/cau/run', { schema: { summary: 'Stop-CauRun: the run ends at its next step (Cancelled)', tags } }, async () => need().admin.stop());
  app.get<{ Querystring: CauReportQuery }>('/api/v1/cluster/cau/reports', { schema: { summary: 'Get-CauReport: finished runs', tags, querystring: CauReportQuery } },
    async (req) => need().admin.reports({ Last: req.query.Last ?? false, StartDate: req.query.StartDate, EndDate: req.query.EndDate }, req.query.Detailed ?? false));
  app.post('/api/v1/cluster/cau/debug-trace',
    { schema: { summary: 'Save-CauDebugTrace: the runs\' records, each node\'s CAU events and plug-in outputs, as archive entries (base64)', tags } },
    async () => (await need().admin.debugTrace()).map((e) => ({ Name: e.Name, Base64: e.Data.toString('base64') })));
  app.get('/api/v1/cluster/cau/setup', { schema: { summary: 'Test-CauSetup: whether a run could go through now', tags } }, async () => need().admin.testSetup());
  app.post<{ Body: CauScanBody }>('/api/v1/cluster/cau/scan',
    { schema: { summary: 'Invoke-CauScan: the updates each node would get (each runs the plug-in\'s scan command; nothing is installed)', tags, body: CauScanBody } },
    async (req) => need().admin.scan(req.body.CauPluginName, req.body.CauPluginArguments));

  app.post<{ Body: AddCauRoleBody }>('/api/v1/cluster/cau/role',
    { schema: { summary: 'Add-CauClusterRole: the self-updating role — the cluster\'s leader starts a run at each scheduled time', tags, body: AddCauRoleBody } },
    async (req) => {
      const { DaysOfWeek, WeeksOfMonth, IntervalWeeks, StartDate, CauPluginName, CauPluginArguments, Disabled, ...rest } = req.body;
      return need().role.add({ DaysOfWeek, WeeksOfMonth, IntervalWeeks, StartDate }, { ...runOptions(rest), Plugin: CauPluginName, Arguments: CauPluginArguments }, Disabled ?? false);
    });
  app.get('/api/v1/cluster/cau/role', { schema: { summary: 'Get-CauClusterRole: the schedule, the next run time and the run options', tags } }, async () => need().role.get());
  app.patch<{ Body: SetCauRoleBody }>('/api/v1/cluster/cau/role',
    { schema: { summary: 'Set-CauClusterRole: change the schedule or the run options; UpdateNow starts a run with them now', tags, body: SetCauRoleBody } },
    async (req) => {
      const { DaysOfWeek, WeeksOfMonth, IntervalWeeks, StartDate, CauPluginName, CauPluginArguments, UpdateNow, ...rest } = req.body;
      const role = need().role;
      const view = await role.set({ DaysOfWeek, WeeksOfMonth, IntervalWeeks, StartDate }, { ...runOptions(rest), Plugin: CauPluginName, Arguments: CauPluginArguments });
      if (!UpdateNow) return view;
      const run = await role.updateNow();
      return { ...view, LastRunId: run.RunId };
    });
  app.post('/api/v1/cluster/cau/role/enable', { schema: { summary: 'Enable-CauClusterRole: runs at the scheduled times again (from now on)', tags } }, async () => need().role.setEnabled(true));
  app.post('/api/v1/cluster/cau/role/disable', { schema: { summary: 'Disable-CauClusterRole: no scheduled run until enabled', tags } }, async () => need().role.setEnabled(false));
  app.delete('/api/v1/cluster/cau/role', { schema: { summary: 'Remove-CauClusterRole', tags } }, async () => { await need().role.remove(); return {}; });

  app.get<{ Querystring: CauPluginQuery }>('/api/v1/cluster/cau/plugins', { schema: { summary: 'Get-CauPlugin: the built-in and the registered plug-ins', tags, querystring: CauPluginQuery } },
    async (req) => need().admin.plugins(req.query.Name));
  app.post<{ Body: RegisterCauPluginBody }>('/api/v1/cluster/cau/plugins',
    { schema: { summary: 'Register-CauPlugin: a named pair of command templates ({Name}: the argument Name, shell-quoted)', tags, body: RegisterCauPluginBody } },
    async (req) => need().admin.registerPlugin({ ...req.body, Description: req.body.Description ?? '' }));
  app.delete<{ Params: { name: string } }>('/api/v1/cluster/cau/plugins/:name',
    { schema: { summary: 'Unregister-CauPlugin (a built-in one is refused)', tags, params: CauPluginRef } },
    async (req) => { await need().admin.unregisterPlugin(req.params.name); return {}; });
}
