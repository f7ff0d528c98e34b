// Hyper-V Replica cmdlets (src/replica): the Replica server's settings and authorization
// entries, a VM's replication (Enable-, Start-VMInitialReplication, Get-, Measure-, Suspend-,
// Resume-, Stop-, Remove-VMReplication, Reset-VMReplicationStatistics) and
// Test-VMReplicationConnection. Only certificate authentication: Kerberos is refused by the
// daemon with its reason.
import { resolve } from 'node:path';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { query } from '../query.ts';
import type { View } from '../table.ts';
import { clientFor, oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

// -VMName itself (vmNameMandatory's alias is VMName, for cmdlets whose parameter is -Name).
const vmName = { ...vmNameMandatory, aliases: [] } as const;
const asJob = { type: 'switch', help: 'Return the job at once instead of waiting' } as const;
const authType = { type: 'enum', values: ['Kerberos', 'Certificate'], help: 'Certificate (Kerberos needs a domain: refused)' } as const;
const thumbprint = { type: 'string', help: 'SHA-1 thumbprint of this host\'s certificate in DIR/replication-certificates (default: the only one)' } as const;
const columns = (...names: string[]): View => ({ columns: names.map((c) => ({ label: c, value: c })) });

const replicationView = columns('VMName', 'ReplicationState', 'ReplicationHealth', 'ReplicationMode', 'ReplicationFrequencySec', 'PrimaryServerName', 'CurrentReplicaServerName', 'LastReplicationTime');
const entryView = columns('AllowedPrimaryServer', 'ReplicaStorageLocation', 'TrustGroup');

export const getVmReplicationServer = defineCmdlet({
  name: 'Get-VMReplicationServer',
  synopsis: 'Show this host\'s Replica server settings',
  params: {},
  view: columns('ReplicationEnabled', 'AllowedAuthenticationType', 'CertificateAuthenticationPort', 'ReplicationAllowedFromAnyServer', 'DefaultStorageLocation', 'ListeningPort'),
  run: async (_args, ctx) => clientFor(ctx).call('GET', '/replication/server'),
});

export const setVmReplicationServer = defineCmdlet({
  name: 'Set-VMReplicationServer',
  synopsis: 'Make this host accept replication: port, authentication, storage',
  params: {
    ReplicationEnabled: { type: 'bool', help: 'Listen for primaries' },
    AllowedAuthenticationType: { type: 'enum', values: ['Kerberos', 'Certificate', 'CertificateAndKerberos'], help: 'Certificate (the only one supported)' },
    ReplicationAllowedFromAnyServer: { type: 'bool', help: 'Accept any primary whose certificate is trusted, into -DefaultStorageLocation' },
    DefaultStorageLocation: { type: 'string', help: 'Folder for replicas of primaries no entry names' },
    CertificateAuthenticationPort: { type: 'int', min: 1, max: 65535, help: 'TCP port of the TLS listener' },
    CertificateThumbprint: thumbprint,
    Force: { type: 'switch', help: 'Do not ask' },
  },
  positional: ['ReplicationEnabled'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess('Replica server settings')) return undefined;
    const out = await clientFor(ctx).call('PATCH', '/replication/server', {
      ReplicationEnabled: args.ReplicationEnabled, AllowedAuthenticationType: args.AllowedAuthenticationType, ReplicationAllowedFromAnyServer: args.ReplicationAllowedFromAnyServer,
      DefaultStorageLocation: args.DefaultStorageLocation === undefined ? undefined : resolve(args.DefaultStorageLocation),
      CertificateAuthenticationPort: args.CertificateAuthenticationPort, CertificateThumbprint: args.CertificateThumbprint,
    });
    return args.PassThru ? out : undefined;
  },
});

const entryParams = {
  AllowedPrimaryServer: { type: 'string', mandatory: true, help: 'The primary\'s name (its certificate\'s CN or DNS name), *.domain or *' },
  ReplicaStorageLocation: { type: 'string', help: 'Folder for this primary\'s replicas' },
  TrustGroup: { type: 'string', help: 'A label grouping primaries' },
} as const;

export const newVmReplicationAuthorizationEntry = defineCmdlet({
  name: 'New-VMReplicationAuthorizationEntry',
  synopsis: 'Allow a primary server (by certificate name) to replicate into a folder',
  params: { ...entryParams, ReplicaStorageLocation: { ...entryParams.ReplicaStorageLocation, mandatory: true }, TrustGroup: { ...entryParams.TrustGroup, mandatory: true } },
  positional: ['AllowedPrimaryServer', 'ReplicaStorageLocation', 'TrustGroup'],
  view: entryView,
  run: async (args, ctx) => clientFor(ctx).call('POST', '/replication/authorization', {
    AllowedPrimaryServer: args.AllowedPrimaryServer, ReplicaStorageLocation: resolve(args.ReplicaStorageLocation), TrustGroup: args.TrustGroup,
  }),
});

