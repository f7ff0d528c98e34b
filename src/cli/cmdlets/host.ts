// Host-level cmdlets: Get-VMHost, Set-VMHost, Get-VMEvent (the host's event log), Get-Job.
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
      'MacAddressMinimum', 'MacAddressMaximum']
      .map((c) => ({ label: c, value: c })),
  },
  run: async (_args, ctx) => clientFor(ctx).call<Record<string, unknown>>('GET', '/host'),
});

/**
 * Set-VMHost: each group of host settings is one PATCH of its own route (the daemon validates
 * each against its schema), sent only when one of its parameters is given.
 */
export const setVmHost = defineCmdlet({
  name: 'Set-VMHost',
  synopsis: 'Change host settings: the dynamic MAC address pool (-MacAddressMinimum -MacAddressMaximum)',
  params: {
    MacAddressMinimum: { type: 'string', help: 'Lowest dynamic MAC address the host hands out (00-15-5D-38-1F-00, 00155D381F00)' },
    MacAddressMaximum: { type: 'string', help: 'Highest dynamic MAC address, in the same OUI as the minimum' },
  },
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const macPool = { MacAddressMinimum: args.MacAddressMinimum, MacAddressMaximum: args.MacAddressMaximum };
    const groups = [{ path: '/host/mac-pool', body: macPool }].filter((g) => Object.values(g.body).some((v) => v !== undefined));
    if (groups.length === 0) throw new VmhostError('CLI_MISSING_PARAMETER', 'Set-VMHost: give a setting to change (-MacAddressMinimum, -MacAddressMaximum)', { param: 'MacAddressMinimum' });
    if (!ctx.shouldProcess(ctx.computerName.join(', '))) return undefined;
    let host: Record<string, unknown> = {};
    for (const g of groups) host = await api.call<Record<string, unknown>>('PATCH', g.path, g.body);
    return args.PassThru ? host : undefined;
  },
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
