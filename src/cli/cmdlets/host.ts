// Host-level cmdlets: Get-VMHost, Get-VMEvent (the host's event log), Get-Job.
import type { HostEvent, Job } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor, selectVms } from './vm-select.ts';

export const getVmHost = defineCmdlet({
  name: 'Get-VMHost',
  synopsis: 'Show the host: processors, memory, accelerator, VM counts',
  params: {},
  view: {
    layout: 'list',
    columns: ['ComputerName', 'LogicalProcessorCount', 'MemoryCapacity', 'FreeMemory', 'Accelerator', 'VirtualMachineCount', 'RunningVirtualMachineCount', 'QemuVersion', 'Version', 'VirtualMachinePath']
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