export const getVmReplicationAuthorizationEntry = defineCmdlet({
  name: 'Get-VMReplicationAuthorizationEntry',
  synopsis: 'List the allowed primary servers',
  params: { AllowedPrimaryServer: { type: 'string', help: 'Only this entry' }, TrustGroup: { type: 'string', help: 'Only this trust group' } },
  positional: ['AllowedPrimaryServer'],
  view: entryView,
  run: async (args, ctx) => {
    const q = new URLSearchParams();
    if (args.AllowedPrimaryServer !== undefined) q.set('AllowedPrimaryServer', args.AllowedPrimaryServer);
    if (args.TrustGroup !== undefined) q.set('TrustGroup', args.TrustGroup);
    return clientFor(ctx).call('GET', `/replication/authorization?${q}`);
  },
});

export const setVmReplicationAuthorizationEntry = defineCmdlet({
  name: 'Set-VMReplicationAuthorizationEntry',
  synopsis: 'Change an allowed primary\'s storage folder or trust group',
  params: entryParams,
  positional: ['AllowedPrimaryServer'],
  view: entryView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.AllowedPrimaryServer)) return undefined;
    const out = await clientFor(ctx).call('PATCH', `/replication/authorization/${encodeURIComponent(args.AllowedPrimaryServer)}`, {
      ReplicaStorageLocation: args.ReplicaStorageLocation === undefined ? undefined : resolve(args.ReplicaStorageLocation), TrustGroup: args.TrustGroup,
    });
    return args.PassThru ? out : undefined;
  },
});

export const removeVmReplicationAuthorizationEntry = defineCmdlet({
  name: 'Remove-VMReplicationAuthorizationEntry',
  synopsis: 'Stop allowing a primary server',
  params: { AllowedPrimaryServer: entryParams.AllowedPrimaryServer },
  positional: ['AllowedPrimaryServer'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.AllowedPrimaryServer)) return undefined;
    await clientFor(ctx).call('DELETE', `/replication/authorization/${encodeURIComponent(args.AllowedPrimaryServer)}`);
    return undefined;
  },
});

const connectionParams = {
  ReplicaServerName: { type: 'string', mandatory: true, help: 'The Replica server (a name or address its certificate carries)' },
  ReplicaServerPort: { type: 'int', mandatory: true, min: 1, max: 65535, help: 'Its CertificateAuthenticationPort' },
  AuthenticationType: authType,
  CertificateThumbprint: thumbprint,
} as const;

export const testVmReplicationConnection = defineCmdlet({
  name: 'Test-VMReplicationConnection',
  synopsis: 'Check that a Replica server is reachable and accepts this host\'s certificate',
  params: connectionParams,
  positional: ['ReplicaServerName', 'ReplicaServerPort'],
  run: async (args, ctx) => (await clientFor(ctx).call<{ Message: string }>('POST', '/replication/test', {
    ReplicaServerName: args.ReplicaServerName, ReplicaServerPort: args.ReplicaServerPort, AuthenticationType: args.AuthenticationType, CertificateThumbprint: args.CertificateThumbprint,
  })).Message,
});

