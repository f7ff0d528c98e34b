// The cluster operations' cmdlets, run by whichever node the administrator reaches: Test-Cluster
// (validation.ts), Get-ClusterLog (cluster-log.ts), Get-ClusterResource / Get-ClusterParameter /
// Update-ClusterVirtualMachineConfiguration (a role's resources, read from etcd and the shared
// folder), and the VM-monitoring items (vm-monitor.ts; kept in etcd, carried out by the owner).
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { readClusterLog, type ClusterLogQuery } from './cluster-log.ts';
import type { ClusterGroupRecord, GroupState, Snapshot } from './keys.ts';
import { monitorKey, monitorRecordEmpty, type ClusterLogRecord, type MonitorRecord } from './ops-keys.ts';
import { testCluster, type ValidationView } from './validation.ts';

export type ResourceType = 'Virtual Machine' | 'Virtual Machine Configuration';
export interface ClusterResourceView { Name: string; State: GroupState; OwnerGroup: string; OwnerNode: string; ResourceType: ResourceType; VMId: string }
export interface ClusterParameterView { ClusterObject: string; Name: string; Value: string | number; Type: 'String' | 'UInt32' }
export interface MonitoredItemView { Name: string; VMName: string; VMId: string }
/** Reset-ClusterVMMonitoredState: the monitored-service failures cleared (the restart/failover count starts again). */
export interface MonitoredStateView { VMName: string; VMId: string; FailuresCleared: number }

const RESOURCE_PREFIX: Record<ResourceType, string> = { 'Virtual Machine': 'Virtual Machine ', 'Virtual Machine Configuration': 'Virtual Machine Configuration ' };
/** Hyper-V's OfflineAction of the VM resource: 1 = Save (what Stop-ClusterGroup does here). */
const OFFLINE_ACTION_SAVE = 1;

