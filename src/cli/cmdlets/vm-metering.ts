// Resource metering cmdlets: Enable-/Disable-/Reset-VMResourceMetering and Measure-VM, over the
// daemon's /vms/:vm/metering routes. Measure-VM adds the disks' live counters (HardDiskMetrics)
// to the report, as Hyper-V's report carries its disks' metrics.
import { defineCmdlet } from '../cmdlet.ts';
import { oneOrMany, perVm, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: ['Name'] } as const;
const mb = (v: unknown) => Math.round(Number(v) / 1048576);

export const enableVmResourceMetering = defineCmdlet({
  name: 'Enable-VMResourceMetering', synopsis: 'Start counting a VM\'s CPU, memory, disk and network use (Measure-VM reads it)',
  params: { VMName: vmName }, positional: ['VMName'],
  async run(args, ctx) {
    await perVm(ctx, args.VMName, (api, vm) => api.call('PUT', `/vms/${vm.Id}/metering`));
    return undefined;
  },
});

export const disableVmResourceMetering = defineCmdlet({
  name: 'Disable-VMResourceMetering', synopsis: 'Stop counting a VM\'s resource use; what was counted is dropped',
  params: { VMName: vmName }, positional: ['VMName'],
  async run(args, ctx) {
    await perVm(ctx, args.VMName, (api, vm) => api.call('DELETE', `/vms/${vm.Id}/metering`));
    return undefined;
  },
});

export const resetVmResourceMetering = defineCmdlet({
  name: 'Reset-VMResourceMetering', synopsis: 'Count a VM\'s resource use from zero again',
  params: { VMName: vmName }, positional: ['VMName'],
  async run(args, ctx) {
    await perVm(ctx, args.VMName, (api, vm) => api.call('POST', `/vms/${vm.Id}/metering/reset`));
    return undefined;
  },
});

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
