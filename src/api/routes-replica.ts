// Hyper-V Replica routes (src/replica): the Replica server's settings and authorization entries,
// a VM's replication relationship, Test-VMReplicationConnection. Start-VMInitialReplication is
// a job (202 with ?wait=false).
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import type { Replication } from '../replica/index.ts';
import { VmRef } from './schemas.ts';
import {
  AuthorizationEntryBody, AuthorizationQuery, EnableReplicationBody, EntryRef, ImportInitialBody, InitialReplicationQuery, ReplicationQuery, ResumeReplicationQuery, SetAuthorizationEntryBody,
  SetReplicationServerBody, TestConnectionBody,
} from './replica-schemas.ts';

type Vm = { Params: { vm: string } };

export function registerReplicaRoutes(app: FastifyInstance, host: Host, replication: Replication | undefined): void {
  const tags = ['replica'];
  // A server built without replication (tests of the HTTP layer alone) has the routes and refuses them.
  const rep = (): Replication => {
    if (!replication) throw new VmhostError('REPLICATION_NOT_ENABLED', 'this server was built without Hyper-V Replica', {});
    return replication;
  };
  const connection = (b: TestConnectionBody) => ({ ReplicaServerName: b.ReplicaServerName, ReplicaServerPort: b.ReplicaServerPort, CertificateThumbprint: b.CertificateThumbprint?.toUpperCase() ?? null });

  app.get('/api/v1/replication/server', { schema: { summary: 'Get-VMReplicationServer', tags } }, async () => rep().server.settings());
  app.patch<{ Body: SetReplicationServerBody }>('/api/v1/replication/server', { schema: { summary: 'Set-VMReplicationServer', tags, body: SetReplicationServerBody } },
    async (req) => rep().server.setSettings({ ...req.body, AllowedAuthenticationType: req.body.AllowedAuthenticationType as 'Certificate' | undefined, CertificateThumbprint: req.body.CertificateThumbprint?.toUpperCase() }));

  app.get<{ Querystring: AuthorizationQuery }>('/api/v1/replication/authorization', { schema: { summary: 'Get-VMReplicationAuthorizationEntry', tags, querystring: AuthorizationQuery } },
    async (req) => rep().server.entries(req.query));
  app.post<{ Body: AuthorizationEntryBody }>('/api/v1/replication/authorization', { schema: { summary: 'New-VMReplicationAuthorizationEntry', tags, body: AuthorizationEntryBody } },
    async (req) => rep().server.addEntry(req.body));
  app.patch<{ Params: { server: string }; Body: SetAuthorizationEntryBody }>('/api/v1/replication/authorization/:server',
    { schema: { summary: 'Set-VMReplicationAuthorizationEntry', tags, params: EntryRef, body: SetAuthorizationEntryBody } },
    async (req) => rep().server.setEntry(req.params.server, req.body));
  app.delete<{ Params: { server: string } }>('/api/v1/replication/authorization/:server', { schema: { summary: 'Remove-VMReplicationAuthorizationEntry', tags, params: EntryRef } },
    async (req, reply) => { await rep().server.removeEntry(req.params.server); return reply.code(204).send(); });

  app.post<{ Body: TestConnectionBody }>('/api/v1/replication/test', { schema: { summary: 'Test-VMReplicationConnection', tags, body: TestConnectionBody } },
    async (req) => ({ Message: await rep().primary.test(connection(req.body)) }));

  app.get<{ Querystring: ReplicationQuery }>('/api/v1/replication', { schema: { summary: 'Get-VMReplication', tags, querystring: ReplicationQuery } },
    async (req) => rep().list(req.query.VMName));
  app.get<{ Querystring: ReplicationQuery }>('/api/v1/replication/statistics', { schema: { summary: 'Measure-VMReplication', tags, querystring: ReplicationQuery } },
    async (req) => rep().measure(req.query.VMName));

  app.post<Vm & { Body: EnableReplicationBody }>('/api/v1/vms/:vm/replication', { schema: { summary: 'Enable-VMReplication', tags, params: VmRef, body: EnableReplicationBody } },
    async (req) => rep().of(req.params.vm).enable(req.params.vm, {
      ...connection(req.body), AuthenticationType: (req.body.AuthenticationType ?? 'Certificate') as 'Certificate',
      ReplicationFrequencySec: (req.body.ReplicationFrequencySec ?? 300) as 30, RecoveryHistory: req.body.RecoveryHistory ?? 0,
      CompressionEnabled: req.body.CompressionEnabled ?? true, ExcludedVhdPath: req.body.ExcludedVhdPath ?? [], VSSSnapshotFrequencyHour: req.body.VSSSnapshotFrequencyHour ?? 0,
    }));
  app.post<Vm & { Querystring: InitialReplicationQuery }>('/api/v1/vms/:vm/replication/initial',
    { schema: { summary: 'Start-VMInitialReplication: the configuration and a full copy of the drives over the network, or to media (DestinationPath)', tags, params: VmRef, querystring: InitialReplicationQuery } },
    async (req, reply) => {
      const vm = host.get(req.params.vm);
      const run = host.jobs.run('Start-VMInitialReplication', { id: vm.Id, name: vm.Name }, (h) => rep().of(vm.Id).startInitial(vm.Id, (p, m) => h.progress(p, m), req.query.DestinationPath, req.query.UseBackup === true));
      return req.query.wait === false ? reply.code(202).send(run.job) : run.result;
    });
  app.post<{ Body: ImportInitialBody }>('/api/v1/replication/import', { schema: { summary: 'Import-VMInitialReplication: an initial copy written to media, or the VM\'s newest point in a backup repository, into this Replica server', tags, body: ImportInitialBody } },
    async (req) => {
      await rep().server.importInitial(req.body.VMName, req.body.Path);
      return rep().list(req.body.VMName);
    });
  app.post<Vm>('/api/v1/vms/:vm/replication/suspend', { schema: { summary: 'Suspend-VMReplication', tags, params: VmRef } }, async (req) => rep().of(req.params.vm).suspend(req.params.vm));
  app.post<Vm & { Querystring: ResumeReplicationQuery }>('/api/v1/vms/:vm/replication/resume', { schema: { summary: 'Resume-VMReplication (Resynchronize: compare the blocks, send those that differ)', tags, params: VmRef, querystring: ResumeReplicationQuery } },
    async (req) => rep().of(req.params.vm).resume(req.params.vm, req.query.Resynchronize === true));
  app.post<Vm>('/api/v1/vms/:vm/replication/stop', { schema: { summary: 'Stop-VMReplication: the point being sent is abandoned', tags, params: VmRef } }, async (req) => rep().of(req.params.vm).stopRunning(req.params.vm));
  app.post<Vm>('/api/v1/vms/:vm/replication/reset-statistics', { schema: { summary: 'Reset-VMReplicationStatistics', tags, params: VmRef } },
    async (req, reply) => { await rep().of(req.params.vm).resetStatistics(req.params.vm); return reply.code(204).send(); });
  app.delete<Vm>('/api/v1/vms/:vm/replication', { schema: { summary: 'Remove-VMReplication', tags, params: VmRef } },
    async (req, reply) => { await rep().of(req.params.vm).remove(req.params.vm); return reply.code(204).send(); });
}
