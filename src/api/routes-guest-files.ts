// Guest Services routes: Copy-VMFile. A copy is a job like the lifecycle actions: ?wait=true
// (default) answers when it ends, with the job and what was copied; ?wait=false answers 202
// with the job at once (-AsJob), whose PercentComplete follows the bytes the guest has.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { ActionQuery, CopyFileBody, VmRef } from './schemas.ts';

export function registerGuestFileRoutes(app: FastifyInstance, host: Host): void {
  app.post<{ Params: { vm: string }; Querystring: { wait?: boolean }; Body: CopyFileBody }>('/api/v1/vms/:vm/copy-file',
    { schema: { summary: 'Copy-VMFile: copy a file on the host into the running guest (needs the Guest Service Interface integration service)', tags: ['vms'], params: VmRef, querystring: ActionQuery, body: CopyFileBody } },
    async (req, reply) => {
      const run = await host.copyFile(req.params.vm, req.body);
      if (req.query.wait === false) return reply.code(202).send(run.job);
      const result = await run.result;
      return { Job: run.job, Result: result };
    });
}
