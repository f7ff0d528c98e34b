// The loopback API port with both protocols (http-or-tls.ts), and a move's calls to it
// (host/move-destination.ts): plain HTTP answered as before (the local CLI); TLS answered with
// the daemon's certificate, made only when the first TLS client arrives; the source pins that
// certificate on first use, says so once, and uses it again; a destination presenting another
// certificate than the pinned one is refused with TLS_CERTIFICATE_CHANGED before the ticket
// is written (the handler sees no request). A client that connects and says nothing, or stops
// inside its handshake, is closed with the server (else the daemon's stop would wait on it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { KnownHosts } from '../common/known-hosts.ts';
import { httpDestination } from '../host/move-destination.ts';
import type { MovePrepare } from '../host/index.ts';
import { testTlsIdentity } from '../../test/support/tls-identity.ts';
import { httpOrTlsServer } from './http-or-tls.ts';

interface Seen { url: string; encrypted: boolean; ticket: string | undefined; body: string }

async function serve(firstBytesMs?: number): Promise<{ port: number; seen: Seen[]; identityAsked: () => number; close(): Promise<void> }> {
  const seen: Seen[] = [];
  let asked = 0;
  const server = httpOrTlsServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      seen.push({ url: req.url ?? '', encrypted: (req.socket as TLSSocket).encrypted === true, ticket: req.headers['x-vmhost-migration-ticket'] as string | undefined, body: Buffer.concat(chunks).toString() });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ MoveId: 'm1', Secret: 'c2VjcmV0', Address: '127.0.0.1', Port: 1, Fingerprint: 'x' }));
    });
  }, () => { asked++; return testTlsIdentity(); }, firstBytesMs);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    port: (server.address() as { port: number }).port, seen, identityAsked: () => asked,
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

test('one loopback port: plain HTTP for the local CLI, TLS for a move\'s calls, pinned on first use', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-pin-'));
  const s = await serve();
  try {
    const plain = await fetch(`http://127.0.0.1:${s.port}/api/v1/host`);
    assert.equal(plain.status, 200);
    assert.deepEqual(s.seen.map((x) => x.encrypted), [false]);
    assert.equal(s.identityAsked(), 0, 'no certificate is made for plain HTTP');

    const notices: string[] = [];
    const trust = { knownHosts: new KnownHosts(join(dir, 'known_hosts')), notice: (m: string) => notices.push(m) };
    const key = `127.0.0.1:${s.port}`;
    const dest = httpDestination(key, 'TICKET-1', trust);
    const prepared = await dest.prepare({ config: { name: 'v' } } as unknown as MovePrepare);
    assert.equal(prepared.MoveId, 'm1');
    await dest.abort(prepared);
    const fp = (await testTlsIdentity()).fingerprint;
    assert.deepEqual(s.seen.slice(1).map((x) => [x.url, x.encrypted]), [['/api/v1/migrations', true], ['/api/v1/migrations/m1', true]]);
    assert.equal(s.seen[1]!.ticket, 'TICKET-1');
    assert.equal(await readFile(join(dir, 'known_hosts'), 'utf8'), `${key} ${fp}\n`);
    assert.equal(notices.length, 1, 'the first use is told once');
    assert.match(notices[0]!, new RegExp(`trusting ${key} on first use.*${fp}`));
    assert.equal(s.identityAsked(), 1, 'the certificate is made once, for the first TLS client');

    // Another certificate than the pinned one (the line stands for the host's earlier certificate): refused, nothing written.
    await writeFile(join(dir, 'known_hosts'), `${key} AA:BB\n`);
    const before = s.seen.length;
    await assert.rejects(httpDestination(key, 'TICKET-2', trust).prepare({} as MovePrepare),
      (e: unknown) => isVmhostError(e, 'TLS_CERTIFICATE_CHANGED') && (e as Error).message.includes('AA:BB') && (e as Error).message.includes(fp));
    assert.equal(s.seen.length, before, 'the refused destination saw no request');
    assert.ok(!s.seen.some((x) => x.ticket === 'TICKET-2'));
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a client that connects and says nothing, or stalls in its handshake, does not hold the server\'s close', async () => {
  // Their deadline far away: only closing the server can end them.
  const s = await serve(3_600_000);
  const silent = await new Promise<Socket>((ok) => { const c = connect(s.port, '127.0.0.1', () => ok(c)); });
  // A TLS record header of a ClientHello, and nothing more: the server is in its handshake.
  const stalled = await new Promise<Socket>((ok) => { const c = connect(s.port, '127.0.0.1', () => { c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])); ok(c); }); });
  const ended = Promise.all([silent, stalled].map((c) => new Promise((r) => c.on('error', () => undefined).once('close', r))));
  await s.close();
  await ended;
});
