// The Failover Clustering cmdlets (reference §2): cluster, nodes, and VM roles (groups). Any
// node of the cluster answers them (its daemon reads the cluster's etcd). -Cluster is accepted
// as Hyper-V's scripts pass it; this CLI talks to the cluster through the node it reaches.
import type { ClusterGroupView, ClusterNodeView, ClusterParameterView, ClusterView } from '../../cluster/index.ts';
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';
import { query } from '../query.ts';

const enc = encodeURIComponent;
const Cluster = { type: 'string', help: 'The cluster (the one of the node this CLI reaches)' } as const;
const nodeView = { columns: ['Name', 'ID', 'State'].map((c) => ({ label: c, value: c === 'ID' ? 'Id' : c })) };
const groupView = { columns: ['Name', 'OwnerNode', 'State', 'Priority'].map((c) => ({ label: c, value: c })) };
const GroupName = { type: 'string', mandatory: true, help: 'The role (group) name, or its VM id' } as const;

export const newCluster = defineCmdlet({
  name: 'New-Cluster',
  synopsis: 'Create a failover cluster of vmhostd nodes connected to one etcd',
  params: {
    Name: { type: 'string', mandatory: true, help: 'The cluster\'s name' },
    Node: { type: 'string', array: true, mandatory: true, help: 'Node names (each daemon\'s --cluster-node-name)' },
  },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return clientFor(ctx).call<ClusterView>('POST', '/cluster', { Name: args.Name, Node: args.Node });
  },
});

export const getCluster = defineCmdlet({
  name: 'Get-Cluster',
  synopsis: 'Show the cluster (name, quorum settings, shared volumes root)',
  params: { Name: Cluster },
  positional: ['Name'],
  view: { columns: [{ label: 'Name', value: 'Name' }] },
  async run(_args, ctx) {
    return clientFor(ctx).call<ClusterView>('GET', '/cluster');
  },
});

export const getClusterNode = defineCmdlet({
  name: 'Get-ClusterNode',
  synopsis: 'List the cluster\'s nodes with State (Up, Down, Paused), NodeWeight and DynamicWeight',
  params: { Name: { type: 'string', help: 'One node' }, Cluster },
  positional: ['Name'],
  view: nodeView,
  async run(args, ctx) {
    return clientFor(ctx).call<ClusterNodeView[]>('GET', `/cluster/nodes${query({ Name: args.Name })}`);
  },
});

export const addClusterNode = defineCmdlet({
  name: 'Add-ClusterNode',
  synopsis: 'Add a node (a vmhostd connected to the cluster\'s etcd) to the cluster',
  params: { Name: { type: 'string', mandatory: true, help: 'The node\'s name' }, Cluster },
  positional: ['Name'],
  view: nodeView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return clientFor(ctx).call<ClusterNodeView>('POST', '/cluster/nodes', { Name: args.Name });
  },
});

export const removeClusterNode = defineCmdlet({
  name: 'Remove-ClusterNode',
  synopsis: 'Remove a node that owns no roles from the cluster',
  params: { Name: { type: 'string', mandatory: true, help: 'The node\'s name' }, Cluster, Force: { type: 'switch', help: 'Do not ask (this CLI never asks)' } },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    await clientFor(ctx).call('DELETE', `/cluster/nodes/${enc(args.Name)}`);
    return undefined;
  },
});

export const addClusterVirtualMachineRole = defineCmdlet({
  name: 'Add-ClusterVirtualMachineRole',
  synopsis: 'Make an Off VM of this node highly available: its folder moves to the shared folder, the role is owned here',
  params: {
    VMName: { type: 'string', mandatory: true, aliases: ['VirtualMachine', 'VM'], help: 'The VM (its disks must be in the cluster\'s shared folder)' },
    Name: { type: 'string', help: 'The role\'s name (default: the VM\'s)' },
    Cluster,
  },
  positional: ['VMName'],
  view: groupView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.VMName)) return undefined;
    return clientFor(ctx).call<ClusterGroupView>('POST', '/cluster/groups', { VMName: args.VMName, Name: args.Name });
  },
});

export const getClusterGroup = defineCmdlet({
  name: 'Get-ClusterGroup',
  synopsis: 'List the cluster\'s roles with OwnerNode, State and Priority',
  params: { Name: { type: 'string', help: 'One role (its name or VM id)' }, VMId: { type: 'guid', help: 'The role of this VM' }, Cluster },
  positional: ['Name'],
  view: groupView,
  async run(args, ctx) {
    return clientFor(ctx).call<ClusterGroupView[]>('GET', `/cluster/groups${query({ Name: args.Name ?? args.VMId })}`);
  },
});

