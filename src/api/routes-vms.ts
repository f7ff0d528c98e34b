// VM routes. Each one parses its request (validated by schemas.ts) into one Host call.
// Lifecycle actions are jobs: ?wait=true (default) answers when the job ends, with the VM;
// ?wait=false answers 202 with the job at once (the CLI's -AsJob).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Host, Job, VmView } from '../host/index.ts';
import {
  ActionQuery, ConsoleQuery, DebugBody, IntegrationServiceBody, InvokeBody, InvokeResult, NewVmBody, RemoveQuery, SetBiosBody, SetFirmwareBody,
  SetVmBody, StopBody, VmRef,
} from './schemas.ts';

type VmParams = { Params: { vm: string } };
type ActionReq = VmParams & { Querystring: { wait?: boolean } };

/** A job's answer: at once (202, the job) with ?wait=false, else the job and the VM once it ends. */
export async function answerJob(reply: FastifyReply, wait: boolean | undefined, run: { job: Job; result: Promise<VmView> }): Promise<unknown> {
  if (wait === false) return reply.code(202).send(run.job);
  const vm = await run.result;
  return { Job: run.job, VM: vm };
}

export function registerVmRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['vms'];

  app.get('/api/v1/vms', { schema: { summary: 'Get-VM (all)', tags } }, async () => host.list());

  app.post<{ Body: NewVmBody }>('/api/v1/vms', { schema: { summary: 'New-VM', tags, body: NewVmBody } }, async (req, reply) => {
    return reply.code(201).send(await host.create(req.body));
  });

  app.get<VmParams>('/api/v1/vms/:vm', { schema: { summary: 'Get-VM', tags, params: VmRef } }, async (req) => host.get(req.params.vm));

  app.patch<VmParams & { Body: SetVmBody }>('/api/v1/vms/:vm', { schema: { summary: 'Set-VM', tags, params: VmRef, body: SetVmBody } },
    async (req) => host.set(req.params.vm, req.body));

  app.delete<VmParams & { Querystring: { force?: boolean } }>('/api/v1/vms/:vm', { schema: { summary: 'Remove-VM', tags, params: VmRef, querystring: RemoveQuery } },
    async (req, reply) => {
      await host.remove(req.params.vm, req.query.force ?? false);
      return reply.code(204).send();
    });

  const simple = {
    start: { summary: 'Start-VM', run: (vm: string) => host.start(vm) },
    restart: { summary: 'Restart-VM', run: (vm: string) => host.restart(vm) },
    suspend: { summary: 'Suspend-VM', run: (vm: string) => host.suspend(vm) },
    resume: { summary: 'Resume-VM', run: (vm: string) => host.resume(vm) },
    save: { summary: 'Save-VM', run: (vm: string) => host.save(vm) },
  } as const;
  for (const [verb, def] of Object.entries(simple)) {
    app.post<ActionReq>(`/api/v1/vms/:vm/${verb}`, { schema: { summary: def.summary, tags, params: VmRef, querystring: ActionQuery } },
      async (req, reply) => answerJob(reply, req.query.wait, def.run(req.params.vm)));
  }

  app.post<ActionReq & { Body: StopBody }>('/api/v1/vms/:vm/stop',
    { schema: { summary: 'Stop-VM (graceful; TurnOff: power off; Save: save state)', tags, params: VmRef, querystring: ActionQuery, body: StopBody } },
    async (req, reply) => answerJob(reply, req.query.wait, host.stop(req.params.vm, req.body ?? {})));

  app.delete<VmParams>('/api/v1/vms/:vm/saved-state', { schema: { summary: 'Remove-VMSavedState', tags, params: VmRef } },
    async (req) => host.removeSavedState(req.params.vm));

  app.post<VmParams & { Body: InvokeBody }>('/api/v1/vms/:vm/invoke',
    { schema: { summary: 'Invoke-Command -VMName: run a shell command in the guest through the agent', tags, params: VmRef, body: InvokeBody, response: { 200: InvokeResult } } },
    async (req) => {
      const r = await host.invoke(req.params.vm, req.body.ScriptBlock, (req.body.TimeoutSeconds ?? 60) * 1000);
      return { StdOut: r.stdout.toString('base64'), StdErr: r.stderr.toString('base64'), ExitCode: r.exitCode };
    });

  app.get<VmParams>('/api/v1/vms/:vm/firmware', { schema: { summary: 'Get-VMFirmware (generation 2)', tags, params: VmRef } },
    async (req) => host.firmware.firmware(req.params.vm));

  app.patch<VmParams & { Body: SetFirmwareBody }>('/api/v1/vms/:vm/firmware',
    { schema: { summary: 'Set-VMFirmware: secure boot (VM off), boot order (from the next boot)', tags, params: VmRef, body: SetFirmwareBody } },
    async (req) => host.firmware.setFirmware(req.params.vm, req.body));

  app.get<VmParams>('/api/v1/vms/:vm/bios', { schema: { summary: 'Get-VMBios (generation 1)', tags, params: VmRef } },
    async (req) => host.firmware.bios(req.params.vm));

  app.patch<VmParams & { Body: SetBiosBody }>('/api/v1/vms/:vm/bios',
    { schema: { summary: 'Set-VMBios: startup order, NumLock (from the next boot)', tags, params: VmRef, body: SetBiosBody } },
    async (req) => host.firmware.setBios(req.params.vm, req.body));

  app.post<VmParams & { Body: DebugBody }>('/api/v1/vms/:vm/debug',
    { schema: { summary: 'Debug-VM -InjectNonMaskableInterrupt', tags, params: VmRef, body: DebugBody } },
    async (req, reply) => {
      await host.injectNmi(req.params.vm);
      return reply.code(204).send();
    });

  app.get<VmParams>('/api/v1/vms/:vm/integration-services', { schema: { summary: 'Get-VMIntegrationService', tags, params: VmRef } },
    async (req) => host.integrationServices(req.params.vm));

  app.put<VmParams & { Body: IntegrationServiceBody }>('/api/v1/vms/:vm/integration-services',
    { schema: { summary: 'Enable-/Disable-VMIntegrationService', tags, params: VmRef, body: IntegrationServiceBody } },
    async (req) => host.setIntegrationService(req.params.vm, req.body.Name, req.body.Enabled));

  app.get<VmParams & { Querystring: { TailBytes?: number } }>('/api/v1/vms/:vm/console',
    { schema: { summary: 'Serial console log (Get-VMConsole)', tags, params: VmRef, querystring: ConsoleQuery } },
    async (req, reply) => reply.type('text/plain; charset=utf-8').send(await host.serialLog(req.params.vm, req.query.TailBytes ?? 65536)));
}
