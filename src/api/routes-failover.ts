// Failover routes (src/replica/failover.ts): Start-, Stop-, Complete-VMFailover and
// Set-VMReplication (-Reverse, or a primary's settings).
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import type { Replication } from '../replica/index.ts';
import { VmRef } from './schemas.ts';
import { FailoverBody, SetReplicationBody } from './failover-schemas.ts';

type Vm = { Params: { vm: string } };

export function registerFailoverRoutes(app: FastifyInstance, host: Host, replication: Replication | undefined): void {
  const tags = ['replica'];
  const rep = (): Replication => {
    if (!replication) throw new VmhostError('REPLICATION_NOT_ENABLED', 'this server was built without Hyper-V Replica', {});
    return replication;
  };

  app.post<Vm & { Body: FailoverBody }>('/api/v1/vms/:vm/failover',
    { schema: { summary: 'Start-VMFailover (-AsTest: a test VM; -Prepare: on the primary of a planned failover)', tags, params: VmRef, body: FailoverBody } },
    async (req) => rep().failover.start(req.params.vm, req.body ?? {}));
  app.post<Vm>('/api/v1/vms/:vm/failover/stop', { schema: { summary: 'Stop-VMFailover: the test VM removed, the failover undone, or -Prepare called off', tags, params: VmRef } },
    async (req) => rep().failover.stop(req.params.vm));
  app.post<Vm>('/api/v1/vms/:vm/failover/complete', { schema: { summary: 'Complete-VMFailover: the chosen point kept, the others dropped', tags, params: VmRef } },
    async (req) => rep().failover.complete(req.params.vm));

  app.patch<Vm & { Body: SetReplicationBody }>('/api/v1/vms/:vm/replication', { schema: { summary: 'Set-VMReplication', tags, params: VmRef, body: SetReplicationBody } },
    async (req) => {
      const { Reverse, CertificateThumbprint, AuthenticationType, ...rest } = req.body;
      // The frequency is checked by checkSettings (30, 300 or 900), as Enable-VMReplication's.
      const patch = { ...rest, ReplicationFrequencySec: rest.ReplicationFrequencySec as 30 | undefined, ...(CertificateThumbprint ? { CertificateThumbprint: CertificateThumbprint.toUpperCase() } : {}), ...(AuthenticationType ? { AuthenticationType: AuthenticationType as 'Certificate' } : {}) };
      if (!Reverse) return rep().primary.update(req.params.vm, patch);
      const vm = host.get(req.params.vm);
      const rec = rep().server.replicas.get(vm.Id);
      if (!rec) throw new VmhostError('REPLICATION_FAILOVER_STATE', `'${vm.Name}' is not a Replica VM on this server: -Reverse runs on the Replica server after Start-VMFailover`, { vm: vm.Name });
      if (patch.ReplicaServerPort === undefined) throw new VmhostError('INVALID_ARGUMENT', 'ReplicaServerPort: -Reverse needs the old primary\'s CertificateAuthenticationPort', { param: 'ReplicaServerPort' });
      return rep().failover.reverse(vm.Id, {
        ReplicaServerName: rec.primaryServer, AuthenticationType: 'Certificate', CertificateThumbprint: null,
        RecoveryHistory: rec.recoveryHistory, CompressionEnabled: true, ExcludedVhdPath: [], ...patch, ReplicaServerPort: patch.ReplicaServerPort,
        ReplicationFrequencySec: patch.ReplicationFrequencySec ?? 300,
      });
    });
}
