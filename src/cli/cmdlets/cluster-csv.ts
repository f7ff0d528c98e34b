// Cluster Shared Volumes (src/cluster/csv-service.ts): Get-ClusterSharedVolume (reference §2),
// and Add-/Remove-ClusterSharedVolume, which Hyper-V has for a cluster disk and which here take
// a directory every node reaches (-Path). Move-ClusterSharedVolume is not offered: the reference
// lists no such cmdlet; the leader balances the coordinators itself.
import type { ClusterSharedVolumeView } from '../../cluster/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { query } from '../query.ts';
import { clientFor } from './vm-select.ts';

const Cluster = { type: 'string', help: 'The cluster (the one of the node this CLI reaches)' } as const;
/** Hyper-V's table: Name, State, Node (the coordinator). */
const view = { columns: [{ label: 'Name', value: 'Name' }, { label: 'State', value: 'State' }, { label: 'Node', value: 'OwnerNode' }, { label: 'Path', value: 'Path' }] };

export const getClusterSharedVolume = defineCmdlet({
  name: 'Get-ClusterSharedVolume',
  synopsis: 'List the Cluster Shared Volumes with their coordinator (OwnerNode), path and disk files',
  params: { Name: { type: 'string', help: 'One volume' }, Cluster },
  positional: ['Name'],
  view,
  async run(args, ctx) {
    const vols = await clientFor(ctx).call<ClusterSharedVolumeView[]>('GET', `/cluster/shared-volumes${query({ Name: args.Name })}`);
    return args.Name !== undefined ? vols[0] : vols;
  },
});

export const addClusterSharedVolume = defineCmdlet({
  name: 'Add-ClusterSharedVolume',
  synopsis: 'Make a directory every node reaches at the same path a Cluster Shared Volume (each Up node checks it)',
  params: {
    Name: { type: 'string', mandatory: true, help: 'The volume\'s name' },
    Path: { type: 'string', mandatory: true, help: 'The directory, as every node reaches it' },
    Cluster,
  },
  positional: ['Name'],
  view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return clientFor(ctx).call<ClusterSharedVolumeView>('POST', '/cluster/shared-volumes', { Name: args.Name, Path: args.Path });
  },
});

export const removeClusterSharedVolume = defineCmdlet({
  name: 'Remove-ClusterSharedVolume',
  synopsis: 'Stop sharing a volume through the cluster (the directory and its files stay)',
  params: { Name: { type: 'string', mandatory: true, help: 'The volume' }, Cluster },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    await clientFor(ctx).call('DELETE', `/cluster/shared-volumes/${encodeURIComponent(args.Name)}`);
    return undefined;
  },
});
