// Host-level routes: host facts, the event log (query and live stream), jobs.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { EventsQuery, JobRef } from './schemas.ts';

/** `tlsFingerprint`: the pinned identity of an HTTPS listener (null on loopback HTTP), for Get-VMHost. */
export function registerHostRoutes(app: FastifyInstance, host: Host, tlsFingerprint: string | undefined): void {
  app.get('/api/v1/host', { schema: { summary: 'Get-VMHost', tags: ['host'] } },
    async () => ({ ...host.hostView(), TlsCertificateFingerprint: tlsFingerprint ?? null }));

  app.get<{ Querystring: { since?: number; vm?: string; limit?: number } }>(
    '/api/v1/events',
    { schema: { summary: 'Events, oldest first', tags: ['events'], querystring: EventsQuery } },
    async (req) => {
      const vmId = req.query.vm ? host.get(req.query.vm).Id : undefined;
      return host.events.list({ since: req.query.since, vmId, limit: req.query.limit });
    },
  );

  // Server-sent events: every host event as it happens, after replaying those newer than ?since.
  app.get<{ Querystring: { since?: number } }>(
    '/api/v1/events/stream',
    { schema: { summary: 'Live event stream (text/event-stream)', tags: ['events'], querystring: EventsQuery } },
    (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': connected\n\n'); // flushes the headers so clients see the stream open at once
      const send = (e: { Seq: number }) => res.write(`id: ${e.Seq}\nevent: host\ndata: ${JSON.stringify(e)}\n\n`);
      if (req.query.since !== undefined) for (const e of host.events.list({ since: req.query.since })) send(e);
      const offEvents = host.events.subscribe(send);
      const offJobs = host.jobs.subscribe((j) => res.write(`event: job\ndata: ${JSON.stringify(j)}\n\n`));
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      req.raw.on('close', () => { offEvents(); offJobs(); clearInterval(keepAlive); });
    },
  );

  app.get('/api/v1/jobs', { schema: { summary: 'Get-Job', tags: ['jobs'] } }, async () => host.jobs.list());
  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id', { schema: { summary: 'One job', tags: ['jobs'], params: JobRef } }, async (req) => {
    const job = host.jobs.get(req.params.id);
    if (!job) throw new VmhostError('NOT_FOUND', `No job with id ${req.params.id}`, { job: req.params.id });
    return job;
  });
}