function groupAction(name: 'Start-ClusterGroup' | 'Stop-ClusterGroup', verb: 'start' | 'stop', synopsis: string) {
  return defineCmdlet({
    name,
    synopsis,
    params: { Name: GroupName, Cluster, Wait: { type: 'int', min: 0, help: 'Seconds to wait (the daemon waits up to 120 s)' }, IgnoreLocked: { type: 'switch' } },
    positional: ['Name'],
    view: groupView,
    supportsShouldProcess: true,
    async run(args, ctx) {
      if (!ctx.shouldProcess(args.Name)) return undefined;
      return clientFor(ctx).call<ClusterGroupView>('POST', `/cluster/groups/${enc(args.Name)}/${verb}`);
    },
  });
}

export const startClusterGroup = groupAction('Start-ClusterGroup', 'start', 'Bring a role online on its owner node');
export const stopClusterGroup = groupAction('Stop-ClusterGroup', 'stop', 'Take a role offline (the VM is saved: Hyper-V\'s default OfflineAction)');

// Live is the only migration type built; the others (Quick: saved and restored) are refused by the binder.
const moveVmParams = { MigrationType: { type: 'enum', values: ['Live'], help: 'Live (the only one built)' } } as const;

function moveAction(name: 'Move-ClusterVirtualMachineRole' | 'Move-ClusterGroup', synopsis: string, extra: Record<string, never> | typeof moveVmParams) {
  return defineCmdlet({
    name,
    synopsis,
    params: { Name: GroupName, Node: { type: 'string', mandatory: true, help: 'The node it moves to' }, Cluster, Wait: { type: 'int', min: 0, help: 'Seconds to wait (the daemon waits up to 120 s)' }, IgnoreLocked: { type: 'switch' }, ...extra },
    positional: ['Name', 'Node'],
    view: groupView,
    supportsShouldProcess: true,
    async run(args, ctx) {
      if (!ctx.shouldProcess(args.Name)) return undefined;
      return clientFor(ctx).call<ClusterGroupView>('POST', `/cluster/groups/${enc(args.Name)}/move`, { Node: args.Node });
    },
  });
}

export const moveClusterVirtualMachineRole = moveAction('Move-ClusterVirtualMachineRole', 'Move a running clustered VM live to another node', moveVmParams);
export const moveClusterGroup = moveAction('Move-ClusterGroup', 'Move a running role live to another node', {});

export const suspendClusterNode = defineCmdlet({
  name: 'Suspend-ClusterNode',
  synopsis: 'Pause a node (it takes no roles); -Drain moves its running roles live to other nodes first',
  params: { Name: { type: 'string', mandatory: true, help: 'The node' }, Drain: { type: 'switch', help: 'Move its running roles away live (waits)' }, Wait: { type: 'switch' }, Cluster },
  positional: ['Name'],
  view: { columns: ['Name', 'State', 'DrainStatus'].map((c) => ({ label: c, value: c })) },
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return clientFor(ctx).call<ClusterNodeView>('POST', `/cluster/nodes/${enc(args.Name)}/suspend`, { Drain: args.Drain === true });
  },
});

export const resumeClusterNode = defineCmdlet({
  name: 'Resume-ClusterNode',
  synopsis: 'Resume a paused node; -Failback Immediate moves the roles its drain moved away back live',
  params: { Name: { type: 'string', mandatory: true, help: 'The node' }, Failback: { type: 'enum', values: ['Immediate', 'NoFailback', 'Policy'], help: 'Default NoFailback' }, Cluster },
  positional: ['Name'],
  view: { columns: ['Name', 'State', 'DrainStatus'].map((c) => ({ label: c, value: c })) },
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    return clientFor(ctx).call<ClusterNodeView>('POST', `/cluster/nodes/${enc(args.Name)}/resume`, args.Failback !== undefined ? { Failback: args.Failback } : {});
  },
});

export const removeClusterGroup = defineCmdlet({
  name: 'Remove-ClusterGroup',
  synopsis: 'Delete an Offline role: its VM becomes an ordinary VM of its owner node (files stay)',
  params: { Name: GroupName, Cluster, RemoveResources: { type: 'switch' }, Force: { type: 'switch' } },
  positional: ['Name'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name)) return undefined;
    await clientFor(ctx).call('DELETE', `/cluster/groups/${enc(args.Name)}`);
    return undefined;
  },
});

