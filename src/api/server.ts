// The daemon's HTTP surface: REST API under /api/v1, every route validated by the schemas
// in schemas.ts and documented from them at /api/v1/openapi.json. Every request, the
// OpenAPI document included, needs a credential (the host's token, a user's token or a web
// console session, src/web) whose user's role allows the route (access.ts, route-roles.ts);
// the sign-in page, its static files and the sign-in route are the only public paths.
// With `tls` (a non-loopback listener, see daemon.ts) it speaks HTTPS only; with `loopbackTls`
// (a loopback one) HTTP, and TLS on the same port for other daemons' calls (http-or-tls.ts).
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { isVmhostError, httpStatusOf, type ErrorCode, type ErrorContext } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import type { TlsIdentity } from './tls-certificate.ts';
import { httpOrTlsServer } from './http-or-tls.ts';
import { installAccess } from './access.ts';
import { AuditLog } from './audit-log.ts';
import { Users } from './users.ts';
import { registerUserRoutes } from './routes-users.ts';
import { describeValidationError, validatorCompiler } from './validation.ts';
import { registerVmRoutes } from './routes-vms.ts';
import { registerHostRoutes } from './routes-host.ts';
import { registerMacPoolRoutes } from './routes-mac-pool.ts';
import { registerStorageRoutes } from './routes-storage.ts';
import { registerNetworkRoutes } from './routes-network.ts';
import { registerHostNicRoutes } from './routes-host-nic.ts';
import { registerSwitchCaptureRoutes } from './routes-switch-capture.ts';
import { registerLbfoRoutes } from './routes-lbfo.ts';
import { registerMigrationRoutes } from './routes-migration.ts';
import { registerHnvRoutes } from './routes-hnv.ts';
import { registerControllerRoutes } from './routes-controllers.ts';
import { registerCheckpointRoutes } from './routes-checkpoints.ts';
import { registerExportRoutes } from './routes-export.ts';
import { registerBackupRoutes } from './routes-backup.ts';
import { registerMoveStorageRoutes } from './routes-move-storage.ts';
import { registerGuestFileRoutes } from './routes-guest-files.ts';
import { registerMeteringRoutes } from './routes-metering.ts';
import { registerResourcePoolRoutes } from './routes-resource-pools.ts';
import { registerClusterRoutes } from './routes-cluster.ts';
import { registerClusterOpsRoutes } from './routes-cluster-ops.ts';
import { registerClusterCsvRoutes } from './routes-cluster-csv.ts';
import { registerCauRoutes } from './routes-cau.ts';
import type { CauAdmin, CauRoleAdmin, ClusterAdmin, ClusterOpsAdmin, ClusterSharedVolumes } from '../cluster/index.ts';
import type { Replication } from '../replica/index.ts';
import { registerReplicaRoutes } from './routes-replica.ts';
import { registerFailoverRoutes } from './routes-failover.ts';
import { registerWeb } from '../web/index.ts';

export interface ServerOptions {
  host: Host;
  token: string;
  logger?: boolean;
  tls?: TlsIdentity;
  /** A loopback listener: plain HTTP, and TLS with this identity for other daemons (http-or-tls.ts). */
  loopbackTls?: () => Promise<TlsIdentity>;
  /** The Failover Clustering cmdlets' operations, when the daemon is a cluster node. */
  cluster?: ClusterAdmin;
  /** Test-Cluster, Get-ClusterLog, resources, VM monitoring: with `cluster`. */
  clusterOps?: ClusterOpsAdmin;
  /** Cluster Shared Volumes: with `cluster`. */
  csv?: ClusterSharedVolumes;
  /** Cluster-Aware Updating: with `cluster`. */
  cau?: { admin: CauAdmin; role: CauRoleAdmin };
  /** Hyper-V Replica (src/replica): without it the replication routes answer REPLICATION_NOT_ENABLED (tests that build a server alone). */
  replication?: Replication;
}

