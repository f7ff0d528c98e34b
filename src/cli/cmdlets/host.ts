// Host-level cmdlets: Get-/Set-VMHost, Enable-/Disable-VMMigration, Get-VMEvent (the host's event log), Get-/Stop-Job.
import type { HostEvent, Job } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor, selectVms } from './vm-select.ts';

export const getVmHost = defineCmdlet({
  name: 'Get-VMHost',
  synopsis: 'Show the host: processors, memory, accelerator, VM counts',
  params: {},
  view: {
    layout: 'list',
    columns: ['ComputerName', 'LogicalProcessorCount', 'MemoryCapacity', 'FreeMemory', 'Accelerator', 'VirtualMachineCount', 'RunningVirtualMachineCount', 'QemuVersion', 'Version', 'VirtualMachinePath',
      'VirtualMachineMigrationEnabled', 'MaximumVirtualMachineMigrations', 'MaximumStorageMigrations', 'VirtualMachineMigrationPerformanceOption',
      'VirtualMachineMigrationAuthenticationType', 'UseAnyNetworkForMigration']
      .map((c) => ({ label: c, value: c })),
  },
  run: async (_args, ctx) => clientFor(ctx).call<Record<string, unknown>>('GET', '/host'),
});

export const getVmEvent = defineCmdlet({
  name: 'Get-VMEvent',
  synopsis: 'Show the host\'s event log, oldest first (vmhost extension; Hyper-V writes these to the Windows event log)',
  params: {
    VMName: { type: 'string', help: 'Only events of this VM' },
    Newest: { type: 'int', min: 1, max: 5000, help: 'Only the newest N events' },
  },
  positional: ['VMName'],
  view: { columns: ['Time', 'Level', 'VMName', 'Message'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    const api = clientFor(ctx);
    const q = new URLSearchParams();
    if (args.VMName) q.set('vm', (await selectVms(api, [args.VMName]))[0]!.Id);
    if (args.Newest) q.set('limit', String(args.Newest));
    return api.call<HostEvent[]>('GET', `/events?${q}`);
  },
});

export const getJob = defineCmdlet({
  name: 'Get-Job',
  synopsis: 'Show jobs (long operations) on the host',
  params: { Id: { type: 'guid' } },
  positional: ['Id'],
  view: { columns: ['Id', 'Name', 'VMName', 'State', 'PercentComplete', 'StatusDescription'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    const api = clientFor(ctx);
    return args.Id ? api.call<Job>('GET', `/jobs/${args.Id}`) : api.call<Job[]>('GET', '/jobs');
  },
});

export const stopJob = defineCmdlet({
  name: 'Stop-Job',
  synopsis: 'Cancel a queued or running job that allows it (Move-VM: the VM keeps running where it was)',
  params: { Id: { type: 'guid', mandatory: true } },
  positional: ['Id'],
  view: { columns: ['Id', 'Name', 'VMName', 'State', 'PercentComplete', 'StatusDescription'].map((c) => ({ label: c, value: c })) },
  run: async (args, ctx) => clientFor(ctx).call<Job>('DELETE', `/jobs/${args.Id}`),
});

// Set-VMHost: one block per settings group, each sent to its own route (the groups are saved apart).
const migrationParams = {
  VirtualMachineMigrationEnabled: { type: 'bool', help: 'Allow live migrations to and from this host' },
  MaximumVirtualMachineMigrations: { type: 'int', min: 1, max: 64, help: 'Moves that run at once; more wait (Queued)' },
  MaximumStorageMigrations: { type: 'int', min: 1, max: 64, help: 'Storage moves that run at once' },
  VirtualMachineMigrationPerformanceOption: { type: 'enum', values: ['TCPIP', 'Compression', 'SMB'], help: 'TCPIP: one stream; Compression: 4 multifd streams, zstd; SMB: 4 multifd streams, uncompressed' },
  VirtualMachineMigrationAuthenticationType: { type: 'enum', values: ['CredSSP', 'Kerberos'], help: 'Recorded for Hyper-V parity; moves authenticate with per-move tickets either way' },
  UseAnyNetworkForMigration: { type: 'bool', help: 'Recorded for Hyper-V parity (migration networks are not built yet)' },
} as const;

function picked(args: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> | undefined {
  const out = Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]]));
  return Object.keys(out).length > 0 ? out : undefined;
}

export const setVmHost = defineCmdlet({
  name: 'Set-VMHost',
  synopsis: 'Change host settings: live migration',
  params: { ...migrationParams },
  view: getVmHost.view,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const migration = picked({ ...args }, Object.keys(migrationParams));
    if (migration) await api.call('PATCH', '/host/migration', migration);
    return api.call<Record<string, unknown>>('GET', '/host');
  },
});

/** Enable-/Disable-VMMigration: the one setting, as Hyper-V's pair of cmdlets. */
function migrationSwitch(enabled: boolean) {
  return defineCmdlet({
    name: enabled ? 'Enable-VMMigration' : 'Disable-VMMigration',
    synopsis: `${enabled ? 'Allow' : 'Refuse'} live migrations to and from this host`,
    params: {},
    view: getVmHost.view,
    run: async (_args, ctx) => clientFor(ctx).call<Record<string, unknown>>('PATCH', '/host/migration', { VirtualMachineMigrationEnabled: enabled }),
  });
}

export const enableVmMigration = migrationSwitch(true);
export const disableVmMigration = migrationSwitch(false);
