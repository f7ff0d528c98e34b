// Cluster-Aware Updating's routes (src/cluster/cau-admin.ts): Invoke-CauRun, Get-CauRun,
// Stop-CauRun, Get-CauReport, Test-CauSetup. A daemon that is not a cluster node answers CLUSTER_NOT_CONFIGURED.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { CauAdmin } from '../cluster/index.ts';
import { CauReportQuery, CauRunQuery, InvokeCauRunBody } from './cau-schemas.ts';

export function registerCauRoutes(app: FastifyInstance, cau: CauAdmin | undefined): void {
  const tags = ['cluster'];
  const need = (): CauAdmin => {
    if (!cau) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'This vmhostd is not a cluster node: start it with --cluster-etcd-endpoints and --cluster-storage', {});
    return cau;
  };

  app.post<{ Body: InvokeCauRunBody }>('/api/v1/cluster/cau/run',
    { schema: { summary: 'Invoke-CauRun: start an updating run (each node drained, updated, resumed in turn); answers at once, Get-CauRun follows it', tags, body: InvokeCauRunBody } },
    async (req) => {
      const { CauPluginName, CauPluginArguments, RebootTimeoutMinutes, ...rest } = req.body;
      return need().invoke({ ...rest, Plugin: CauPluginName, Arguments: CauPluginArguments, ...(RebootTimeoutMinutes !== undefined ? { TimeoutMs: RebootTimeoutMinutes * 60_000 } : {}) });
    });
  app.get<{ Querystring: CauRunQuery }>('/api/v1/cluster/cau/run', { schema: { summary: 'Get-CauRun: the run in progress, each node\'s step', tags, querystring: CauRunQuery } },
    async (req) => need().run(req.query.ShowClusterNodeState ?? false));
  app.delete('/api/v1/cluster/cau/run', { schema: { summary: 'Stop-CauRun: the run ends at its next step (Cancelled)', tags } }, async () => need().stop());
  app.get<{ Querystring: CauReportQuery }>('/api/v1/cluster/cau/reports', { schema: { summary: 'Get-CauReport: finished runs', tags, querystring: CauReportQuery } },
    async (req) => need().reports(req.query.Last ?? false, req.query.Detailed ?? false));
  app.get('/api/v1/cluster/cau/setup', { schema: { summary: 'Test-CauSetup: whether a run could go through now', tags } }, async () => need().testSetup());
}
