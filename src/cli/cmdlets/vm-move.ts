// Move-VM (shared storage): the CLI asks the destination for a ticket with the credential it
// holds for that host (Set-VMHostCredential), then asks the source to move the VM on that
// ticket. So the destination's token stays with the caller and the source's never leaves it.
import { VmhostError } from '../../common/index.ts';
import type { IssuedTicket, VmView } from '../../host/index.ts';
import { ApiClient, resolveEndpoint } from '../client.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

export const moveVm = defineCmdlet({
  name: 'Move-VM',
  synopsis: 'Live-migrate a running VM whose disks both hosts reach (shared storage) to another host; it keeps running throughout',
  params: {
    Name: vmNameMandatory,
    DestinationHost: { type: 'string', mandatory: true, help: 'The destination host, HOST:PORT (its credential: Set-VMHostCredential)' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting (Stop-Job cancels it; the VM keeps running here)' },
  },
  positional: ['Name', 'DestinationHost'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!/^[^\s/]+:\d{1,5}$/.test(args.DestinationHost)) {
      throw new VmhostError('CLI_INVALID_PARAMETER', `Move-VM: parameter -DestinationHost: '${args.DestinationHost}' is not HOST:PORT`, { param: 'DestinationHost' });
    }
    const destination = new ApiClient(resolveEndpoint(args.DestinationHost, ctx.warn));
    const out = await perVm(ctx, args.Name, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      const ticket = await destination.call<IssuedTicket>('POST', '/migrations/tickets', { VMId: vm.Id });
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/move`, { DestinationHost: args.DestinationHost, Ticket: ticket.Ticket });
    });
    return oneOrMany(out.filter((x) => x !== undefined), args.Name);
  },
});
