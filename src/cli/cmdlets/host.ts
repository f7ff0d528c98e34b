// Host-level cmdlets: Get-/Set-VMHost, Enable-/Disable-VMMigration, Get-VMEvent (the host's event log), Get-/Stop-Job.
import { VmhostError } from '../../common/index.ts';
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
      'MacAddressMinimum', 'MacAddressMaximum',
      'VirtualMachineMigrationEnabled', 'MaximumVirtualMachineMigrations', 'MaximumStorageMigrations', 'VirtualMachineMigrationPerformanceOption',
      'VirtualMachineMigrationAuthenticationType', 'UseAnyNetworkForMigration', 'ResourceMeteringSaveInterval']
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

// Set-VMHost: one block of parameters per settings group; each group is one PATCH of its own
// route (the daemon validates and saves each apart), sent only when one of its parameters is given.
const macPoolParams = {
  MacAddressMinimum: { type: 'string', help: 'Lowest dynamic MAC address the host hands out (00-15-5D-38-1F-00, 00155D381F00)' },
  MacAddressMaximum: { type: 'string', help: 'Highest dynamic MAC address, in the same OUI as the minimum' },
} as const;

const migrationParams = {
  VirtualMachineMigrationEnabled: { type: 'bool', help: 'Allow live migrations to and from this host' },
  MaximumVirtualMachineMigrations: { type: 'int', min: 1, max: 64, help: 'Moves that run at once; more wait (Queued)' },
  MaximumStorageMigrations: { type: 'int', min: 1, max: 64, help: 'Storage moves that run at once' },
  VirtualMachineMigrationPerformanceOption: { type: 'enum', values: ['TCPIP', 'Compression', 'SMB'], help: 'TCPIP: one stream; Compression: 4 multifd channels with zstd (CPU for bandwidth); SMB: 4 multifd channels uncompressed' },
  VirtualMachineMigrationAuthenticationType: { type: 'enum', values: ['CredSSP', 'Kerberos'], help: 'Recorded for Hyper-V parity; moves authenticate with per-move tickets either way' },
  UseAnyNetworkForMigration: { type: 'bool', help: '$false: moves use only the subnets Add-VMMigrationNetwork lists (none listed: the API\'s address)' },
} as const;

const meteringParams = {
  ResourceMeteringSaveInterval: { type: 'string', help: 'How often resource metering counts are saved (hh:mm:ss; 00:00:01 to 24:00:00, default 00:00:10): what a daemon crash can lose' },
} as const;

const SETTING_GROUPS = [
  { path: '/host/mac-pool', keys: Object.keys(macPoolParams) },
  { path: '/host/migration', keys: Object.keys(migrationParams) },
  { path: '/host/metering', keys: Object.keys(meteringParams) },
];

export const setVmHost = defineCmdlet({
  name: 'Set-VMHost',
  synopsis: 'Change host settings: the dynamic MAC address pool, live migration, the resource metering save interval',
  params: { ...macPoolParams, ...migrationParams, ...meteringParams },
  view: getVmHost.view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const given: Record<string, unknown> = { ...args };
    const groups = SETTING_GROUPS
      .map((g) => ({ path: g.path, body: Object.fromEntries(g.keys.filter((k) => given[k] !== undefined).map((k) => [k, given[k]])) }))
      .filter((g) => Object.keys(g.body).length > 0);
    if (groups.length === 0) {
      throw new VmhostError('CLI_MISSING_PARAMETER', `Set-VMHost: give a setting to change (${SETTING_GROUPS.flatMap((g) => g.keys).map((k) => `-${k}`).join(', ')})`, { param: 'MacAddressMinimum' });
    }
    if (!ctx.shouldProcess(ctx.computerName.join(', '))) return undefined;
    let host: Record<string, unknown> = {};
    for (const g of groups) host = await api.call<Record<string, unknown>>('PATCH', g.path, g.body);
    return args.PassThru ? host : undefined;
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
