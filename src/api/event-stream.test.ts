// The event stream's per-client bound: a real HTTP client that stops reading is disconnected
// once more than the bound waits for it (the daemon's memory does not grow with the backlog),
// and it resumes with Last-Event-ID from the retained events, with no gap and no duplicate;
// a long replay to a client that reads is paced by the socket and never counts as slow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { EventLog, JobManager } from '../host/index.ts';
import { registerEventStream } from './event-stream.ts';

const BIG = 'x'.repeat(64 * 1024);

/**
 * A raw HTTP/1.0 client (the body is not chunked: it ends with the connection, and what the
 * kernel holds for it stays readable after the server has closed its side), returned once the
 * stream is open. `ids` collects the id of each complete event read (a chunk cut by a
 * disconnect is not one).
 */
async function open(port: number, headers: Record<string, string> = {}): Promise<{ sock: Socket; ids: number[] }> {
  const sock = connect(port, '127.0.0.1');
  sock.setEncoding('utf8');
  const ids: number[] = [];
  let rest = '';
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.on('data', (c: string) => {
      const chunks = (rest + c).split('\n\n');
      rest = chunks.pop()!;
      for (const ch of chunks) {
        if (ch.endsWith(': connected')) resolve();
        const id = /^id: (\d+)$/m.exec(ch)?.[1];
        if (id) ids.push(Number(id));
      }
    });
    sock.write(`GET /api/v1/events/stream HTTP/1.0\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  });
  return { sock, ids };
}

test('a client that stops reading is disconnected at the bound and resumes with Last-Event-ID; a reading client gets a long replay whole', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-sse-'));
  const log = await EventLog.open(join(dir, 'events.jsonl'));
  const app = Fastify();
  registerEventStream(app, { events: log, jobs: new JobManager() });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  try {
    const serverSide = new Promise<Socket>((resolve) => app.server.once('connection', resolve));
    const slow = await open(port);
    slow.sock.pause(); // stops reading: the kernel buffers fill, then the daemon's
    const gone = new Promise<void>((resolve) => { void serverSide.then((s) => s.once('close', () => resolve())); });
    // 400 × 64 KiB = 25 MiB: far more than the kernel's socket buffers plus the bound. One
    // event per turn of the event loop, as a daemon emits them, so the socket flushes between.
    for (let i = 0; i < 400; i++) {
      log.emit({ Level: 'Information', Code: 'TEST', Message: `${i} ${BIG}` });
      await new Promise(setImmediate);
    }
    await gone;

    await new Promise<void>((resolve) => { slow.sock.once('close', resolve); slow.sock.resume(); });
    const got = slow.ids;
    assert.ok(got.length > 0 && got.length < 400, `the slow client got a prefix, not everything (${got.length})`);
    assert.deepEqual(got, got.map((_, i) => i + 1), 'in order, from the first');

    // Reconnect as an EventSource does: the rest is replayed (far more than the bound, to a
    // client that reads), then live events follow.
    const last = got.at(-1)!;
    const again = await open(port, { 'last-event-id': String(last) });
    const upTo = (seq: number): Promise<void> => new Promise((resolve) => {
      const check = (): void => { if (again.ids.at(-1) === seq) { again.sock.off('data', check); resolve(); } };
      again.sock.on('data', check);
      check();
    });
    await upTo(400);
    log.emit({ Level: 'Information', Code: 'TEST', Message: 'live' });
    await upTo(401);
    assert.deepEqual(again.ids, Array.from({ length: 401 - last }, (_, i) => last + 1 + i), 'no gap, no duplicate');
    again.sock.destroy();
  } finally {
    await app.close();
    await log.settled();
    await rm(dir, { recursive: true, force: true });
  }
});
