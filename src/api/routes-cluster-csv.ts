// Cluster Shared Volume routes (src/cluster/csv-service.ts): Get-/Add-/Remove-ClusterSharedVolume,
// New-VHD of a file on a volume (performed by its coordinator), and the nodes' own calls to each
// other — signed with the cluster's key, not a user's token, so Public in route-roles.ts.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import { CSV_AUTH_HEADER, CSV_INTERNAL_PATH, type ClusterSharedVolumes } from '../cluster/index.ts';
import { AddVolumeBody, VolumeOpBody, VolumeQuery, VolumeRef } from './cluster-csv-schemas.ts';

export function registerClusterCsvRoutes(app: FastifyInstance, csv: ClusterSharedVolumes | undefined): void {
  const tags = ['cluster'];
  const need = (): ClusterSharedVolumes => {
    if (!csv) throw new VmhostError('CLUSTER_NOT_CONFIGURED', 'This vmhostd is not a cluster node: start it with --cluster-etcd-endpoints and --cluster-storage', {});
    return csv;
  };

  app.get<{ Querystring: VolumeQuery }>('/api/v1/cluster/shared-volumes', { schema: { summary: 'Get-ClusterSharedVolume: volumes, their coordinator (OwnerNode) and disk files', tags, querystring: VolumeQuery } },
    async (req) => need().list(req.query.Name));
  app.post<{ Body: AddVolumeBody }>('/api/v1/cluster/shared-volumes', { schema: { summary: 'Add-ClusterSharedVolume: a directory every node reaches, checked on every Up node', tags, body: AddVolumeBody } },
    async (req) => need().add(req.body.Name, req.body.Path));
  app.delete<{ Params: { volume: string } }>('/api/v1/cluster/shared-volumes/:volume', { schema: { summary: 'Remove-ClusterSharedVolume (the directory and its files stay)', tags, params: VolumeRef } },
    async (req, reply) => { await need().remove(req.params.volume); return reply.code(204).send(); });
  app.post<{ Body: VolumeOpBody }>('/api/v1/cluster/shared-volumes/operations', { schema: { summary: 'New-VHD, Resize-VHD of a file on a volume: performed by the volume\'s coordinator', tags, body: VolumeOpBody } },
    async (req, reply) => { await need().runOnVolume(req.body); return reply.code(204).send(); });
  // The body is checked against its signature before it is looked at (csv-wire.ts).
  app.post(CSV_INTERNAL_PATH, { schema: { summary: 'Node to node: a volume check or a metadata operation for the coordinator (signed with the cluster\'s key)', tags, hide: true } },
    async (req) => need().answer(typeof req.headers[CSV_AUTH_HEADER] === 'string' ? req.headers[CSV_AUTH_HEADER] : undefined, req.body));
}
