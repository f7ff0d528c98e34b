// Hyper-V Replica failover cmdlets (src/replica/failover.ts): Start-VMFailover (-AsTest, -Prepare,
// -VMRecoverySnapshot), Stop-VMFailover, Complete-VMFailover, and Set-VMReplication (-Reverse,
// or a primary's settings).
import { defineCmdlet } from '../cmdlet.ts';
import type { View } from '../table.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;
const vmView: View = { columns: ['Name', 'State', 'ReplicationMode', 'ReplicationState'].map((c) => ({ label: c, value: c })) };

export const startVmFailover = defineCmdlet({
  name: 'Start-VMFailover',
  synopsis: 'Fail a Replica VM over to a recovery point, start a test failover (-AsTest), or prepare a planned one on the primary (-Prepare)',
  params: {
    VMName: vmName,
    VMRecoverySnapshot: { type: 'string', help: 'The recovery point (Name or Id from Get-VMSnapshot); default the newest' },
    AsTest: { type: 'switch', help: 'A test VM "<name> - Test" on the point, adapters unconnected; replication goes on' },
    Prepare: { type: 'switch', help: 'On the primary, VM off: send the last changes and stop replicating (planned failover)' },
  },
  positional: ['VMName'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => (ctx.shouldProcess(vm.Name)
      ? api.call('POST', `/vms/${vm.Id}/failover`, { AsTest: args.AsTest || undefined, Prepare: args.Prepare || undefined, VMRecoverySnapshot: args.VMRecoverySnapshot })
      : undefined));
    // A test failover's result is the new test VM: shown as New-VM's would be.
    return args.PassThru || args.AsTest ? oneOrMany(out, args.VMName) : undefined;
  },
});

function step(name: string, synopsis: string, suffix: string) {
  return defineCmdlet({
    name, synopsis,
    params: { VMName: vmName },
    positional: ['VMName'],
    view: vmView,
    supportsShouldProcess: true,
    async run(args, ctx) {
      const out = await perVm(ctx, args.VMName, async (api, vm) => (ctx.shouldProcess(vm.Name) ? api.call('POST', `/vms/${vm.Id}/failover/${suffix}`) : undefined));
      return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
    },
  });
}

export const stopVmFailover = step('Stop-VMFailover', 'Remove the test VM, undo a failover not yet completed, or call off -Prepare', 'stop');
export const completeVmFailover = step('Complete-VMFailover', 'Commit the failover: the chosen recovery point stays, the others go', 'complete');

export const setVmReplication = defineCmdlet({
  name: 'Set-VMReplication',
  synopsis: 'Change a VM\'s replication settings, or reverse its direction after a failover (-Reverse)',
  params: {
    VMName: vmName,
    Reverse: { type: 'switch', help: 'On the failed-over Replica VM: this host becomes the primary, the old primary its Replica server' },
    ReplicaServerName: { type: 'string', help: 'The Replica server (with -Reverse: the old primary; default its certificate name)' },
    ReplicaServerPort: { type: 'int', min: 1, max: 65535, help: 'Its CertificateAuthenticationPort' },
    AuthenticationType: { type: 'enum', values: ['Kerberos', 'Certificate'], help: 'Certificate (Kerberos needs a domain: refused)' },
    CertificateThumbprint: { type: 'string', help: 'SHA-1 thumbprint of this host\'s certificate in DIR/replication-certificates' },
    ReplicationFrequencySec: { type: 'int', values: [30, 300, 900], help: 'Seconds between cycles' },
    RecoveryHistory: { type: 'int', min: 0, max: 24, help: 'Recovery points kept on the replica' },
    CompressionEnabled: { type: 'bool', help: 'Deflate the changed blocks on the wire' },
  },
  positional: ['VMName'],
  view: { columns: ['VMName', 'ReplicationState', 'ReplicationMode', 'ReplicaServerName', 'ReplicationFrequencySec'].map((c) => ({ label: c, value: c })) },
  supportsShouldProcess: true,
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => (ctx.shouldProcess(vm.Name)
      ? api.call('PATCH', `/vms/${vm.Id}/replication`, {
        Reverse: args.Reverse || undefined, ReplicaServerName: args.ReplicaServerName, ReplicaServerPort: args.ReplicaServerPort, AuthenticationType: args.AuthenticationType,
        CertificateThumbprint: args.CertificateThumbprint, ReplicationFrequencySec: args.ReplicationFrequencySec, RecoveryHistory: args.RecoveryHistory, CompressionEnabled: args.CompressionEnabled,
      })
      : undefined));
    return args.PassThru ? oneOrMany(out, args.VMName) : undefined;
  },
});
