// Resource metering routes (Enable-/Disable-/Reset-VMResourceMetering, Measure-VM) under
// /api/v1/vms/:vm/metering, Set-VMHost -ResourceMeteringSaveInterval, the graphs' history, and the Prometheus scrape endpoint /metrics (metrics.ts).
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Host } from '../host/index.ts';
import { VmRef } from './schemas.ts';
import { DaemonMetrics } from './metrics.ts';

type VmParams = { Params: { vm: string } };

const MeteringSettingsBody = Type.Object({
  ResourceMeteringSaveInterval: Type.String({ minLength: 1, maxLength: 20, description: 'How often metering counts are saved: a TimeSpan (hh:mm:ss, d.hh:mm:ss) or seconds, 00:00:01 to 24:00:00' }),
}, { additionalProperties: false });
type MeteringSettingsBody = Static<typeof MeteringSettingsBody>;

export function registerMeteringRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['metering'];
  const status = (vm: string) => {
    const v = host.get(vm);
    return { VMName: v.Name, VMId: v.Id, ResourceMeteringEnabled: host.metering.isEnabled(v.Id) };
  };

  app.patch<{ Body: MeteringSettingsBody }>('/api/v1/host/metering',
    { schema: { summary: 'Set-VMHost -ResourceMeteringSaveInterval (answers Get-VMHost)', tags, body: MeteringSettingsBody } },
    async (req) => {
      await host.metering.setSaveInterval(req.body.ResourceMeteringSaveInterval);
      return host.hostView();
    });

  app.get<VmParams>('/api/v1/vms/:vm/metering',
    { schema: { summary: 'Measure-VM: resource use since the last reset (409 METERING_NOT_ENABLED when metering is off)', tags, params: VmRef } },
    async (req) => host.metering.measure(req.params.vm));

  app.put<VmParams>('/api/v1/vms/:vm/metering', { schema: { summary: 'Enable-VMResourceMetering (already on: unchanged)', tags, params: VmRef } },
    async (req) => {
      await host.metering.enable(req.params.vm);
      return status(req.params.vm);
    });

  app.delete<VmParams>('/api/v1/vms/:vm/metering', { schema: { summary: 'Disable-VMResourceMetering (what was counted is dropped)', tags, params: VmRef } },
    async (req) => {
      await host.metering.disable(req.params.vm);
      return status(req.params.vm);
    });

  app.post<VmParams>('/api/v1/vms/:vm/metering/reset', { schema: { summary: 'Reset-VMResourceMetering: counting starts again from zero', tags, params: VmRef } },
    async (req) => {
      await host.metering.reset(req.params.vm);
      return status(req.params.vm);
    });

  app.get<VmParams>('/api/v1/vms/:vm/history',
    { schema: { summary: 'The web console\'s graphs: the VM\'s last hour in 10 s steps (CPU %, memory assigned and demand, disk IOPS and bytes/s, network bytes/s)', tags, params: VmRef } },
    async (req) => host.metering.history.vm(host.get(req.params.vm).Id));

  app.get('/api/v1/host/history',
    { schema: { summary: 'The web console\'s host graphs: the last hour of the VMs\' totals in 10 s steps', tags } },
    async () => host.metering.history.hostView());

  let metrics: DaemonMetrics | undefined; // made at the first scrape: the registry exists only on a daemon someone scrapes
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format 0.0.4): VMs, disks, NICs, switches, jobs, the daemon process', tags } },
    async (_req, reply) => {
      metrics ??= new DaemonMetrics(host);
      return reply.type(metrics.contentType).send(await metrics.scrape());
    });
}
