// The web console (Hyper-V Manager + VMConnect in the browser), mounted on the daemon's
// HTTP server: the built single-page app, browser sign-in with a session cookie, and the
// console WebSockets. The API's auth hook asks `admits(req)` about requests that carry no
// Bearer token: public files and the sign-in route pass, so does a live session cookie.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { bearer, tokenMatches } from '../api/auth.ts';
import { ConsoleSockets } from './console-sockets.ts';
import { SessionStore, MAX_AGE_MS } from './sessions.ts';
import { ConsoleParams, SessionBody, SessionView } from './schemas.ts';
import { DEFAULT_DIST, PUBLIC_FILE_ROUTES, registerStaticFiles } from './static-files.ts';

export interface WebOptions {
  host: Host;
  token: string;
  /** The built app; default web/dist in the checkout. */
  distDir?: string;
}

export interface WebConsole {
  /** True for a request the API must let through without a Bearer token. */
  admits(req: FastifyRequest): boolean;
}

const SESSION_ROUTE = '/api/v1/session';

export function registerWeb(app: FastifyInstance, opts: WebOptions): WebConsole {
  const sessions = new SessionStore(opts.host.dataDir);
  const sessionOf = (req: IncomingMessage) => (sameOrigin(req) ? sessions.fromCookieHeader(req.headers.cookie) : undefined);

  registerStaticFiles(app, opts.distDir ?? DEFAULT_DIST);

  const tags = ['session'];
  app.post<{ Body: SessionBody }>(SESSION_ROUTE, {
    schema: { summary: 'Sign in a browser: sets an HttpOnly session cookie (the token itself is never stored in the browser)', tags, body: SessionBody, security: [], response: { 200: SessionView } },
  }, async (req, reply) => {
    if (!tokenMatches(opts.token, req.body.Token)) {
      throw new VmhostError('UNAUTHORIZED', 'The token is not this host\'s token (see <data-dir>/token)');
    }
    const s = sessions.create();
    void reply.header('set-cookie', sessions.setCookie(s, req.protocol === 'https')).header('cache-control', 'no-store');
    return { Authenticated: true, Via: 'session', ExpiresAt: new Date(s.createdMs + MAX_AGE_MS).toISOString(), ...whoami(opts.host) };
  });

  app.get(SESSION_ROUTE, { schema: { summary: 'Who am I: how this request is authenticated', tags, response: { 200: SessionView } } }, async (req) => {
    const s = sessionOf(req.raw);
    return s
      ? { Authenticated: true, Via: 'session', ExpiresAt: new Date(s.createdMs + MAX_AGE_MS).toISOString(), ...whoami(opts.host) }
      : { Authenticated: true, Via: 'token', ...whoami(opts.host) };
  });

  app.post(`${SESSION_ROUTE}/logout`, { schema: { summary: 'Sign out: ends the session and clears its cookie', tags } }, async (req, reply) => {
    const s = sessionOf(req.raw);
    if (s) sessions.delete(s.id);
    return reply.header('set-cookie', sessions.clearCookie(req.protocol === 'https')).code(204).send();
  });

  // The console endpoints are WebSockets (the upgrade is handled by ConsoleSockets before
  // fastify sees the request); a plain GET gets 426 so the route is documented and answers.
  for (const [kind, what] of [['vnc', 'RFB (VNC) over binary frames, for noVNC'], ['serial', 'the serial console (COM1) as text frames']] as const) {
    app.get<{ Params: { vm: string } }>(`/api/v1/vms/:vm/${kind}`, {
      schema: { summary: `WebSocket: ${what}. Connect with Upgrade: websocket`, tags: ['console'], params: ConsoleParams },
    }, async (req, reply) => {
      const vm = opts.host.get(req.params.vm);
      return reply.code(426).header('upgrade', 'websocket')
        .send({ code: 'UPGRADE_REQUIRED', message: `${req.url} is a WebSocket endpoint (VM '${vm.Name}'): connect with Upgrade: websocket` });
    });
  }

  const sockets = new ConsoleSockets(app.server, {
    host: opts.host,
    authorized: (req) => tokenMatches(opts.token, bearer(req.headers.authorization)) || sessionOf(req) !== undefined,
  });
  app.addHook('preClose', async () => sockets.close());

  return {
    admits(req) {
      const route = req.routeOptions.url;
      if ((req.method === 'GET' || req.method === 'HEAD') && route !== undefined && PUBLIC_FILE_ROUTES.has(route)) return true;
      if (req.method === 'POST' && route === SESSION_ROUTE) return true;
      return sessionOf(req.raw) !== undefined;
    },
  };
}

function whoami(host: Host): { ComputerName: string; Version: string } {
  return { ComputerName: host.facts.computerName, Version: host.facts.vmhostVersion };
}

/**
 * A cookie rides along on any request the browser makes to this host, so requests that
 * arrive with a cookie must come from our own pages: SameSite=Strict keeps other sites
 * out, and this check keeps out other origins on the same site (another port of
 * 127.0.0.1). Browsers send Origin on every non-GET fetch and on WebSocket upgrades.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