function inside(dir: string, path: string): boolean {
  const r = relative(resolve(dir), resolve(path));
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The parts of a clustered VM's vm.json (in the shared folder) the cluster reads. */
type SharedVmConfig = { name: string; memoryStartupBytes: number; hardDrives: { path: string }[]; dvdDrives: { path: string | null }[] };

export class ClusterOpsAdmin {
  constructor(private readonly node: ClusterNode) {}

  testCluster(): Promise<ValidationView> {
    return testCluster(this.node);
  }

  async log(q: ClusterLogQuery): Promise<ClusterLogRecord[]> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const unknown = (q.Node ?? []).filter((n) => ![...s.nodes.keys()].some((m) => m.toLowerCase() === n.toLowerCase()));
    if (unknown.length > 0) throw new VmhostError('NOT_FOUND', `The cluster node '${unknown[0]}' was not found`, { node: unknown[0] });
    return readClusterLog(this.node.etcd, q);
  }

  private configPath(id: string): string {
    return join(this.node.storage, 'vms', id, 'vm.json');
  }

  /** The VM's config as every node would load it from the shared folder. */
  private async vmConfig(id: string): Promise<SharedVmConfig> {
    try {
      return JSON.parse(await readFile(this.configPath(id), 'utf8')) as SharedVmConfig;
    } catch (e) {
      throw new VmhostError('CLUSTER_INVALID_OPERATION', `The configuration of clustered VM ${id} is not readable at ${this.configPath(id)}: ${(e as Error).message}`, { vm: id });
    }
  }

  private resourcesOf(s: Snapshot, g: ClusterGroupRecord): ClusterResourceView[] {
    const owner = s.owners.get(g.VMId);
    const st = s.states.get(g.VMId);
    const vmState: GroupState = !owner ? (g.Persistent === 'Online' && g.Priority !== 0 ? 'Pending' : 'Offline') : st && st.Node === owner.Node ? st.State : 'Pending';
    const base = { OwnerGroup: g.Name, OwnerNode: owner?.Node ?? st?.Node ?? '', VMId: g.VMId };
    return [
      { Name: `${RESOURCE_PREFIX['Virtual Machine']}${g.Name}`, State: vmState, ResourceType: 'Virtual Machine', ...base },
      // The configuration resource is online wherever the role is owned, whether the VM runs or not (as in Hyper-V).
      { Name: `${RESOURCE_PREFIX['Virtual Machine Configuration']}${g.Name}`, State: owner ? 'Online' : 'Offline', ResourceType: 'Virtual Machine Configuration', ...base },
    ];
  }

  /** Get-ClusterResource [-Name] [-VMId]: each VM role's two resources. */
  async resources(q: { Name?: string; VMId?: string } = {}): Promise<ClusterResourceView[]> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const all = [...s.groups.values()].sort((a, b) => a.Name.localeCompare(b.Name)).flatMap((g) => this.resourcesOf(s, g));
    const out = all.filter((r) => (q.Name === undefined || r.Name.toLowerCase() === q.Name.toLowerCase()) && (q.VMId === undefined || r.VMId === q.VMId.toLowerCase()));
    if ((q.Name !== undefined || q.VMId !== undefined) && out.length === 0) {
      throw new VmhostError('NOT_FOUND', `The cluster resource '${q.Name ?? q.VMId}' was not found`, { resource: q.Name ?? q.VMId });
    }
    return out;
  }

  /** Get-ClusterParameter -InputObject <resource> [-Name]: the VM resources' private properties. */
  async parameters(resource: string, name?: string): Promise<ClusterParameterView[]> {
    const r = (await this.resources({ Name: resource }))[0]!;
    const all: ClusterParameterView[] = [{ ClusterObject: r.Name, Name: 'VmID', Value: r.VMId, Type: 'String' }];
    if (r.ResourceType === 'Virtual Machine') {
      all.push({ ClusterObject: r.Name, Name: 'OfflineAction', Value: OFFLINE_ACTION_SAVE, Type: 'UInt32' });
      all.push({ ClusterObject: r.Name, Name: 'CheckHeartbeat', Value: (await this.monitorRecord(r.VMId)).rec.CheckHeartbeat ?? 1, Type: 'UInt32' });
    } else all.push({ ClusterObject: r.Name, Name: 'ConfigStoreRootPath', Value: join(this.node.storage, 'vms', r.VMId), Type: 'String' });
    const out = all.filter((p) => name === undefined || p.Name.toLowerCase() === name.toLowerCase());
    if (out.length === 0) throw new VmhostError('NOT_FOUND', `Resource '${r.Name}' has no parameter '${name}'`, { resource: r.Name, param: name });
    return out;
  }

  /**
   * Set-ClusterParameter -InputObject 'Virtual Machine <role>' -Name CheckHeartbeat -Value 0|1: whether
   * the owner restarts the VM (then fails it over) when its heartbeat fails (vm-monitor.ts). The only
   * writable private property: VmID and ConfigStoreRootPath name the VM, OfflineAction is what Stop-ClusterGroup does.
   */
  async setParameter(resource: string, name: string, value: number): Promise<ClusterParameterView> {
    const r = (await this.resources({ Name: resource }))[0]!;
    if (r.ResourceType !== 'Virtual Machine' || name.toLowerCase() !== 'checkheartbeat') {
      throw new VmhostError('INVALID_ARGUMENT', `Parameter '${name}' of resource '${r.Name}' cannot be set: the writable one is CheckHeartbeat of a Virtual Machine resource`, { resource: r.Name, param: name });
    }
    if (value !== 0 && value !== 1) throw new VmhostError('INVALID_ARGUMENT', `CheckHeartbeat '${value}': 1 (a failed heartbeat restarts the VM) or 0 (it does not)`, { param: 'Value' });
    for (;;) {
      const { rec, modRevision } = await this.monitorRecord(r.VMId);
      const cmp = modRevision === 0 ? { key: monitorKey(r.VMId), absent: true as const } : { key: monitorKey(r.VMId), modRevision };
      if ((await this.node.etcd.txn([cmp], [{ put: monitorKey(r.VMId), value: JSON.stringify({ ...rec, CheckHeartbeat: value } satisfies MonitorRecord) }])).succeeded) break;
    }
    this.node.event('Information', 'CLUSTER_VM_HEARTBEAT_CHECK', `${r.Name}: CheckHeartbeat ${value} (${value === 1 ? 'a failed heartbeat restarts the VM, then fails the role over' : 'the heartbeat is not watched'})`);
    return { ClusterObject: r.Name, Name: 'CheckHeartbeat', Value: value, Type: 'UInt32' };
  }

  /**
   * Update-ClusterVirtualMachineConfiguration -Name|-VMId: after the VM's settings changed on its
   * owner, check the configuration every node would load — readable in the shared folder, every
   * disk and ISO inside it — so a failover cannot meet a VM another node could not start.
   */
  async updateVmConfiguration(q: { Name?: string; VMId?: string }): Promise<ClusterResourceView> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const key = q.Name?.toLowerCase();
    const g = [...s.groups.values()].find((x) => x.VMId === q.VMId?.toLowerCase() || (key !== undefined
      && [x.Name, `${RESOURCE_PREFIX['Virtual Machine Configuration']}${x.Name}`].some((n) => n.toLowerCase() === key)));
    if (!g) throw new VmhostError('NOT_FOUND', `The cluster resource '${q.Name ?? q.VMId}' was not found`, { resource: q.Name ?? q.VMId });
    const c = await this.vmConfig(g.VMId);
    const outside = [...c.hardDrives.map((d) => d.path), ...c.dvdDrives.flatMap((d) => (d.path === null ? [] : [d.path]))].filter((p) => !inside(this.node.storage, p));
    if (outside.length > 0) {
      throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM '${c.name}': ${outside.join(', ')} is not in the cluster's shared folder ${this.node.storage}, so another node could not start it`, { vm: c.name, path: outside[0] });
    }
    // Placement finds a node by the role's startup memory (placement.ts): it follows Set-VMMemory.
    if (g.MemoryBytes !== c.memoryStartupBytes) await this.node.putGroup({ ...g, MemoryBytes: c.memoryStartupBytes });
    this.node.event('Information', 'CLUSTER_VM_CONFIGURATION_UPDATED', `Configuration of role '${g.Name}' (VM '${c.name}') checked: ${c.hardDrives.length} disk(s), all in the shared folder; startup memory ${c.memoryStartupBytes / 1024 ** 2} MB`);
    return this.resourcesOf(s, g).find((r) => r.ResourceType === 'Virtual Machine Configuration')!;
  }

  /** The role of a VM given by name (the VM's or the role's) or id. */
  private async role(vm: string): Promise<{ g: ClusterGroupRecord; vmName: string }> {
    const s = await this.node.read();
    this.node.assertMember(s);
    const key = vm.toLowerCase();
    for (const g of s.groups.values()) {
      if (g.VMId === key || g.Name.toLowerCase() === key) return { g, vmName: (await this.vmConfig(g.VMId).catch(() => ({ name: g.Name }))).name };
    }
    for (const g of s.groups.values()) {
      const name = (await this.vmConfig(g.VMId).catch(() => undefined))?.name;
      if (name?.toLowerCase() === key) return { g, vmName: name };
    }
    throw new VmhostError('NOT_FOUND', `No clustered VM '${vm}' in this cluster (Add-ClusterVirtualMachineRole makes one)`, { vm });
  }

  private async monitorRecord(vmId: string): Promise<{ rec: MonitorRecord; modRevision: number }> {
    const kv = await this.node.etcd.get(monitorKey(vmId));
    return kv ? { rec: JSON.parse(kv.value) as MonitorRecord, modRevision: kv.modRevision } : { rec: { VMId: vmId, Items: [], Failures: [] }, modRevision: 0 };
  }

  /** Change a role's items in one txn on the record's revision (two admins never lose each other's item). */
  private async changeItems(vm: string, change: (items: string[]) => string[]): Promise<MonitoredItemView[]> {
    const { g, vmName } = await this.role(vm);
    for (;;) {
      const { rec, modRevision } = await this.monitorRecord(g.VMId);
      const had = rec.Items.map((i) => i.Service);
      const items = change(had);
      const view = items.map((Name) => ({ Name, VMName: vmName, VMId: g.VMId }));
      if (items.join('\n') === had.join('\n')) return view; // nothing to write (Get-ClusterVMMonitoredItem, an item added twice)
      const cmp = modRevision === 0 ? { key: monitorKey(g.VMId), absent: true as const } : { key: monitorKey(g.VMId), modRevision };
      const next: MonitorRecord = { ...rec, Items: items.map((Service) => ({ Service })) };
      const op = monitorRecordEmpty(next) ? { delete: monitorKey(g.VMId) } : { put: monitorKey(g.VMId), value: JSON.stringify(next) };
      if ((await this.node.etcd.txn([cmp], [op])).succeeded) return view;
    }
  }

  /** Add-ClusterVMMonitoredItem -VirtualMachine -Service: the services added (one already monitored is kept once). */
  async addMonitoredItems(vm: string, services: string[]): Promise<MonitoredItemView[]> {
    const added = new Set(services);
    return (await this.changeItems(vm, (items) => [...new Set([...items, ...services])])).filter((i) => added.has(i.Name));
  }

  async monitoredItems(vm: string): Promise<MonitoredItemView[]> {
    return this.changeItems(vm, (items) => items);
  }

  async removeMonitoredItems(vm: string, services: string[]): Promise<MonitoredItemView[]> {
    const known = await this.monitoredItems(vm);
    const missing = services.filter((s) => !known.some((k) => k.Name === s));
    if (missing.length > 0) throw new VmhostError('NOT_FOUND', `Service '${missing[0]}' is not monitored in VM '${known[0]?.VMName ?? vm}'`, { vm, service: missing[0] });
    return this.changeItems(vm, (items) => items.filter((i) => !services.includes(i)));
  }

  /**
   * Reset-ClusterVMMonitoredState: forget the VM's monitored-service failures (vm-monitor.ts's
   * `Failures`, Hyper-V's application-critical state): its next failure restarts it in place again
   * rather than failing it over. One txn on the record's revision, so a failure recorded meanwhile is not lost unseen.
   */
  async resetMonitoredState(vm: string): Promise<MonitoredStateView> {
    const { g, vmName } = await this.role(vm);
    for (;;) {
      const { rec, modRevision } = await this.monitorRecord(g.VMId);
      const view = { VMName: vmName, VMId: g.VMId, FailuresCleared: rec.Failures.length };
      if (rec.Failures.length === 0) return view;
      const r = await this.node.etcd.txn([{ key: monitorKey(g.VMId), modRevision }], [{ put: monitorKey(g.VMId), value: JSON.stringify({ ...rec, Failures: [] } satisfies MonitorRecord) }]);
      if (r.succeeded) {
        this.node.event('Information', 'CLUSTER_VM_MONITOR_RESET', `VM '${vmName}': ${rec.Failures.length} monitored-service failure(s) cleared (Reset-ClusterVMMonitoredState)`);
        return view;
      }
    }
  }
}
