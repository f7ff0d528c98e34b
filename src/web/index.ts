// The web console (Hyper-V Manager + VMConnect in the browser), mounted on the daemon's
// HTTP server: the built single-page app, browser sign-in (user name and password, or the
// host's token) with a session cookie, and the console WebSockets. The API's access hook
// (api/access.ts) asks `sessionUser(req)`: who the request's live session cookie belongs to.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { bearer, tokenMatches } from '../api/auth.ts';
import { claimUser, identify, identityOf, mayConnect } from '../api/access.ts';
import { BUILTIN_ADMIN, type Identity } from '../api/roles.ts';
import { SignInThrottle } from '../api/sign-in-throttle.ts';
import type { Users } from '../api/users.ts';
import { ConsoleSockets } from './console-sockets.ts';
import { SessionStore, MAX_AGE_MS } from './sessions.ts';
import { ConsoleParams, SessionBody, SessionView } from './schemas.ts';
import { DEFAULT_DIST, registerStaticFiles } from './static-files.ts';

export interface WebOptions {
  host: Host;
  token: string;
  users: Users;
  /** The built app; default web/dist in the checkout. */
  distDir?: string;
}

export interface WebConsole {
  /** The user of the request's live session (same origin only). */
  sessionUser(req: FastifyRequest): string | undefined;
}

const SESSION_ROUTE = '/api/v1/session';

export function registerWeb(app: FastifyInstance, opts: WebOptions): WebConsole {
  const sessions = new SessionStore(opts.host.dataDir);
  const sessionOf = (req: IncomingMessage) => (sameOrigin(req) ? sessions.fromCookieHeader(req.headers.cookie) : undefined);
  const throttle = new SignInThrottle();

  registerStaticFiles(app, opts.distDir ?? DEFAULT_DIST);

  const tags = ['session'];
  app.post<{ Body: SessionBody }>(SESSION_ROUTE, {
    schema: {
      summary: 'Sign in a browser with UserName and Password (or the host\'s Token): sets an HttpOnly session cookie (no credential is stored in the browser). Failed passwords are throttled per user and address (429)',
      tags, body: SessionBody, security: [], response: { 200: SessionView },
    },
  }, async (req, reply) => {
    if (req.body.UserName !== undefined) claimUser(req, req.body.UserName); // a failed attempt is audited under the name it claimed
    const who = await signIn(req.body, req.ip);
    claimUser(req, who.UserName, who);
    const s = sessions.create(who.UserName);
    void reply.header('set-cookie', sessions.setCookie(s, req.protocol === 'https')).header('cache-control', 'no-store');
    return { Authenticated: true, Via: 'session', ExpiresAt: new Date(s.createdMs + MAX_AGE_MS).toISOString(), UserName: who.UserName, Role: who.Role, ...whoami(opts.host) };
  });

  async function signIn(body: SessionBody, address: string): Promise<Identity> {
    if (body.Token !== undefined) {
      if (body.UserName !== undefined || body.Password !== undefined) throw new VmhostError('INVALID_ARGUMENT', 'Sign in with UserName and Password, or with Token, not both');
      if (!tokenMatches(opts.token, body.Token)) throw new VmhostError('UNAUTHORIZED', 'The token is not this host\'s token (see <data-dir>/token)');
      return { UserName: BUILTIN_ADMIN, Role: 'Administrator', Via: 'session' };
    }
    if (body.UserName === undefined || body.Password === undefined) throw new VmhostError('INVALID_ARGUMENT', 'Sign in with UserName and Password (or the host\'s Token)');
    throttle.check(body.UserName, address);
    const u = await opts.users.checkPassword(body.UserName, body.Password);
    if (!u) {
      throttle.failed(body.UserName, address);
      throw new VmhostError('UNAUTHORIZED', 'Wrong user name or password', { user: body.UserName });
    }
    throttle.succeeded(body.UserName, address);
    return { UserName: u.Name, Role: u.Role, Via: 'session' };
  }

  app.get(SESSION_ROUTE, { schema: { summary: 'Who am I: the user and how this request is authenticated', tags, response: { 200: SessionView } } }, async (req) => {
    const who = identityOf(req)!;
    const s = who.Via === 'session' ? sessionOf(req.raw) : undefined;
    return { Authenticated: true, Via: who.Via, ...(s ? { ExpiresAt: new Date(s.createdMs + MAX_AGE_MS).toISOString() } : {}), UserName: who.UserName, Role: who.Role, ...whoami(opts.host) };
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
    identify: (req) => identify(opts, bearer(req.headers.authorization), sessionOf(req)?.user),
    mayConnect: (who, vmId) => mayConnect(opts.users, who, vmId),
  });
  app.addHook('preClose', async () => sockets.close());
  opts.users.onChange(() => sockets.recheck());

  return {
    sessionUser: (req) => sessionOf(req.raw)?.user,
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
