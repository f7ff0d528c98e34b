// Live migration routes. On any host: the migration settings (Set-VMHost, Enable-/Disable-
// VMMigration), the migration networks and Move-VM (a job). On a destination: tickets for callers holding its
// credential, and the daemon-to-daemon calls of a move — open to no token at all, since the
// source never holds one of ours: prepare needs a ticket (x-vmhost-migration-ticket), every
// later call the move's secret (x-vmhost-migration-secret) that prepare answered.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host, MovePrepare, MoveRequest } from '../host/index.ts';
import { ActionQuery, VmRef } from './schemas.ts';
import {
  AddMigrationNetworkBody, CommitBody, MigrationNetworkQuery, MigrationSettingsBody, MoveBody, MoveRef, OutcomeQuery, PrepareBody,
  RemoveMigrationNetworkQuery, SetMigrationNetworkBody, TicketBody,
} from './migration-schemas.ts';
import { answerJob } from './routes-vms.ts';

function header(v: string | string[] | undefined, name: string): string {
  if (typeof v !== 'string' || v === '') throw new VmhostError('MIGRATION_TICKET_INVALID', `missing ${name} header`, {});
  return v;
}

/** Move-VM's body as the host takes it: any storage parameter makes it a shared-nothing move. */
function moveRequest(b: MoveBody): Omit<MoveRequest, 'ticket'> {
  if (b.VirtualMachinePath !== undefined) {
    throw new VmhostError('MIGRATION_UNSUPPORTED', 'Move-VM -VirtualMachinePath is not supported: the configuration goes to the destination host\'s data folder', { param: 'VirtualMachinePath' });
  }
  const storage = b.IncludeStorage === true || b.DestinationStoragePath !== undefined || b.Vhds !== undefined
    ? { destinationStoragePath: b.DestinationStoragePath, vhds: b.Vhds, retainSource: b.RetainVhdCopiesOnSource === true } : undefined;
  if (!storage && b.RetainVhdCopiesOnSource !== undefined) {
    throw new VmhostError('INVALID_ARGUMENT', 'RetainVhdCopiesOnSource: only with -IncludeStorage (a shared-storage move copies no disk)', { param: 'RetainVhdCopiesOnSource' });
  }
  return { destination: b.DestinationHost, ...(storage ? { storage } : {}), ...(b.SnapshotFilePath !== undefined ? { snapshotFilePath: b.SnapshotFilePath } : {}) };
}

export function registerMigrationRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['migration'];

  app.patch<{ Body: MigrationSettingsBody }>('/api/v1/host/migration',
    { schema: { summary: 'Set-VMHost -VirtualMachineMigration… / Enable-VMMigration / Disable-VMMigration', tags, body: MigrationSettingsBody } },
    async (req) => host.setMigrationSettings(req.body));

  // Hyper-V's migration networks: the subnets a move's stream may use (host/migration-networks.ts); each change answers the whole list.
  app.get<{ Querystring: MigrationNetworkQuery }>('/api/v1/host/migration-networks',
    { schema: { summary: 'Get-VMMigrationNetwork', tags, querystring: MigrationNetworkQuery } },
    async (req) => host.getMigrationNetworks(req.query));
  app.post<{ Body: AddMigrationNetworkBody }>('/api/v1/host/migration-networks',
    { schema: { summary: 'Add-VMMigrationNetwork', tags, body: AddMigrationNetworkBody } },
    async (req) => host.addMigrationNetwork(req.body.Subnet, req.body.Priority));
  app.patch<{ Body: SetMigrationNetworkBody }>('/api/v1/host/migration-networks',
    { schema: { summary: 'Set-VMMigrationNetwork', tags, body: SetMigrationNetworkBody } },
    async (req) => host.setMigrationNetwork(req.body.Subnet, { NewSubnet: req.body.NewSubnet, NewPriority: req.body.NewPriority }));
  app.delete<{ Querystring: RemoveMigrationNetworkQuery }>('/api/v1/host/migration-networks',
    { schema: { summary: 'Remove-VMMigrationNetwork', tags, querystring: RemoveMigrationNetworkQuery } },
    async (req) => host.removeMigrationNetwork(req.query.Subnet));

  app.post<{ Params: { vm: string }; Querystring: { wait?: boolean }; Body: MoveBody }>('/api/v1/vms/:vm/move',
    { schema: { summary: 'Move-VM: the running VM goes to DestinationHost (shared storage; with IncludeStorage, DestinationStoragePath or Vhds its disks are copied live first)', tags, params: VmRef, querystring: ActionQuery, body: MoveBody } },
    async (req, reply) => {
      const { DestinationHost: destination, Ticket, Credential } = req.body;
      if ((Ticket === undefined) === (Credential === undefined)) throw new VmhostError('INVALID_ARGUMENT', 'Move-VM: give the destination\'s Ticket, or a Credential to get one with (one of them)', { param: 'Ticket' });
      const request = moveRequest(req.body); // validated before a credential is used
      const ticket = Ticket ?? await host.delegatedMoveTicket(req.params.vm, destination, Credential!);
      return answerJob(reply, req.query.wait, host.move(req.params.vm, { ...request, ticket }));
    });

  app.post<{ Body: TicketBody }>('/api/v1/migrations/tickets',
    { schema: { summary: 'A single-use ticket (60 s) for moving one VM to this host', tags, body: TicketBody } },
    async (req) => host.issueMoveTicket(req.body.VMId));

  app.post<{ Body: PrepareBody }>('/api/v1/migrations',
    { schema: { summary: 'Destination: prepare an incoming move (ticket in x-vmhost-migration-ticket)', tags, body: PrepareBody } },
    async (req) => host.prepareIncoming(header(req.headers['x-vmhost-migration-ticket'], 'x-vmhost-migration-ticket'), req.body as unknown as MovePrepare));

  app.post<{ Params: { move: string }; Body: CommitBody }>('/api/v1/migrations/:move/commit',
    { schema: { summary: 'Destination: the source has released the VM; take it', tags, params: MoveRef, body: CommitBody } },
    async (req) => host.moveIn.commit(req.params.move, header(req.headers['x-vmhost-migration-secret'], 'x-vmhost-migration-secret'), req.body.UptimeMs, req.body.Metering));

  app.get<{ Params: { move: string }; Querystring: { vm: string } }>('/api/v1/migrations/:move',
    { schema: { summary: 'Destination: a move\'s outcome (Prepared, Committed; 404 when neither)', tags, params: MoveRef, querystring: OutcomeQuery } },
    async (req) => ({ State: await host.moveIn.outcome(req.params.move, header(req.headers['x-vmhost-migration-secret'], 'x-vmhost-migration-secret'), req.query.vm) }));

  app.delete<{ Params: { move: string } }>('/api/v1/migrations/:move',
    { schema: { summary: 'Destination: the source gives up a prepared move; nothing stays', tags, params: MoveRef } },
    async (req, reply) => {
      await host.moveIn.abortBySource(req.params.move, header(req.headers['x-vmhost-migration-secret'], 'x-vmhost-migration-secret'));
      return reply.code(204).send();
    });
}
