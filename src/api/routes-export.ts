// Export and import routes: Export-VM, Export-VMSnapshot and Import-VM are jobs (answered as the
// VM routes' lifecycle actions are: {Job, VM}, or 202 with the job for ?wait=false); Compare-VM
// answers the VMCompatibilityReport at once. An import refused for incompatibilities is a 409
// IMPORT_INCOMPATIBLE whose context.report is the report (JSON).
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host, VmCompatibilityReport } from '../host/index.ts';
import { ActionQuery, VmRef } from './schemas.ts';
import { SnapshotRef } from './checkpoint-schemas.ts';
import { CompareBody, ExportBody, ImportBody } from './export-schemas.ts';
import { answerJob } from './routes-vms.ts';

type Wait = { Querystring: { wait?: boolean } };

export function registerExportRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['export'];

  app.post<{ Params: { vm: string } } & Wait & { Body: ExportBody }>('/api/v1/vms/:vm/export',
    { schema: { summary: 'Export-VM (a running VM: its disks at one point in time, crash-consistent)', tags, params: VmRef, querystring: ActionQuery, body: ExportBody } },
    async (req, reply) => answerJob(reply, req.query.wait, host.exportVm(req.params.vm, req.body.Path)));

  app.post<{ Params: { vm: string; snapshot: string } } & Wait & { Body: ExportBody }>('/api/v1/vms/:vm/snapshots/:snapshot/export',
    { schema: { summary: 'Export-VMSnapshot: a VM whose state is the checkpoint\'s', tags, params: SnapshotRef, querystring: ActionQuery, body: ExportBody } },
    async (req, reply) => answerJob(reply, req.query.wait, host.exportSnapshot(req.params.vm, req.params.snapshot, req.body.Path)));

  app.post<{ Body: CompareBody }>('/api/v1/import/compare',
    { schema: { summary: 'Compare-VM -Path: the VMCompatibilityReport of importing an export here', tags, body: CompareBody } },
    async (req) => host.compareVm(req.body.Path, req.body));

  app.post<Wait & { Body: ImportBody }>('/api/v1/import',
    { schema: { summary: 'Import-VM (register in place, -Copy, -Copy -GenerateNewId; or -CompatibilityReport)', tags, querystring: ActionQuery, body: ImportBody } },
    async (req, reply) => {
      const report = req.body.CompatibilityReport as VmCompatibilityReport | undefined;
      const path = report?.Path ?? req.body.Path;
      if (path === undefined) throw new VmhostError('INVALID_ARGUMENT', 'Path: give the exported config, or a CompatibilityReport', { param: 'Path' });
      return answerJob(reply, req.query.wait, host.importVm(path, req.body, report));
    });
}
