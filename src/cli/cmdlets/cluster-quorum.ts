// Get-/Set-ClusterQuorum: the cluster's quorum model on etcd (src/cluster/quorum.ts: a vote is an
// etcd member). A disk witness (-DiskWitness, -DiskOnly) has no etcd form and is not offered.
import type { ClusterQuorumView } from '../../cluster/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const Cluster = { type: 'string', help: 'The cluster (the one of the node this CLI reaches)' } as const;
const view = { columns: ['Cluster', 'QuorumResource', 'QuorumType'].map((c) => ({ label: c, value: c })) };

export const getClusterQuorum = defineCmdlet({
  name: 'Get-ClusterQuorum',
  synopsis: 'Show the quorum type, the witness, and etcd\'s voting members and majority',
  params: { Cluster },
  view,
  async run(_args, ctx) {
    return clientFor(ctx).call<ClusterQuorumView>('GET', '/cluster/quorum');
  },
});

export const setClusterQuorum = defineCmdlet({
  name: 'Set-ClusterQuorum',
  synopsis: 'Node majority, or node and file share majority (the witness directory names the etcd member that is its vote)',
  params: {
    NoWitness: { type: 'switch', aliases: ['NodeMajority'], sets: ['NoWitness'], mandatory: ['NoWitness'], help: 'Nodes vote alone (a configured witness\'s etcd member is removed)' },
    FileShareWitness: {
      type: 'string', aliases: ['NodeAndFileShareMajority'], sets: ['FileShareWitness'], mandatory: ['FileShareWitness'],
      help: 'The witness directory every node reaches; its witness.json names the etcd member run from it',
    },
    Cluster,
  },
  view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const witness = ctx.parameterSet === 'FileShareWitness' ? args.FileShareWitness : undefined;
    if (!ctx.shouldProcess(witness ?? 'NodeMajority')) return undefined;
    return clientFor(ctx).call<ClusterQuorumView>('PUT', '/cluster/quorum',
      witness !== undefined ? { QuorumType: 'NodeAndFileShareMajority', FileShareWitness: witness } : { QuorumType: 'NodeMajority' });
  },
});
