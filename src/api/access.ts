// Who is calling, and may they: the one onRequest hook every request passes. A route is
// Public in route-roles.ts (the sign-in page, its files, the sign-in route), or the request names a user — by the
// host's token (the built-in Administrator), a user's token, or a browser session — whose
// role must include the route's minimum role in route-roles.ts (a route missing from that
// table needs Administrator). Console routes need a VMConnect grant for the VM instead.
// Answers: 401 UNAUTHORIZED without a valid credential (onRequest), 403 FORBIDDEN without
// the role (preValidation: after the body is read, so the audit log can name its target,
// and before it is validated, so a refused caller learns nothing about the schema).
// Every request but GET/HEAD is then written to the audit log with the user's name.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VmhostError, httpStatusOf } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import type { AuditLog } from './audit-log.ts';
import { bearer, tokenMatches } from './auth.ts';
import { BUILTIN_ADMIN, roleIncludes, type Identity } from './roles.ts';
import { requiredAccess, routeKey } from './route-roles.ts';
import type { Users } from './users.ts';

export interface AccessOptions {
  host: Host;
  /** The host's token: the built-in Administrator's credential. */
  token: string;
  users: Users;
  audit: AuditLog;
  /** The user name of the request's live browser session. */
  sessionUser(req: FastifyRequest): string | undefined;
}

const identities = new WeakMap<FastifyRequest, Identity>();
const claims = new WeakMap<FastifyRequest, string>();
const routeLists = new WeakMap<FastifyInstance, string[]>();

/** The caller the access hook identified (undefined on public routes). */
export function identityOf(req: FastifyRequest): Identity | undefined {
  return identities.get(req);
}

/** A sign-in route names who signed in (or who tried): that name goes to the audit log. */
export function claimUser(req: FastifyRequest, name: string, identity?: Identity): void {
  claims.set(req, name);
  if (identity) identities.set(req, identity);
}

/** Every route registered after installAccess, as `METHOD /path` (for the route table's completeness test). */
export function registeredRoutes(app: FastifyInstance): readonly string[] {
  return routeLists.get(app) ?? [];
}

/** The identity a raw credential names: the host's token, a user's token, or a session's user. */
export function identify(opts: Pick<AccessOptions, 'token' | 'users'>, bearerToken: string | undefined, sessionUser: string | undefined): Identity | undefined {
  if (bearerToken !== undefined) {
    if (tokenMatches(opts.token, bearerToken)) return { UserName: BUILTIN_ADMIN, Role: 'Administrator', Via: 'token' };
    const u = opts.users.byToken(bearerToken);
    if (u) return { UserName: u.Name, Role: u.Role, Via: 'token' };
  }
  if (sessionUser === undefined) return undefined;
  if (sessionUser === BUILTIN_ADMIN) return { UserName: BUILTIN_ADMIN, Role: 'Administrator', Via: 'session' };
  // The role is read on every request: Set-VMHostUser and Remove-VMHostUser apply at once.
  const role = opts.users.roleOf(sessionUser);
  return role === undefined ? undefined : { UserName: sessionUser, Role: role, Via: 'session' };
}

/** True when this caller may open the console of this VM now (Administrators always may); the role is read afresh. */
export function mayConnect(users: Users, who: Identity, vmId: string): boolean {
  return who.UserName === BUILTIN_ADMIN || users.roleOf(who.UserName) === 'Administrator' || users.mayConnect(who.UserName, vmId);
}

export function installAccess(app: FastifyInstance, opts: AccessOptions): void {
  const routes: string[] = [];
  routeLists.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) routes.push(routeKey(m, r.url));
  });

  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    const need = route === undefined ? undefined : requiredAccess(req.method, route);
    if (need === 'Public') return;
    const who = identify(opts, bearer(req.headers.authorization), opts.sessionUser(req));
    if (!who) {
      await reply.code(httpStatusOf('UNAUTHORIZED')).send({ code: 'UNAUTHORIZED', message: 'A valid credential is required (Authorization: Bearer <token>, or sign in at /)' });
      return;
    }
    identities.set(req, who);
  });

  app.addHook('preValidation', async (req) => {
    const route = req.routeOptions.url;
    const need = route === undefined ? undefined : requiredAccess(req.method, route);
    const who = identities.get(req);
    if (need === undefined || need === 'Public' || !who) return; // no such route: the 404 handler answers
    if (need === 'VMConnect') {
      const vm = opts.host.get((req.params as { vm: string }).vm);
      if (!mayConnect(opts.users, who, vm.Id)) {
        throw new VmhostError('FORBIDDEN', `${who.UserName} has no console access to VM '${vm.Name}' (Grant-VMConnectAccess -VMName ${vm.Name} -UserName ${who.UserName})`,
          { user: who.UserName, vm: vm.Name });
      }
    } else if (!roleIncludes(who.Role, need)) {
      throw new VmhostError('FORBIDDEN', `${who.UserName} is ${article(who.Role)} ${who.Role}: ${req.method} ${route} needs ${need}`,
        { user: who.UserName, role: who.Role, needs: need });
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const who = identities.get(req);
    const body = req.body as { Name?: unknown } | undefined;
    const status = reply.statusCode;
    opts.audit.append({
      Time: new Date().toISOString(),
      UserName: who?.UserName ?? claims.get(req) ?? null,
      ...(who ? { Role: who.Role, Via: who.Via } : {}),
      Method: req.method,
      Route: req.routeOptions.url ?? req.url.split('?')[0]!,
      Params: { ...(req.params as Record<string, string>), ...(typeof body?.Name === 'string' ? { Name: body.Name } : {}) },
      Status: status,
      Outcome: status < 400 ? 'Succeeded' : [401, 403, 429].includes(status) ? 'Denied' : 'Failed',
      ClientAddress: req.ip,
    });
  });
  app.addHook('onClose', async () => { await opts.audit.settled(); });
}

function article(role: string): string {
  return /^[AEIOU]/.test(role) ? 'an' : 'a';
}
