// GET /api/v1/events/stream (text/event-stream): the retained host events newer than the
// client's position (?since, or the Last-Event-ID header an EventSource sends when it
// reconnects, which wins), then every host event and job update as it happens.
//
// Bounded per client: the replay is paced by the socket (the next event is written once the
// previous ones drained), and live chunks that arrive meanwhile wait behind it in order. A
// client that stops reading is disconnected as soon as more than MAX_BUFFERED_BYTES would
// wait for it in this process, instead of growing the daemon's memory without bound; it
// resumes with Last-Event-ID from the retained events (the log's ring, host/events.ts).
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { EventLog, HostEvent, Job, JobManager } from '../host/index.ts';
import { EventsQuery } from './schemas.ts';

/** Bytes that may wait for one slow client before it is disconnected. */
const MAX_BUFFERED_BYTES = 1 << 20;
const KEEP_ALIVE_MS = 15_000;

export interface EventStreamSources {
  readonly events: Pick<EventLog, 'list' | 'subscribe'>;
  readonly jobs: Pick<JobManager, 'subscribe'>;
}

export function registerEventStream(app: FastifyInstance, sources: EventStreamSources): void {
  app.get<{ Querystring: { since?: number } }>(
    '/api/v1/events/stream',
    { schema: { summary: 'Live event stream (text/event-stream); resumes from Last-Event-ID', tags: ['events'], querystring: EventsQuery } },
    (req, reply) => {
      const since = lastEventId(req.headers['last-event-id']) ?? req.query.since;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': connected\n\n'); // flushes the headers so clients see the stream open at once
      void new StreamClient(res).run(sources, since);
    },
  );
}

function lastEventId(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  return v !== undefined && /^\d{1,15}$/.test(v.trim()) ? Number(v) : undefined;
}

const eventChunk = (e: HostEvent): string => `id: ${e.Seq}\nevent: host\ndata: ${JSON.stringify(e)}\n\n`;
const jobChunk = (j: Job): string => `event: job\ndata: ${JSON.stringify(j)}\n\n`;

class StreamClient {
  /** Live chunks waiting behind the replay; null once the replay is done. */
  private pending: string[] | null = [];
  private pendingBytes = 0;
  private closed = false;
  private readonly offs: (() => void)[] = [];

  constructor(private readonly res: ServerResponse) {
    res.on('close', () => this.close());
    res.on('error', () => this.close());
  }

  async run(sources: EventStreamSources, since: number | undefined): Promise<void> {
    // Subscribed and listed in the same tick: no event is both replayed and live, none missed.
    this.offs.push(sources.events.subscribe((e) => this.push(eventChunk(e))));
    this.offs.push(sources.jobs.subscribe((j) => this.push(jobChunk(j))));
    const keepAlive = setInterval(() => this.push(': keep-alive\n\n'), KEEP_ALIVE_MS);
    this.offs.push(() => clearInterval(keepAlive));
    const replay = since === undefined ? [] : sources.events.list({ since });
    for (const e of replay) {
      if (this.closed) return;
      if (!this.res.write(eventChunk(e))) await this.drained();
    }
    const queued = this.pending ?? [];
    this.pending = null;
    for (const c of queued) this.push(c);
  }

  private push(chunk: string): void {
    if (this.closed) return;
    const len = Buffer.byteLength(chunk);
    if (this.pending) {
      this.pendingBytes += len;
      if (this.pendingBytes + this.res.writableLength > MAX_BUFFERED_BYTES) { this.drop(); return; }
      this.pending.push(chunk);
      return;
    }
    // One chunk always goes to a client that has read everything, however large it is.
    if (this.res.writableLength > 0 && this.res.writableLength + len > MAX_BUFFERED_BYTES) { this.drop(); return; }
    this.res.write(chunk);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { this.res.off('drain', done); this.res.off('close', done); resolve(); };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** The client is not reading: let it go (it reconnects with Last-Event-ID). */
  private drop(): void {
    this.close();
    this.res.destroy();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
  }
}
