// Resource metering routes (Enable-/Disable-/Reset-VMResourceMetering, Measure-VM) under
// /api/v1/vms/:vm/metering, and the Prometheus scrape endpoint /metrics (metrics.ts).
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { VmRef } from './schemas.ts';
import { DaemonMetrics } from './metrics.ts';

type VmParams = { Params: { vm: string } };

export function registerMeteringRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['metering'];
  const status = (vm: string) => {
    const v = host.get(vm);
    return { VMName: v.Name, VMId: v.Id, ResourceMeteringEnabled: host.metering.isEnabled(v.Id) };
  };

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

  let metrics: DaemonMetrics | undefined; // made at the first scrape: the registry exists only on a daemon someone scrapes
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format 0.0.4): VMs, disks, NICs, switches, jobs, the daemon process', tags } },
    async (_req, reply) => {
      metrics ??= new DaemonMetrics(host);
      return reply.type(metrics.contentType).send(await metrics.scrape());
    });
}
