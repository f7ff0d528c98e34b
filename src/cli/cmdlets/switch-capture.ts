// Start-/Stop-VMSwitchCapture: packet capture to a pcap file, of a whole switch or of one VM
// adapter's port. A vmhost extension (Hyper-V 2012 R2 has none), named in Hyper-V's style. The
// daemon writes the file; a relative -Path is made absolute here, as Add-VMHardDiskDrive does.
import { resolve } from 'node:path';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const target = {
  SwitchName: { type: 'string', mandatory: true, aliases: ['VMSwitchName'] },
  VMName: { type: 'string', help: 'capture this VM\'s adapter on the switch (default: every frame entering the switch)' },
  VMNetworkAdapterName: { type: 'string', help: 'the adapter, when the VM has several on the switch' },
} as const;
const view = { columns: ['SwitchName', 'Target', 'Path', 'Frames'].map((c) => ({ label: c, value: c })) };

export const startVmSwitchCapture = defineCmdlet({
  name: 'Start-VMSwitchCapture', synopsis: 'Start a pcap capture of a switch or of one VM adapter\'s port (vmhost extension)',
  params: {
    ...target, Path: { type: 'string', mandatory: true }, Force: { type: 'switch' },
    MaxBytes: { type: 'size', help: 'stop the capture when the file would grow beyond this (default 1GB); an event says so' },
  },
  positional: ['SwitchName'], view,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('POST', `/switches/${encodeURIComponent(args.SwitchName)}/capture`, {
      VMName: args.VMName, VMNetworkAdapterName: args.VMNetworkAdapterName, Path: resolve(args.Path), Force: args.Force || undefined, MaxBytes: args.MaxBytes,
    });
    return args.PassThru ? r : undefined;
  },
});

export const stopVmSwitchCapture = defineCmdlet({
  name: 'Stop-VMSwitchCapture', synopsis: 'Stop a capture started by Start-VMSwitchCapture; shows the file and its frame count',
  params: target, positional: ['SwitchName'], view,
  async run(args, ctx) {
    const q = new URLSearchParams(Object.entries({ VMName: args.VMName, VMNetworkAdapterName: args.VMNetworkAdapterName }).filter((e): e is [string, string] => e[1] !== undefined));
    return clientFor(ctx).call('DELETE', `/switches/${encodeURIComponent(args.SwitchName)}/capture${q.size ? `?${q}` : ''}`);
  },
});
