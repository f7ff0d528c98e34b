// Failover Clustering routes (the FailoverClusters cmdlets). Every node answers them from the
// cluster's etcd keys (src/cluster); a daemon started without --cluster-etcd-endpoints has the
// routes too and answers CLUSTER_NOT_CONFIGURED.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { ClusterAdmin } from '../cluster/index.ts';
import {
  AddVmRoleBody, GroupQuery, GroupRef, MoveGroupBody, NewClusterBody, NodeBody, NodeQuery, NodeRef, ResumeNodeBody, SetGroupBody, SetNodeBody, SetQuorumBody, SuspendNodeBody,
} from './cluster-schemas.ts';

export function registerClusterRoutes(app: FastifyInstance, cluster: ClusterAdmin | undefined): void {
  const tags = ['cluster'];
  const need = (): ClusterAdmin => {
    if (!cluster) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'This vmhostd is not a cluster node: start it with --cluster-etcd-endpoints and --cluster-storage', {});
    return cluster;
  };

  app.post<{ Body: NewClusterBody }>('/api/v1/cluster', { schema: { summary: 'New-Cluster', tags, body: NewClusterBody } },
    async (req) => need().newCluster(req.body.Name, req.body.Node));
  app.get('/api/v1/cluster', { schema: { summary: 'Get-Cluster', tags } }, async () => need().cluster());
  app.get('/api/v1/cluster/quorum', { schema: { summary: 'Get-ClusterQuorum (a vote is an etcd member)', tags } }, async () => need().quorum());
  app.put<{ Body: SetQuorumBody }>('/api/v1/cluster/quorum', { schema: { summary: 'Set-ClusterQuorum -NodeMajority | -NodeAndFileShareMajority <dir>', tags, body: SetQuorumBody } },
    async (req) => need().setQuorum(req.body.QuorumType, req.body.FileShareWitness));

  app.get<{ Querystring: NodeQuery }>('/api/v1/cluster/nodes', { schema: { summary: 'Get-ClusterNode', tags, querystring: NodeQuery } },
    async (req) => need().nodes(req.query.Name));
  app.post<{ Body: NodeBody }>('/api/v1/cluster/nodes', { schema: { summary: 'Add-ClusterNode', tags, body: NodeBody } },
    async (req) => need().addNode(req.body.Name));
  app.patch<{ Params: { node: string }; Body: SetNodeBody }>('/api/v1/cluster/nodes/:node',
    { schema: { summary: '(Get-ClusterNode n).NodeWeight = 0 | 1: the node\'s vote (its etcd member a learner, or voting again)', tags, params: NodeRef, body: SetNodeBody } },
    async (req) => need().setNodeWeight(req.params.node, req.body.NodeWeight));
  app.delete<{ Params: { node: string } }>('/api/v1/cluster/nodes/:node', { schema: { summary: 'Remove-ClusterNode', tags, params: NodeRef } },
    async (req, reply) => { await need().removeNode(req.params.node); return reply.code(204).send(); });
  app.post<{ Params: { node: string }; Body: SuspendNodeBody }>('/api/v1/cluster/nodes/:node/suspend',
    { schema: { summary: 'Suspend-ClusterNode [-Drain]: Paused; with Drain its running roles move live to other nodes (waits)', tags, params: NodeRef, body: SuspendNodeBody } },
    async (req) => need().suspendNode(req.params.node, req.body.Drain ?? false));
  app.post<{ Params: { node: string }; Body: ResumeNodeBody }>('/api/v1/cluster/nodes/:node/resume',
    { schema: { summary: 'Resume-ClusterNode [-Failback Immediate]: Up again; Immediate brings the drained roles back live (waits)', tags, params: NodeRef, body: ResumeNodeBody } },
    async (req) => need().resumeNode(req.params.node, req.body.Failback ?? 'NoFailback'));

  app.get<{ Querystring: GroupQuery }>('/api/v1/cluster/groups', { schema: { summary: 'Get-ClusterGroup', tags, querystring: GroupQuery } },
    async (req) => need().groups(req.query.Name));
  app.post<{ Body: AddVmRoleBody }>('/api/v1/cluster/groups', { schema: { summary: 'Add-ClusterVirtualMachineRole (the VM must be Off, its disks in the shared folder)', tags, body: AddVmRoleBody } },
    async (req) => need().addVmRole(req.body.VMName, req.body.Name));
  app.patch<{ Params: { group: string }; Body: SetGroupBody }>('/api/v1/cluster/groups/:group',
    { schema: { summary: '(Get-ClusterGroup x).Priority = n, .AntiAffinityClassNames = …; Set-ClusterOwnerNode -Group x -Owners …', tags, params: GroupRef, body: SetGroupBody } },
    async (req) => need().setGroup(req.params.group, req.body));
  app.post<{ Params: { group: string } }>('/api/v1/cluster/groups/:group/start', { schema: { summary: 'Start-ClusterGroup (waits until Online)', tags, params: GroupRef } },
    async (req) => need().setOnline(req.params.group, true));
  app.post<{ Params: { group: string } }>('/api/v1/cluster/groups/:group/stop', { schema: { summary: 'Stop-ClusterGroup: the VM is saved (waits until Offline)', tags, params: GroupRef } },
    async (req) => need().setOnline(req.params.group, false));
  app.post<{ Params: { group: string }; Body: MoveGroupBody }>('/api/v1/cluster/groups/:group/move',
    { schema: { summary: 'Move-ClusterVirtualMachineRole / Move-ClusterGroup: the running role moves live to Node (waits until it owns it)', tags, params: GroupRef, body: MoveGroupBody } },
    async (req) => need().moveGroup(req.params.group, req.body.Node));
  app.delete<{ Params: { group: string } }>('/api/v1/cluster/groups/:group', { schema: { summary: 'Remove-ClusterGroup (an Offline role; the VM stays on its owner)', tags, params: GroupRef } },
    async (req, reply) => { await need().removeGroup(req.params.group); return reply.code(204).send(); });
}
