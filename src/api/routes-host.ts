// Host-level routes: host facts, the event log (query; the live stream is event-stream.ts), jobs.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { registerEventStream } from './event-stream.ts';
import { EventsQuery, JobRef } from './schemas.ts';

/** `tlsFingerprint`: the identity other hosts pin (null on loopback until another daemon's move made it), for Get-VMHost. */
export function registerHostRoutes(app: FastifyInstance, host: Host, tlsFingerprint: () => string | undefined): void {
  app.get('/api/v1/host', { schema: { summary: 'Get-VMHost', tags: ['host'] } },
    async () => ({ ...host.hostView(), TlsCertificateFingerprint: tlsFingerprint() ?? null }));

  app.get<{ Querystring: { since?: number; vm?: string; limit?: number } }>(
    '/api/v1/events',
    { schema: { summary: 'Events, oldest first', tags: ['events'], querystring: EventsQuery } },
    async (req) => {
      const vmId = req.query.vm ? host.get(req.query.vm).Id : undefined;
      return host.events.list({ since: req.query.since, vmId, limit: req.query.limit });
    },
  );

  registerEventStream(app, host);

  app.get('/api/v1/jobs', { schema: { summary: 'Get-Job', tags: ['jobs'] } }, async () => host.jobs.list());
  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id', { schema: { summary: 'One job', tags: ['jobs'], params: JobRef } }, async (req) => {
    const job = host.jobs.get(req.params.id);
    if (!job) throw new VmhostError('NOT_FOUND', `No job with id ${req.params.id}`, { job: req.params.id });
    return job;
  });
  app.delete<{ Params: { id: string } }>('/api/v1/jobs/:id', { schema: { summary: 'Stop-Job: cancel a queued or running job that allows it (Move-VM)', tags: ['jobs'], params: JobRef } },
    async (req) => host.jobs.stop(req.params.id));
  // The CLI waits here for a job it started with ?wait=false while it draws the job's progress from the event stream.
  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id/result',
    { schema: { summary: 'Receive-Job -Wait: the job\'s output once it ends (a failed job answers with its error)', tags: ['jobs'], params: JobRef } },
    async (req) => {
      const result = host.jobs.result(req.params.id);
      if (!result) throw new VmhostError('NOT_FOUND', `No job with id ${req.params.id}`, { job: req.params.id });
      return (await result) ?? null;
    });
}
