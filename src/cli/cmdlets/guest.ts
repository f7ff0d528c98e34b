// Reaching into the guest through the integration services: Invoke-Command -VMName,
// Copy-VMFile, Get-/Enable-/Disable-VMIntegrationService, and the serial console log.
import { resolve } from 'node:path';
import type { CopyFileResult, IntegrationServiceView, Job } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { runJob } from '../job-wait.ts';
import { clientFor, selectVms, vmNameMandatory } from './vm-select.ts';
import { matchWildcard } from '../wildcard.ts';

export const invokeCommand = defineCmdlet({
  name: 'Invoke-Command',
  synopsis: 'Run a shell command inside a running guest through its agent; prints its output and exits with its exit code',
  params: {
    VMName: { type: 'string', mandatory: true, help: 'The VM (one)' },
    ScriptBlock: { type: 'string', mandatory: true, help: 'Shell command line, run by /bin/sh in the guest' },
    TimeoutSeconds: { type: 'int', min: 1, max: 3600, help: 'Give up after this long (default 60)' },
  },
  positional: ['VMName', 'ScriptBlock'],
  async run(args, ctx) {
    const api = clientFor(ctx);
    const [vm] = await selectVms(api, [args.VMName]);
    const r = await api.call<{ StdOut: string; StdErr: string; ExitCode: number }>('POST', `/vms/${vm!.Id}/invoke`, {
      ScriptBlock: args.ScriptBlock, TimeoutSeconds: args.TimeoutSeconds,
    });
    if (args.Json) return r;
    ctx.stdout.write(Buffer.from(r.StdOut, 'base64'));
    ctx.stderr.write(Buffer.from(r.StdErr, 'base64'));
    ctx.setExitCode(r.ExitCode);
    return undefined;
  },
});

export const copyVmFile = defineCmdlet({
  name: 'Copy-VMFile',
  synopsis: 'Copy a file on the daemon\'s host into a running guest (needs the Guest Service Interface integration service)',
  params: {
    Name: { type: 'string', array: true, mandatory: true, aliases: ['VMName'], help: 'The VM(s); wildcards allowed' },
    SourcePath: { type: 'string', mandatory: true, help: 'File on the daemon\'s host (a relative path is taken from the current directory)' },
    DestinationPath: { type: 'string', mandatory: true, help: 'Absolute path of the file in the guest' },
    FileSource: { type: 'enum', values: ['Host'], mandatory: true, help: 'Host: the only direction, as in Hyper-V 2012 R2' },
    CreateFullPath: { type: 'switch', help: 'Create missing directories of DestinationPath in the guest' },
    Force: { type: 'switch', help: 'Replace an existing file in the guest' },
    AsJob: { type: 'switch', help: 'Return the job at once instead of waiting' },
  },
  positional: ['Name', 'SourcePath', 'DestinationPath'],
  supportsShouldProcess: true,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out: (Job | CopyFileResult)[] = [];
    for (const vm of await selectVms(api, args.Name)) {
      if (!ctx.shouldProcess(`${vm.Name}: ${args.DestinationPath}`)) continue;
      const body = {
        SourcePath: resolve(args.SourcePath), DestinationPath: args.DestinationPath, FileSource: args.FileSource,
        CreateFullPath: args.CreateFullPath, Force: args.Force,
      };
      const r = await runJob<CopyFileResult>(api, ctx, args.AsJob, 'POST', `/vms/${vm.Id}/copy-file`, body);
      if (args.AsJob) { out.push(r as Job); continue; }
      const done = r as CopyFileResult;
      ctx.verbose(`${vm.Name}: copied ${done.Size} bytes in ${done.ElapsedMilliseconds} ms`);
      out.push(done);
    }
    return args.AsJob || args.PassThru ? out : undefined;
  },
});

const serviceView = {
  columns: [
    { label: 'VMName', value: 'VMName' }, { label: 'Name', value: 'Name' },
    { label: 'Enabled', value: 'Enabled' }, { label: 'PrimaryStatusDescription', value: 'PrimaryStatusDescription' },
  ],
};

export const getVmIntegrationService = defineCmdlet({
  name: 'Get-VMIntegrationService',
  synopsis: 'Show the integration services offered to a VM and their state',
  params: { VMName: { ...vmNameMandatory, aliases: [] }, Name: { type: 'string', wildcards: true, help: 'Service name filter' } },
  positional: ['VMName', 'Name'],
  view: serviceView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out: IntegrationServiceView[] = [];
    for (const vm of await selectVms(api, args.VMName)) {
      const list = await api.call<IntegrationServiceView[]>('GET', `/vms/${vm.Id}/integration-services`);
      out.push(...list.filter((s) => args.Name === undefined || matchWildcard(args.Name, s.Name)));
    }
    return out;
  },
});

function toggle(name: 'Enable-VMIntegrationService' | 'Disable-VMIntegrationService', enabled: boolean) {
  return defineCmdlet({
    name,
    synopsis: `${enabled ? 'Offer' : 'Withdraw'} an integration service to a VM`,
    params: { VMName: { ...vmNameMandatory, aliases: [] }, Name: { type: 'string', array: true, mandatory: true } },
    positional: ['Name', 'VMName'],
    view: serviceView,
    async run(args, ctx) {
      const api = clientFor(ctx);
      let last: IntegrationServiceView[] = [];
      for (const vm of await selectVms(api, args.VMName)) {
        for (const service of args.Name) last = await api.call('PUT', `/vms/${vm.Id}/integration-services`, { Name: service, Enabled: enabled });
      }
      return args.PassThru ? last : undefined;
    },
  });
}

export const enableVmIntegrationService = toggle('Enable-VMIntegrationService', true);
export const disableVmIntegrationService = toggle('Disable-VMIntegrationService', false);

export const getVmConsole = defineCmdlet({
  name: 'Get-VMConsole',
  synopsis: 'Print the end of a VM\'s serial console log (vmhost extension; Hyper-V has VMConnect)',
  params: { VMName: { type: 'string', mandatory: true, aliases: ['Name'] }, TailBytes: { type: 'size', help: 'How much of the log (default 64KB)' } },
  positional: ['VMName'],
  async run(args, ctx) {
    const api = clientFor(ctx);
    const [vm] = await selectVms(api, [args.VMName]);
    const text = await api.call<string>('GET', `/vms/${vm!.Id}/console${args.TailBytes ? `?TailBytes=${args.TailBytes}` : ''}`);
    ctx.stdout.write(text);
    return undefined;
  },
});


