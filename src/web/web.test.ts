// The web console's server side without QEMU: a fake host whose "VM" sockets are plain unix
// servers. Sessions (cookie, expiry, origin check), the auth hook's public paths, static file
// containment, and the console WebSocket bridges (bytes both ways, one shared serial
// connection, a serial client that stops reading dropped with 1008, clean close when the VM's
// socket goes away).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildServer } from '../api/server.ts';
import { VmhostError } from '../common/index.ts';
import type { Host, VmView } from '../host/index.ts';
import { vmPaths } from '../host/vm-paths.ts';
import { IDLE_MS, MAX_AGE_MS, SessionStore, readCookie } from './sessions.ts';

describe('SessionStore', () => {
  test('a session lives until idle for IDLE_MS or older than MAX_AGE_MS', () => {
    let now = 1_000_000;
    const s = new SessionStore('/data/a', () => now);
    const cookie = (id: string) => `other=1; ${s.cookieName}=${id}`;
    const a = s.create('admin');
    assert.notEqual(s.fromCookieHeader(cookie(a.id)), undefined);
    now += IDLE_MS - 1;
    assert.notEqual(s.fromCookieHeader(cookie(a.id)), undefined, 'use restarts the idle clock');
    now += IDLE_MS - 1;
    assert.notEqual(s.fromCookieHeader(cookie(a.id)), undefined);
    now = a.createdMs + MAX_AGE_MS + 1;
    assert.equal(s.fromCookieHeader(cookie(a.id)), undefined, 'too old whatever the use');
    const b = s.create('admin');
    now += IDLE_MS + 1;
    assert.equal(s.fromCookieHeader(cookie(b.id)), undefined, 'idle too long');
    assert.equal(s.fromCookieHeader(cookie('forged')), undefined);
    assert.equal(s.fromCookieHeader(undefined), undefined);
  });

  test('cookie names differ per data dir (cookies ignore ports); ids are random and long', () => {
    const a = new SessionStore('/data/a');
    const b = new SessionStore('/data/b');
    assert.notEqual(a.cookieName, b.cookieName);
    const ids = new Set(Array.from({ length: 100 }, () => a.create('admin').id));
    assert.equal(ids.size, 100);
    assert.ok([...ids].every((id) => id.length >= 43));
    assert.match(a.setCookie(a.create('admin')), /; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.equal(readCookie('a=1; b = two ;c=3', 'b'), 'two');
    assert.equal(readCookie('ab=1', 'b'), undefined);
  });
});

/** A stand-in for QEMU's VNC server: greets like RFB, echoes what it gets. */
function fakeVnc(path: string): Server & { conns: Socket[] } {
  const conns: Socket[] = [];
  const srv = createServer((c) => {
    conns.push(c);
    c.write('RFB 003.008\n');
    c.on('data', (d) => c.write(Buffer.concat([Buffer.from('echo:'), d])));
    c.on('error', () => undefined);
  }) as Server & { conns: Socket[] };
  srv.conns = conns;
  srv.listen(path);
  return srv;
}

describe('web console server', () => {
  const token = 'test-token-0123456789';
  let dir: string;
  let app: FastifyInstance;
  let base: string;
  let state: VmView['State'] = 'Running';
  const vmId = '11111111-2222-3333-4444-555555555555';
  let vnc: Server & { conns: Socket[] };
  let serial: Server & { conns: Socket[] };
  const serialInput: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmhost-web-'));
    const paths = vmPaths(dir, vmId);
    await mkdir(paths.sockets, { recursive: true });
    vnc = fakeVnc(paths.vncSocket);
    const conns: Socket[] = [];
    serial = createServer((c) => {
      conns.push(c);
      c.on('data', (d) => serialInput.push(d.toString()));
      c.on('error', () => undefined);
    }) as Server & { conns: Socket[] };
    serial.conns = conns;
    serial.listen(paths.serialSocket);
    const host = {
      dataDir: dir,
      facts: { computerName: 'testhost', vmhostVersion: '0.0.0-test' },
      list: () => [],
      get: (ref: string) => {
        if (ref !== 'vm1' && ref !== vmId) throw new VmhostError('NOT_FOUND', `no VM '${ref}'`, { vm: ref });
        return { Name: 'vm1', Id: vmId, State: state } as VmView;
      },
      serialLog: async () => 'earlier output\n',
      events: { list: () => [], subscribe: () => () => undefined },
      jobs: { list: () => [], subscribe: () => () => undefined },
      // The host vNIC routes take this object when they register; these tests never call them.
      network: { hostNics: {} },
    } as unknown as Host;
    app = await buildServer({ host, token });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });

  after(async () => {
    await app?.close();
    vnc?.close();
    serial?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function signIn(): Promise<string> {
    const r = await fetch(`http://${base}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Token: token }) });
    assert.equal(r.status, 200);
    return r.headers.get('set-cookie')!.split(';')[0]!;
  }

  /** Messages are queued from the start: the first can arrive in the same packet as the 101. */
  const queues = new WeakMap<WebSocket, { got: string[]; waiting: ((m: string) => void)[] }>();

  function open(path: string, headers: Record<string, string>): Promise<{ ws?: WebSocket; status: number }> {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(`ws://${base}${path}`, { headers });
      const q = { got: [] as string[], waiting: [] as ((m: string) => void)[] };
      queues.set(ws, q);
      ws.on('message', (m) => { const w = q.waiting.shift(); if (w) w(String(m)); else q.got.push(String(m)); });
      ws.once('open', () => ok({ ws, status: 101 }));
      ws.once('unexpected-response', (req, res) => { ok({ status: res.statusCode ?? 0 }); req.destroy(); });
      ws.once('error', fail);
    });
  }

  const next = (ws: WebSocket) => new Promise<string>((ok) => {
    const q = queues.get(ws)!;
    const m = q.got.shift();
    if (m !== undefined) ok(m); else q.waiting.push(ok);
  });

  test('the session cookie authenticates API calls; a foreign Origin or a logged-out cookie does not', async () => {
    const cookie = await signIn();
    assert.equal((await fetch(`http://${base}/api/v1/vms`, { headers: { cookie } })).status, 200);
    const who = await (await fetch(`http://${base}/api/v1/session`, { headers: { cookie } })).json() as { Via: string; ComputerName: string };
    assert.deepEqual([who.Via, who.ComputerName], ['session', 'testhost']);
    assert.equal((await fetch(`http://${base}/api/v1/vms`, { headers: { cookie, origin: 'http://evil.example' } })).status, 401);
    assert.equal((await fetch(`http://${base}/api/v1/vms`, { headers: { cookie, origin: `http://${base}` } })).status, 200);
    assert.equal((await fetch(`http://${base}/api/v1/session/logout`, { method: 'POST', headers: { cookie } })).status, 204);
    assert.equal((await fetch(`http://${base}/api/v1/vms`, { headers: { cookie } })).status, 401);
  });

  test('public paths are the shell, its assets and sign-in only; assets cannot escape web/dist', async () => {
    for (const p of ['/assets/..%2F..%2Fpackage.json', '/assets/..%2F..%2F..%2Fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/nope.js']) {
      const r = await fetch(`http://${base}${p}`);
      assert.ok(r.status === 404 || r.status === 401, `${p}: ${r.status}`);
      assert.doesNotMatch(await r.text(), /"name": "vmhost"/);
    }
    for (const p of ['/package.json', '/api/v1/jobs', '/web/dist/index.html']) assert.equal((await fetch(`http://${base}${p}`)).status, 401, p);
  });

  test('console routes answer 426 to a plain GET and are in the OpenAPI document', async () => {
    const r = await fetch(`http://${base}/api/v1/vms/vm1/vnc`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 426);
    const doc = await (await fetch(`http://${base}/api/v1/openapi.json`, { headers: { authorization: `Bearer ${token}` } })).json() as { paths: Record<string, unknown> };
    for (const p of ['/api/v1/vms/{vm}/vnc', '/api/v1/vms/{vm}/serial', '/api/v1/session', '/api/v1/session/logout']) assert.ok(p in doc.paths, p);
    assert.ok(!('/' in doc.paths) && !('/assets/*' in doc.paths), 'static files are not API');
  });

  test('VNC: refused before the upgrade without auth or from a foreign origin; bytes pass both ways; closes 1000 with the VM', async () => {
    assert.equal((await open('/api/v1/vms/vm1/vnc', {})).status, 401);
    const cookie = await signIn();
    assert.equal((await open('/api/v1/vms/vm1/vnc', { cookie, origin: 'http://127.0.0.1:1' })).status, 401);
    assert.equal((await open('/api/v1/vms/nope/vnc', { cookie })).status, 404);
    state = 'Off';
    assert.equal((await open('/api/v1/vms/vm1/vnc', { cookie })).status, 409);
    state = 'Running';
    const { ws } = await open('/api/v1/vms/vm1/vnc', { cookie, origin: `http://${base}` });
    assert.equal(await next(ws!), 'RFB 003.008\n');
    ws!.send(Buffer.from('RFB 003.008\n'));
    assert.equal(await next(ws!), 'echo:RFB 003.008\n');
    const closed = new Promise<number>((ok) => ws!.once('close', (code) => ok(code)));
    vnc.conns.at(-1)!.destroy(); // QEMU went away
    assert.equal(await closed, 1000);
  });

  test('serial: one QEMU connection shared by every client, replay first, input from any client', async () => {
    const cookie = await signIn();
    const a = (await open('/api/v1/vms/vm1/serial', { cookie })).ws!;
    assert.equal(await next(a), 'earlier output\n');
    const b = (await open('/api/v1/vms/vm1/serial', { cookie })).ws!;
    assert.equal(await next(b), 'earlier output\n');
    assert.equal(serial.conns.length, 1, 'QEMU takes one serial client: the hub shares it');
    const both = Promise.all([next(a), next(b)]);
    serial.conns[0]!.write('héllo\n');
    assert.deepEqual(await both, ['héllo\n', 'héllo\n']);
    b.send('uname\r');
    // Wait for the bytes to reach the fake QEMU (browser → server → serial socket: two hops
    // whose latency grows with the host's load) rather than a fixed 100 ms; the deadline only
    // bounds a hub that never forwards input.
    for (let i = 0; i < 500 && serialInput.join('').length < 'uname\r'.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(serialInput.join(''), 'uname\r');
    const closed = Promise.all([a, b].map((ws) => new Promise<number>((ok) => ws.once('close', (code) => ok(code)))));
    serial.conns[0]!.destroy();
    assert.deepEqual(await closed, [1000, 1000]);
  });

  test('serial: a client that stops reading is dropped with 1008 at the bound; the others get the whole output', { timeout: 60_000 }, async () => {
    const cookie = await signIn();
    const slow = (await open('/api/v1/vms/vm1/serial', { cookie })).ws!;
    assert.equal(await next(slow), 'earlier output\n');
    const fast = (await open('/api/v1/vms/vm1/serial', { cookie })).ws!;
    assert.equal(await next(fast), 'earlier output\n');
    slow.pause(); // stops reading its socket: the kernel buffers fill, then the server's
    const slowClosed = new Promise<number>((ok) => slow.once('close', (code) => ok(code)));
    let fastBytes = 0;
    fast.on('message', (m: Buffer) => { fastBytes += m.length; });
    // 16 MiB of console output, far beyond the kernel's socket buffers plus the bound.
    const qemu = serial.conns.at(-1)!;
    const total = 64 * 256 * 1024;
    const gotAll = new Promise<void>((ok) => fast.on('message', () => { if (fastBytes === total) ok(); }));
    for (let i = 0; i < 64; i++) {
      if (!qemu.write('x'.repeat(256 * 1024))) await new Promise((r) => qemu.once('drain', r));
    }
    await gotAll;
    // The slow client was let go: once it reads again it gets what was already queued, then 1008.
    slow.resume();
    assert.equal(await slowClosed, 1008);
    const fastClosed = new Promise<number>((ok) => fast.once('close', (code) => ok(code)));
    qemu.destroy();
    assert.equal(await fastClosed, 1000);
  });

  test('closing the server ends open console sockets and event streams (the daemon stops with browsers open)', async () => {
    const cookie = await signIn();
    const { ws } = await open('/api/v1/vms/vm1/vnc', { cookie });
    const closed = new Promise<number>((ok) => ws!.once('close', (code) => ok(code)));
    const ac = new AbortController();
    const sse = await fetch(`http://${base}/api/v1/events/stream`, { headers: { cookie }, signal: ac.signal });
    assert.equal(sse.status, 200);
    const t0 = Date.now();
    await app.close();
    assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms`);
    assert.equal(await closed, 1001);
    ac.abort();
  });
});