export const getClusterOwnerNode = defineCmdlet({
  name: 'Get-ClusterOwnerNode',
  synopsis: 'Show a role\'s possible owners (empty: every node)',
  params: { Group: GroupName, Cluster },
  positional: ['Group'],
  view: { columns: [{ label: 'ClusterObject', value: 'Name' }, { label: 'OwnerNodes', value: 'OwnerNodes' }] },
  async run(args, ctx) {
    return (await clientFor(ctx).call<ClusterGroupView[]>('GET', `/cluster/groups?${new URLSearchParams({ Name: args.Group })}`))[0];
  },
});

export const setClusterOwnerNode = defineCmdlet({
  name: 'Set-ClusterOwnerNode',
  synopsis: 'Set the nodes a role may fail over to',
  params: { Group: GroupName, Owners: { type: 'string', array: true, mandatory: true, help: 'Node names' }, Cluster },
  positional: ['Owners'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Group)) return undefined;
    const v = await clientFor(ctx).call<ClusterGroupView>('PATCH', `/cluster/groups/${enc(args.Group)}`, { OwnerNodes: args.Owners });
    return args.PassThru ? v : undefined;
  },
});

/**
 * PowerShell sets a role's properties and a node's vote by assigning them, `(Get-ClusterGroup
 * vm1).Priority = 3000`, `.AntiAffinityClassNames = "sql"`, `(Get-ClusterNode n2).NodeWeight = 0`;
 * a command line cannot assign, so the CLI spells them as the object's parameters (-InputObject the
 * role, or the node for NodeWeight; a comma-separated list for the class names, empty clears them).
 */
export const setClusterParameter = defineCmdlet({
  name: 'Set-ClusterParameter',
  synopsis: 'Set a role\'s Priority (3000 High, 2000 Medium, 1000 Low, 0 No Auto Start) or AntiAffinityClassNames, a node\'s NodeWeight (its vote: 1 or 0), or a Virtual Machine resource\'s CheckHeartbeat (1 or 0)',
  params: {
    InputObject: { type: 'string', mandatory: true, help: 'The role (group) name, the node for NodeWeight, the resource (\'Virtual Machine <role>\') for CheckHeartbeat' },
    Name: { type: 'enum', values: ['Priority', 'AntiAffinityClassNames', 'NodeWeight', 'CheckHeartbeat'], mandatory: true, help: 'The property' },
    Value: { type: 'string', mandatory: true, help: 'Priority: 3000, 2000, 1000 or 0; AntiAffinityClassNames: class names, comma-separated; NodeWeight, CheckHeartbeat: 1 or 0' },
    Cluster,
  },
  positional: ['Name', 'Value'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    let change: { Priority: number } | { AntiAffinityClassNames: string[] } | 'NodeWeight' | 'CheckHeartbeat';
    if (args.Name === 'NodeWeight' || args.Name === 'CheckHeartbeat') {
      const meaning = args.Name === 'NodeWeight' ? '1 (the node votes) or 0 (it does not)' : '1 (a failed heartbeat restarts the VM) or 0 (it does not)';
      if (args.Value !== '0' && args.Value !== '1') throw new VmhostError('INVALID_ARGUMENT', `${args.Name} '${args.Value}': ${meaning}`, { param: 'Value' });
      change = args.Name;
    } else if (args.Name === 'Priority') {
      if (!['3000', '2000', '1000', '0'].includes(args.Value)) {
        throw new VmhostError('INVALID_ARGUMENT', `Priority '${args.Value}': 3000 (High), 2000 (Medium), 1000 (Low) or 0 (No Auto Start)`, { param: 'Value' });
      }
      change = { Priority: Number(args.Value) };
    } else {
      change = { AntiAffinityClassNames: args.Value.split(',').map((c) => c.trim()).filter((c) => c !== '') };
    }
    if (!ctx.shouldProcess(args.InputObject)) return undefined;
    const client = clientFor(ctx);
    let v: unknown;
    if (change === 'NodeWeight') v = await client.call<ClusterNodeView>('PATCH', `/cluster/nodes/${enc(args.InputObject)}`, { NodeWeight: Number(args.Value) });
    else if (change === 'CheckHeartbeat') v = await client.call<ClusterParameterView>('PUT', `/cluster/resources/${enc(args.InputObject)}/parameters/CheckHeartbeat`, { Value: Number(args.Value) });
    else v = await client.call<ClusterGroupView>('PATCH', `/cluster/groups/${enc(args.InputObject)}`, change);
    return args.PassThru ? v : undefined;
  },
});
