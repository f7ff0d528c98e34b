// Get-NetAdapter: not a Hyper-V cmdlet but the Windows NetAdapter one admins use beside it to
// pick -NetAdapterName for New-VMSwitch. vmhost's adapters are the UDP tunnels the daemon was
// started with (vmhostd --net-adapter), then each NIC team's adapter (New-NetLbfoTeam);
// VMSwitchName says which External switch uses each. Disable-/Enable-NetAdapter close and
// reopen an adapter's socket: the cable pulled and plugged back in.
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

export const getNetAdapter = defineCmdlet({
  name: 'Get-NetAdapter', synopsis: 'List the host\'s network adapters (vmhostd --net-adapter UDP tunnels) and the External switch on each',
  params: { Name: { type: 'string' } }, positional: ['Name'],
  view: { columns: ['Name', 'InterfaceDescription', 'Status', 'LocalEndpoint', 'RemoteEndpoint', 'VMSwitchName'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    const all = await clientFor(ctx).call<Record<string, unknown>[]>('GET', '/net-adapters');
    if (args.Name === undefined) return all;
    const one = all.find((a) => String(a.Name).toLowerCase() === args.Name!.toLowerCase());
    if (!one) {
      throw new VmhostError('NOT_FOUND', `No MSFT_NetAdapter objects found with property 'Name' equal to '${args.Name}' (adapters: ${all.map((a) => String(a.Name)).join(', ') || 'none'})`, { adapter: args.Name });
    }
    return one;
  },
});

const adminState = (enabled: boolean) => defineCmdlet({
  name: enabled ? 'Enable-NetAdapter' : 'Disable-NetAdapter',
  synopsis: enabled ? 'Open a disabled network adapter\'s socket again' : 'Close a network adapter\'s socket (its team member fails over; a switch on it alone is Degraded)',
  params: { Name: { type: 'string', mandatory: true } }, positional: ['Name'],
  async run(args, ctx) { await clientFor(ctx).call('POST', `/net-adapters/${encodeURIComponent(args.Name)}/${enabled ? 'enable' : 'disable'}`); },
});
export const disableNetAdapter = adminState(false);
export const enableNetAdapter = adminState(true);