/** An error answer; its status is the code's in the one error table (common/error-codes.ts). */
function sendError(reply: FastifyReply, code: ErrorCode, message: string, context?: ErrorContext): FastifyReply {
  return reply.code(httpStatusOf(code)).send({ code, message, context });
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  // A loopback daemon's certificate exists once the first TLS client has come: Get-VMHost shows it from then on.
  let loopbackFingerprint: string | undefined;
  const loopbackTls = opts.loopbackTls && (() => opts.loopbackTls!().then((id) => { loopbackFingerprint = id.fingerprint; return id; }));
  // forceCloseConnections: open event streams (every web console tab holds one) and console
  // sockets must not keep close() — and so the daemon's SIGTERM — waiting forever.
  const app = Fastify({
    logger: opts.logger ?? false, bodyLimit: 4 * 1024 * 1024, forceCloseConnections: true,
    ...(opts.tls ? { https: { key: opts.tls.key, cert: opts.tls.cert } }
      : loopbackTls ? { serverFactory: (handler: Parameters<typeof httpOrTlsServer>[0]) => httpOrTlsServer(handler, loopbackTls) } : {}),
  }) as unknown as FastifyInstance; // the routes do not care whether the raw server is http or https

  app.setValidatorCompiler(validatorCompiler);
  await app.register(swagger, {
    openapi: {
      info: { title: 'vmhost API', version: opts.host.facts.vmhostVersion, description: 'Host daemon API: VMs, jobs, events' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
      security: [{ token: [] }],
    },
  });

  const users = await Users.load(opts.host.dataDir);
  const audit = new AuditLog(opts.host.dataDir);
  // Installed before any route, so it sees them all; the web console answers its questions once registered below.
  installAccess(app, {
    host: opts.host, token: opts.token, users, audit,
    sessionUser: (req) => web.sessionUser(req),
  });
  const web = registerWeb(app, { host: opts.host, token: opts.token, users });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) {
      void sendError(reply, 'INVALID_ARGUMENT', describeValidationError(err.validation as never, err.validationContext ?? 'request'));
      return;
    }
    if (isVmhostError(err)) {
      if (typeof err.context.retryAfterSeconds === 'number') void reply.header('retry-after', String(err.context.retryAfterSeconds));
      void sendError(reply, err.code, err.message, err.context);
      return;
    }
    if (err.statusCode && err.statusCode < 500) {
      // fastify's own refusals (body too large, bad content type): the caller's error, with fastify's status.
      void reply.code(err.statusCode).send({ code: 'INVALID_ARGUMENT' satisfies ErrorCode, message: err.message });
      return;
    }
    reply.log.error(err);
    void sendError(reply, 'INTERNAL', err.message);
  });

  registerHostRoutes(app, opts.host, () => opts.tls?.fingerprint ?? loopbackFingerprint);
  registerMacPoolRoutes(app, opts.host);
  registerVmRoutes(app, opts.host);
  registerStorageRoutes(app, opts.host);
  registerNetworkRoutes(app, opts.host);
  registerHostNicRoutes(app, opts.host);
  registerSwitchCaptureRoutes(app, opts.host);
  registerLbfoRoutes(app, opts.host);
  registerMigrationRoutes(app, opts.host);
  registerHnvRoutes(app, opts.host);
  registerGuestFileRoutes(app, opts.host);
  registerControllerRoutes(app, opts.host);
  registerCheckpointRoutes(app, opts.host);
  registerExportRoutes(app, opts.host);
  registerBackupRoutes(app, opts.host);
  registerMoveStorageRoutes(app, opts.host);
  registerMeteringRoutes(app, opts.host);
  registerResourcePoolRoutes(app, opts.host);
  registerClusterRoutes(app, opts.cluster);
  registerClusterOpsRoutes(app, opts.clusterOps);
  registerClusterCsvRoutes(app, opts.csv);
  registerCauRoutes(app, opts.cau);
  registerReplicaRoutes(app, opts.host, opts.replication);
  registerFailoverRoutes(app, opts.host, opts.replication);
  registerUserRoutes(app, { host: opts.host, users, audit });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