export const enableVmReplication = defineCmdlet({
  name: 'Enable-VMReplication',
  synopsis: 'Turn on replication of a VM to a Replica server (then Start-VMInitialReplication)',
  params: {
    VMName: vmName, ...connectionParams,
    ReplicationFrequencySec: { type: 'int', values: [1, 30, 300, 900], help: 'Seconds between cycles (default 300); 1: continuous (vmhost extension: changes shipped as they are flushed)' },
    RecoveryHistory: { type: 'int', min: 0, max: 24, help: 'Recovery points kept on the replica (default 0: only the latest)' },
    CompressionEnabled: { type: 'bool', help: 'Deflate the changed blocks on the wire (default $true)' },
    ExcludedVhdPath: { type: 'string', array: true, help: 'Drive files not replicated' },
    VSSSnapshotFrequencyHour: { type: 'int', min: 0, max: 12, help: 'Hours between application-consistent recovery points (guest fsfreeze; default 0: none; needs RecoveryHistory ≥ 1)' },
  },
  positional: ['VMName', 'ReplicaServerName', 'ReplicaServerPort', 'AuthenticationType'],
  view: replicationView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return api.call('POST', `/vms/${vm.Id}/replication`, {
        ReplicaServerName: args.ReplicaServerName, ReplicaServerPort: args.ReplicaServerPort, AuthenticationType: args.AuthenticationType, CertificateThumbprint: args.CertificateThumbprint,
        ReplicationFrequencySec: args.ReplicationFrequencySec, RecoveryHistory: args.RecoveryHistory, CompressionEnabled: args.CompressionEnabled,
        ExcludedVhdPath: args.ExcludedVhdPath?.map((p) => resolve(p)), VSSSnapshotFrequencyHour: args.VSSSnapshotFrequencyHour,
      });
    });
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const startVmInitialReplication = defineCmdlet({
  name: 'Start-VMInitialReplication',
  synopsis: 'Send a VM\'s configuration and a full copy of its drives to its Replica server',
  params: {
    VMName: vmName, AsJob: asJob, DestinationPath: { type: 'string', help: 'Write the initial copy to this folder (removable media) instead of the network; Import-VMInitialReplication loads it on the Replica server' },
    UseBackup: { type: 'switch', help: 'The Replica server restored the VM from a backup (Import-VMInitialReplication -Path <backup repository>): compare blocks, send only those that differ' },
  },
  positional: ['VMName'],
  view: replicationView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      return runJob(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/replication/initial${query({ DestinationPath: args.DestinationPath === undefined ? undefined : resolve(args.DestinationPath), UseBackup: args.UseBackup ? 'true' : undefined })}`);
    });
    return args.PassThru || args.AsJob ? oneOrMany(out, args.VMName) : undefined;
  },
});

export const importVmInitialReplication = defineCmdlet({
  name: 'Import-VMInitialReplication',
  synopsis: 'On the Replica server: load an initial copy a primary wrote to media (Start-VMInitialReplication -DestinationPath), or seed the replica from the VM\'s newest backup (-UseBackup)',
  params: { VMName: { type: 'string', mandatory: true, help: 'The VM whose copy to load' }, Path: { type: 'string', mandatory: true, help: 'The folder the primary wrote (or the VM\'s folder in it), or a vmhost backup repository holding the VM' } },
  positional: ['VMName', 'Path'],
  view: replicationView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.VMName)) return undefined;
    const out = await clientFor(ctx).call<unknown[]>('POST', '/replication/import', { VMName: args.VMName, Path: resolve(args.Path) });
    return args.PassThru ? out : undefined;
  },
});

const vmFilter = { VMName: { type: 'string', array: true, help: 'Only these VMs' } } as const;

export const getVmReplication = defineCmdlet({
  name: 'Get-VMReplication',
  synopsis: 'Show the replication of this host\'s VMs (primaries and replicas)',
  params: vmFilter,
  positional: ['VMName'],
  view: replicationView,
  run: async (args, ctx) => {
    if (!args.VMName) return clientFor(ctx).call('GET', '/replication');
    return oneOrMany((await perVm(ctx, args.VMName, (api, vm) => api.call<unknown[]>('GET', `/replication?VMName=${encodeURIComponent(vm.Id)}`))).flat(), args.VMName);
  },
});

export const measureVmReplication = defineCmdlet({
  name: 'Measure-VMReplication',
  synopsis: 'Replication statistics: sizes, successes, missed cycles, errors',
  params: vmFilter,
  positional: ['VMName'],
  view: columns('VMName', 'State', 'Health', 'LastReplicationTime', 'AverageReplicationSize', 'LastReplicationSize', 'SuccessfulReplicationCount', 'MissedReplicationCount', 'ReplicationErrors'),
  run: async (args, ctx) => {
    if (!args.VMName) return clientFor(ctx).call('GET', '/replication/statistics');
    return oneOrMany((await perVm(ctx, args.VMName, (api, vm) => api.call<unknown[]>('GET', `/replication/statistics?VMName=${encodeURIComponent(vm.Id)}`))).flat(), args.VMName);
  },
});

/** The per-VM action cmdlets: one POST each. */
function action(name: string, synopsis: string, method: string, suffix: string) {
  return defineCmdlet({
    name, synopsis,
    params: { VMName: vmName },
    positional: ['VMName'],
    view: replicationView,
    supportsShouldProcess: true,
    async run(args, ctx) {
      const out = await perVm(ctx, args.VMName, async (api, vm) => (ctx.shouldProcess(vm.Name) ? api.call(method, `/vms/${vm.Id}/replication${suffix}`) : undefined));
      return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
    },
  });
}

export const suspendVmReplication = action('Suspend-VMReplication', 'Pause a VM\'s replication (cycles pass until Resume)', 'POST', '/suspend');
export const resumeVmReplication = defineCmdlet({
  name: 'Resume-VMReplication',
  synopsis: 'Resume a suspended replication; -Resynchronize compares the blocks of both sides and sends those that differ',
  params: { VMName: vmName, Resynchronize: { type: 'switch', help: 'Resynchronize (after "resynchronization required", or a Reverse of an unplanned failover)' } },
  positional: ['VMName'],
  view: replicationView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => (ctx.shouldProcess(vm.Name)
      ? api.call('POST', `/vms/${vm.Id}/replication/resume${query({ Resynchronize: args.Resynchronize ? 'true' : undefined })}`) : undefined));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
export const stopVmReplication = action('Stop-VMReplication', 'Abandon the point being sent (its changes go with the next cycle)', 'POST', '/stop');
export const resetVmReplicationStatistics = action('Reset-VMReplicationStatistics', 'Zero a VM\'s replication statistics', 'POST', '/reset-statistics');
export const removeVmReplication = action('Remove-VMReplication', 'Delete a VM\'s replication relationship (the Replica VM stays on its server)', 'DELETE', '');
