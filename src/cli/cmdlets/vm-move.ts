// Move-VM (shared storage): the CLI asks the destination for a ticket with the credential it
// holds for that host (Set-VMHostCredential), then asks the source to move the VM on that
// ticket. So the destination's token stays with the caller and the source's never leaves it.
// -IncludeStorage (shared-nothing): the disks are copied live to -DestinationStoragePath or the
// -Vhds destinations first. Those paths are the destination host's: they must be absolute, as
// this machine's working directory means nothing there.
import { isAbsolute } from 'node:path';
import { VmhostError } from '../../common/index.ts';
import type { IssuedTicket, VmView } from '../../host/index.ts';
import { ApiClient, resolveEndpoint } from '../client.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { vmView } from '../views.ts';
import { parseVhdPair } from './vhds-param.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

interface StorageArgs {
  IncludeStorage?: boolean; DestinationStoragePath?: string; Vhds?: string[]; VirtualMachinePath?: string; SnapshotFilePath?: string; RetainVhdCopiesOnSource?: boolean;
}

/** The storage half of the request, checked before any host is asked: Hyper-V's parameter rules. */
function storageParams(a: StorageArgs): Record<string, unknown> {
  const bad = (param: string, why: string) => new VmhostError('CLI_INVALID_PARAMETER', `Move-VM: parameter -${param}: ${why}`, { param });
  const vhds = a.Vhds?.map((t) => parseVhdPair(t, 'Move-VM'));
  for (const [param, p] of [['DestinationStoragePath', a.DestinationStoragePath], ['VirtualMachinePath', a.VirtualMachinePath], ['SnapshotFilePath', a.SnapshotFilePath],
    ...(vhds ?? []).flatMap((v) => [['Vhds', v.SourceFilePath], ['Vhds', v.DestinationFilePath]])] as const) {
    if (p !== undefined && !isAbsolute(p)) throw bad(param, `'${p}' must be an absolute path (it is a path on the destination host)`);
  }
  if (a.IncludeStorage && a.DestinationStoragePath === undefined && vhds === undefined) throw bad('DestinationStoragePath', '-IncludeStorage needs -DestinationStoragePath (or -Vhds for every disk)');
  if (!a.IncludeStorage && a.DestinationStoragePath !== undefined) throw bad('DestinationStoragePath', 'only with -IncludeStorage');
  if (!a.IncludeStorage && a.RetainVhdCopiesOnSource) throw bad('RetainVhdCopiesOnSource', 'only with -IncludeStorage');
  return {
    ...(a.IncludeStorage || vhds ? { IncludeStorage: true } : {}),
    ...(a.DestinationStoragePath !== undefined ? { DestinationStoragePath: a.DestinationStoragePath } : {}),
    ...(vhds ? { Vhds: vhds } : {}),
    ...(a.VirtualMachinePath !== undefined ? { VirtualMachinePath: a.VirtualMachinePath } : {}),
    ...(a.SnapshotFilePath !== undefined ? { SnapshotFilePath: a.SnapshotFilePath } : {}),
    ...(a.RetainVhdCopiesOnSource ? { RetainVhdCopiesOnSource: true } : {}),
  };
}

export const moveVm = defineCmdlet({
  name: 'Move-VM',
  synopsis: 'Live-migrate a running VM to another host, its disks shared by both hosts or (-IncludeStorage) copied live first; it keeps running throughout',
  params: {
    Name: vmNameMandatory,
    DestinationHost: { type: 'string', mandatory: true, help: 'The destination host, HOST:PORT (its credential: Set-VMHostCredential)' },
    IncludeStorage: { type: 'switch', help: 'Shared-nothing: copy the disks to the destination while the VM runs, then move the memory' },
    DestinationStoragePath: { type: 'string', help: 'With -IncludeStorage: the destination folder (absolute) for every disk -Vhds does not name' },
    Vhds: { type: 'string', array: true, help: 'Per-disk destinations: @{SourceFilePath=...;DestinationFilePath=...} (absolute paths)' },
    VirtualMachinePath: { type: 'string', help: 'Not supported: the configuration goes to the destination host\'s data folder' },
    SnapshotFilePath: { type: 'string', help: 'The VM\'s checkpoint folder on the destination (absolute)' },
    RetainVhdCopiesOnSource: { type: 'switch', help: 'With -IncludeStorage: keep this host\'s disk files after the move' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting (Stop-Job cancels it; the VM keeps running here)' },
  },
  positional: ['Name', 'DestinationHost'],
  view: vmView,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!/^[^\s/]+:\d{1,5}$/.test(args.DestinationHost)) {
      throw new VmhostError('CLI_INVALID_PARAMETER', `Move-VM: parameter -DestinationHost: '${args.DestinationHost}' is not HOST:PORT`, { param: 'DestinationHost' });
    }
    const storage = storageParams(args);
    const destination = new ApiClient(resolveEndpoint(args.DestinationHost, ctx.warn));
    const out = await perVm(ctx, args.Name, async (api, vm) => {
      if (!ctx.shouldProcess(vm.Name)) return undefined;
      const ticket = await destination.call<IssuedTicket>('POST', '/migrations/tickets', { VMId: vm.Id });
      return runJob<VmView>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/move`, { DestinationHost: args.DestinationHost, Ticket: ticket.Ticket, ...storage });
    });
    return oneOrMany(out.filter((x) => x !== undefined), args.Name);
  },
});
