// The cluster operations' routes: Test-Cluster, Get-ClusterLog, Get-ClusterResource,
// Get-ClusterParameter, Update-ClusterVirtualMachineConfiguration and the VM-monitoring items and state
// (src/cluster/ops-admin.ts). A daemon that is not a cluster node answers CLUSTER_NOT_CONFIGURED.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { ClusterOpsAdmin } from '../cluster/index.ts';
import {
  ClusterLogQuery, MonitoredBody, MonitoredQuery, MonitoredRef, MonitoredVmRef, ParameterBody, ParameterQuery, ParameterRef, ResourceQuery, ResourceRef, UpdateVmConfigBody,
} from './cluster-ops-schemas.ts';

export function registerClusterOpsRoutes(app: FastifyInstance, ops: ClusterOpsAdmin | undefined): void {
  const tags = ['cluster'];
  const need = (): ClusterOpsAdmin => {
    if (!ops) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'This vmhostd is not a cluster node: start it with --cluster-etcd-endpoints and --cluster-storage', {});
    return ops;
  };

  app.post('/api/v1/cluster/validate', { schema: { summary: 'Test-Cluster: every node checks etcd, its clock, the shared folder, its switches and version (Pass/Warning/Fail per test)', tags } },
    async () => need().testCluster());
  app.get<{ Querystring: ClusterLogQuery }>('/api/v1/cluster/log', { schema: { summary: 'Get-ClusterLog: every node\'s cluster events, merged by time', tags, querystring: ClusterLogQuery } },
    async (req) => need().log({
      ...(req.query.Node !== undefined ? { Node: req.query.Node.split(',').map((n) => n.trim()).filter((n) => n !== '') } : {}),
      ...(req.query.TimeSpan !== undefined ? { TimeSpan: req.query.TimeSpan } : {}),
    }));
  app.get<{ Querystring: ResourceQuery }>('/api/v1/cluster/resources', { schema: { summary: 'Get-ClusterResource: each VM role\'s Virtual Machine and Virtual Machine Configuration resources', tags, querystring: ResourceQuery } },
    async (req) => need().resources(req.query));
  app.get<{ Params: { resource: string }; Querystring: ParameterQuery }>('/api/v1/cluster/resources/:resource/parameters',
    { schema: { summary: 'Get-ClusterParameter: a resource\'s private properties', tags, params: ResourceRef, querystring: ParameterQuery } },
    async (req) => need().parameters(req.params.resource, req.query.Name));
  app.put<{ Params: { resource: string; name: string }; Body: ParameterBody }>('/api/v1/cluster/resources/:resource/parameters/:name',
    { schema: { summary: 'Set-ClusterParameter: a Virtual Machine resource\'s CheckHeartbeat (0 or 1)', tags, params: ParameterRef, body: ParameterBody } },
    async (req) => need().setParameter(req.params.resource, req.params.name, req.body.Value));
  app.post<{ Body: UpdateVmConfigBody }>('/api/v1/cluster/vm-configuration',
    { schema: { summary: 'Update-ClusterVirtualMachineConfiguration: check the clustered VM\'s configuration every node would load', tags, body: UpdateVmConfigBody } },
    async (req) => {
      if (req.body.Name === undefined && req.body.VMId === undefined) throw new VmhostError('INVALID_ARGUMENT', 'Give -Name or -VMId', { param: 'Name' });
      return need().updateVmConfiguration(req.body);
    });
  app.get<{ Querystring: MonitoredQuery }>('/api/v1/cluster/monitored-items', { schema: { summary: 'Get-ClusterVMMonitoredItem', tags, querystring: MonitoredQuery } },
    async (req) => need().monitoredItems(req.query.VirtualMachine));
  app.post<{ Body: MonitoredBody }>('/api/v1/cluster/monitored-items', { schema: { summary: 'Add-ClusterVMMonitoredItem -Service: its stop restarts the VM, then fails the role over', tags, body: MonitoredBody } },
    async (req) => need().addMonitoredItems(req.body.VirtualMachine, req.body.Service));
  app.delete<{ Params: { vm: string; service: string } }>('/api/v1/cluster/monitored-items/:vm/:service',
    { schema: { summary: 'Remove-ClusterVMMonitoredItem', tags, params: MonitoredRef } },
    async (req) => need().removeMonitoredItems(req.params.vm, [req.params.service]));
  app.post<{ Params: { vm: string } }>('/api/v1/cluster/monitored-items/:vm/reset',
    { schema: { summary: 'Reset-ClusterVMMonitoredState: forget the VM\'s monitored-service failures (its next one restarts it in place again)', tags, params: MonitoredVmRef } },
    async (req) => need().resetMonitoredState(req.params.vm));
}
