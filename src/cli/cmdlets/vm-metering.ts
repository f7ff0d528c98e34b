// Resource metering cmdlets: Enable-/Disable-/Reset-VMResourceMetering (of a VM, or with
// -ResourcePoolName of a resource pool) and Measure-VM, over the daemon's /vms/:vm/metering and
// /resource-pools/:name/metering routes. Measure-VM adds the disks' live counters (HardDiskMetrics)
// to the report, as Hyper-V's report carries its disks' metrics.
import { defineCmdlet } from '../cmdlet.ts';
import { METERED_TYPE_VALUES, typesQuery } from './pool-member.ts';
import { clientFor, oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: ['Name'] } as const;
const mb = (v: unknown) => Math.round(Number(v) / 1048576);

/** Enable-, Disable- and Reset-VMResourceMetering differ only in the request they make. */
function meteringSwitch(name: string, synopsis: string, method: 'PUT' | 'DELETE' | 'POST', path: string) {
  return defineCmdlet({
    name, synopsis,
    params: {
      VMName: { ...vmName, sets: ['VMName'], mandatory: ['VMName'] },
      ResourcePoolName: { type: 'string', sets: ['ResourcePool'], mandatory: ['ResourcePool'], help: 'A resource pool instead of a VM' },
      ResourcePoolType: { type: 'enum', array: true, values: METERED_TYPE_VALUES, sets: ['ResourcePool'], help: 'Which of the pools of that name (every metered one when not given)' },
    },
    positional: ['VMName'],
    defaultSet: 'VMName',
    async run(args, ctx) {
      if (ctx.parameterSet === 'ResourcePool') {
        await clientFor(ctx).call(method, `/resource-pools/${encodeURIComponent(args.ResourcePoolName!)}/metering${path}${typesQuery(args.ResourcePoolType)}`);
      } else {
        await perVm(ctx, args.VMName, (api, vm) => api.call(method, `/vms/${vm.Id}/metering${path}`));
      }
      return undefined;
    },
  });
}

export const enableVmResourceMetering = meteringSwitch('Enable-VMResourceMetering', 'Start counting a VM\'s or resource pool\'s CPU, memory, disk and network use (Measure-VM, Measure-VMResourcePool read it)', 'PUT', '');
export const disableVmResourceMetering = meteringSwitch('Disable-VMResourceMetering', 'Stop counting a VM\'s or resource pool\'s resource use; what was counted is dropped', 'DELETE', '');
export const resetVmResourceMetering = meteringSwitch('Reset-VMResourceMetering', 'Count a VM\'s or resource pool\'s resource use from zero again', 'POST', '/reset');

export const measureVm = defineCmdlet({
  name: 'Measure-VM',
  synopsis: 'Resource use of a VM since metering was enabled or reset: average CPU (MHz), memory, disk allocation, traffic by remote range, disk IOPS/latency/data',
  params: { VMName: vmName },
  positional: ['VMName'],
  view: {
    columns: [
      { label: 'VMName', value: 'VMName' },
      { label: 'AvgCPU(MHz)', value: 'AverageProcessorUsage' },
      { label: 'AvgRAM(M)', value: 'AverageMemoryUsage' },
      { label: 'MaxRAM(M)', value: 'MaximumMemoryUsage' },
      { label: 'MinRAM(M)', value: 'MinimumMemoryUsage' },
      { label: 'TotalDisk(M)', value: 'TotalDiskAllocation' },
      { label: 'NetworkInbound(M)', value: (r) => mb(r.NetworkInboundBytes) },
      { label: 'NetworkOutbound(M)', value: (r) => mb(r.NetworkOutboundBytes) },
    ],
  },
  async run(args, ctx) {
    const out = await perVm(ctx, args.VMName, async (api, vm) => ({
      ...(await api.call<Record<string, unknown>>('GET', `/vms/${vm.Id}/metering`)),
      HardDiskMetrics: await api.call('GET', `/vms/${vm.Id}/disk-metrics`),
    }));
    return oneOrMany(out, args.VMName);
  },
});
