// The cluster operations' cmdlets: Test-Cluster, Get-ClusterLog, Get-ClusterResource,
// Get-ClusterParameter, Update-ClusterVirtualMachineConfiguration and the VM-monitoring items
// (reference §2). Like cluster.ts, any node answers them; -Cluster is accepted and means that node's.
import type { ClusterLogRecord, ClusterParameterView, ClusterResourceView, MonitoredItemView, MonitoredStateView, ValidationView } from '../../cluster/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';
import { query } from '../query.ts';

const enc = encodeURIComponent;
const Cluster = { type: 'string', help: 'The cluster (the one of the node this CLI reaches)' } as const;
const cols = (...names: string[]): { columns: { label: string; value: string }[] } => ({ columns: names.map((c) => ({ label: c, value: c })) });
const VirtualMachine = { type: 'string', mandatory: true, aliases: ['VM'], help: 'The clustered VM (its name, its role\'s, or its id)' } as const;

export const testCluster = defineCmdlet({
  name: 'Test-Cluster',
  synopsis: 'Validate the cluster: etcd from every node, clock offsets, the shared folder from every node, the same switches and vmhost version',
  params: { Cluster, Node: { type: 'string', array: true, help: 'Accepted; every member node is tested' }, Include: { type: 'string', array: true, help: 'Accepted; every test runs' } },
  view: cols('Category', 'Test', 'Node', 'Result', 'Detail'),
  async run(_args, ctx) {
    const v = await clientFor(ctx).call<ValidationView>('POST', '/cluster/validate');
    if (v.Result !== 'Pass') ctx.warn(`Test-Cluster: ${v.Result} — ${v.Tests.filter((x) => x.Result !== 'Pass').map((x) => `${x.Node}: ${x.Test}`).join('; ')}`);
    return v.Tests;
  },
});

export const getClusterLog = defineCmdlet({
  name: 'Get-ClusterLog',
  synopsis: 'Every node\'s cluster events, merged by time',
  params: {
    Node: { type: 'string', array: true, help: 'Only these nodes' },
    TimeSpan: { type: 'int', min: 1, help: 'Only the last this many minutes' },
    Cluster,
  },
  view: cols('Time', 'Node', 'Level', 'Code', 'Message'),
  async run(args, ctx) {
    const q = query({ Node: args.Node?.join(','), TimeSpan: args.TimeSpan === undefined ? undefined : String(args.TimeSpan) });
    return clientFor(ctx).call<ClusterLogRecord[]>('GET', `/cluster/log${q}`);
  },
});

export const getClusterResource = defineCmdlet({
  name: 'Get-ClusterResource',
  synopsis: 'List the VM roles\' resources (Virtual Machine, Virtual Machine Configuration)',
  params: { Name: { type: 'string', help: 'One resource' }, VMId: { type: 'guid', help: 'The resources of this VM' }, Cluster },
  positional: ['Name'],
  view: cols('Name', 'State', 'OwnerGroup', 'ResourceType'),
  async run(args, ctx) {
    return clientFor(ctx).call<ClusterResourceView[]>('GET', `/cluster/resources${query({ Name: args.Name, VMId: args.VMId })}`);
  },
});

export const getClusterParameter = defineCmdlet({
  name: 'Get-ClusterParameter',
  synopsis: 'A cluster resource\'s private properties (VmID, OfflineAction, ConfigStoreRootPath)',
  params: { InputObject: { type: 'string', mandatory: true, help: 'The resource (Get-ClusterResource\'s Name)' }, Name: { type: 'string', help: 'One parameter' }, Cluster },
  positional: ['Name'],
  view: cols('ClusterObject', 'Name', 'Value', 'Type'),
  async run(args, ctx) {
    return clientFor(ctx).call<ClusterParameterView[]>('GET', `/cluster/resources/${enc(args.InputObject)}/parameters${query({ Name: args.Name })}`);
  },
});

export const updateClusterVirtualMachineConfiguration = defineCmdlet({
  name: 'Update-ClusterVirtualMachineConfiguration',
  synopsis: 'After a clustered VM\'s settings changed: check the configuration every node would load (disks in the shared folder)',
  params: { Name: { type: 'string', help: 'The role or its Virtual Machine Configuration resource' }, VMId: { type: 'guid', help: 'The VM' }, Cluster },
  positional: ['Name'],
  view: cols('Name', 'State', 'OwnerGroup', 'ResourceType'),
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Name ?? args.VMId ?? '')) return undefined;
    return clientFor(ctx).call<ClusterResourceView>('POST', '/cluster/vm-configuration', { ...(args.Name !== undefined ? { Name: args.Name } : {}), ...(args.VMId !== undefined ? { VMId: args.VMId } : {}) });
  },
});

const itemView = cols('Name', 'VMName');

export const addClusterVMMonitoredItem = defineCmdlet({
  name: 'Add-ClusterVMMonitoredItem',
  synopsis: 'Monitor a guest service (systemd unit or process): its stop restarts the VM, a second within 15 min fails it over',
  params: { VirtualMachine, Service: { type: 'string', array: true, mandatory: true, help: 'systemd unit or process name' }, Cluster },
  positional: ['Service'],
  view: itemView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.VirtualMachine)) return undefined;
    return clientFor(ctx).call<MonitoredItemView[]>('POST', '/cluster/monitored-items', { VirtualMachine: args.VirtualMachine, Service: args.Service });
  },
});

export const getClusterVMMonitoredItem = defineCmdlet({
  name: 'Get-ClusterVMMonitoredItem',
  synopsis: 'List the guest services monitored in a clustered VM',
  params: { VirtualMachine, Cluster },
  positional: ['VirtualMachine'],
  view: itemView,
  async run(args, ctx) {
    return clientFor(ctx).call<MonitoredItemView[]>('GET', `/cluster/monitored-items?${new URLSearchParams({ VirtualMachine: args.VirtualMachine })}`);
  },
});

export const removeClusterVMMonitoredItem = defineCmdlet({
  name: 'Remove-ClusterVMMonitoredItem',
  synopsis: 'Stop monitoring guest services of a clustered VM',
  params: { VirtualMachine, Service: { type: 'string', array: true, mandatory: true, help: 'systemd unit or process name' }, Cluster },
  positional: ['Service'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.VirtualMachine)) return undefined;
    let left: MonitoredItemView[] = [];
    for (const s of args.Service) left = await clientFor(ctx).call<MonitoredItemView[]>('DELETE', `/cluster/monitored-items/${enc(args.VirtualMachine)}/${enc(s)}`);
    return args.PassThru ? left : undefined;
  },
});

export const resetClusterVMMonitoredState = defineCmdlet({
  name: 'Reset-ClusterVMMonitoredState',
  synopsis: 'Forget a clustered VM\'s monitored-service failures: its next one restarts it in place again rather than failing it over',
  params: {
    VirtualMachine: { ...VirtualMachine, aliases: ['VM', 'VMName', 'Name'] },
    Wait: { type: 'int', min: 0, help: 'Accepted: the reset is done when the cmdlet returns' },
    Cluster,
  },
  positional: ['VirtualMachine'],
  view: { columns: [{ label: 'VMName', value: 'VMName' }, { label: 'FailuresCleared', value: 'FailuresCleared' }] },
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.VirtualMachine)) return undefined;
    const v = await clientFor(ctx).call<MonitoredStateView>('POST', `/cluster/monitored-items/${enc(args.VirtualMachine)}/reset`);
    return args.PassThru ? v : undefined;
  },
});
