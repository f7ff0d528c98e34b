// A VM adapter's multi-tenant settings: Get-/Set-VmNetworkAdapterIsolation and Add-/Get-/Set-/
// Remove-VmNetworkAdapterRoutingDomainMapping. Applied by the daemon (hnv/adapter-isolation.ts):
// a virtual subnet mode sets the adapter's -VirtualSubnetId, Vlan mode its access VLAN, and the
// mappings bound which subnet it may be in. VM adapters only.
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import type { ApiClient } from '../client.ts';
import { clientFor, selectVms, vmNameMandatory } from './vm-select.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;
const adapterName = { type: 'string', help: 'The adapter (all of the VM\'s without it)' } as const;
const cols = (...c: string[]) => ({ columns: c.map((x) => ({ label: x, value: x })) });
const isolationView = cols('VMName', 'ParentAdapter', 'IsolationMode', 'DefaultIsolationID', 'AllowUntaggedTraffic', 'MultiTenantStack');
const mappingView = cols('VMName', 'ParentAdapter', 'RoutingDomainID', 'RoutingDomainName', 'IsolationID', 'IsolationName');
const isolationIds = { type: 'int', array: true, min: 4096, max: 16_777_214, help: 'Virtual subnet IDs of the routing domain' } as const;
const isolationNames = { type: 'string', array: true, help: 'Names of the virtual subnets, in -IsolationID\'s order' } as const;

/** `route` (isolation, routing-domains) of each selected VM's adapters, results concatenated. */
async function eachVm(api: ApiClient, names: string[], adapter: string | undefined, route: string, fn: (path: string) => Promise<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  const query = adapter === undefined ? '' : `?${new URLSearchParams({ Name: adapter })}`;
  for (const vm of await selectVms(api, names)) {
    const r = await fn(`/vms/${vm.Id}/network-adapters/${route}${query}`);
    if (Array.isArray(r)) out.push(...(r as unknown[]));
  }
  return out;
}

/** -RoutingDomainID or -RoutingDomainName: the mapping to change (one of them). */
function routingDomain(args: { RoutingDomainID?: string; RoutingDomainName?: string }): string {
  const by = args.RoutingDomainID ?? args.RoutingDomainName;
  if (by === undefined) throw new VmhostError('CLI_MISSING_PARAMETER', 'give -RoutingDomainID or -RoutingDomainName', { param: 'RoutingDomainID' });
  return by;
}

export const getVmNetworkAdapterIsolation = defineCmdlet({
  name: 'Get-VMNetworkAdapterIsolation', synopsis: 'Show network adapters\' isolation mode and default isolation ID',
  params: { VMName: vmName, VMNetworkAdapterName: adapterName }, positional: ['VMName'], view: isolationView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    return eachVm(api, args.VMName, args.VMNetworkAdapterName, 'isolation', (p) => api.call('GET', p));
  },
});

export const setVmNetworkAdapterIsolation = defineCmdlet({
  name: 'Set-VMNetworkAdapterIsolation', synopsis: 'Set the isolation mode and default isolation ID (the adapter\'s virtual subnet or access VLAN)',
  params: {
    VMName: vmName, VMNetworkAdapterName: adapterName,
    IsolationMode: { type: 'enum', values: ['None', 'NativeVirtualSubnet', 'ExternalVirtualSubnet', 'Vlan'] },
    DefaultIsolationID: { type: 'int', min: 0, max: 16_777_214, help: 'A VLAN ID in Vlan mode, a VSID in the virtual subnet modes' },
    AllowUntaggedTraffic: { type: 'bool' }, MultiTenantStack: { type: 'enum', values: ['On', 'Off'] },
  },
  positional: ['VMName'], view: isolationView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const body = { IsolationMode: args.IsolationMode, DefaultIsolationID: args.DefaultIsolationID, AllowUntaggedTraffic: args.AllowUntaggedTraffic, MultiTenantStack: args.MultiTenantStack };
    const out = await eachVm(api, args.VMName, args.VMNetworkAdapterName, 'isolation', (p) => api.call('PATCH', p, body));
    return args.PassThru ? out : undefined;
  },
});

export const getVmNetworkAdapterRoutingDomainMapping = defineCmdlet({
  name: 'Get-VMNetworkAdapterRoutingDomainMapping', synopsis: 'List the routing domains of network adapters and their virtual subnets',
  params: { VMName: vmName, VMNetworkAdapterName: adapterName }, positional: ['VMName'], view: mappingView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    return eachVm(api, args.VMName, args.VMNetworkAdapterName, 'routing-domains', (p) => api.call('GET', p));
  },
});

export const addVmNetworkAdapterRoutingDomainMapping = defineCmdlet({
  name: 'Add-VMNetworkAdapterRoutingDomainMapping', synopsis: 'Put network adapters in a routing domain with its virtual subnets',
  params: {
    VMName: vmName, VMNetworkAdapterName: adapterName, RoutingDomainID: { type: 'string', mandatory: true, help: 'A GUID' },
    RoutingDomainName: { type: 'string', mandatory: true }, IsolationID: isolationIds, IsolationName: isolationNames,
  },
  positional: ['VMName'], view: mappingView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const body = { RoutingDomainID: args.RoutingDomainID, RoutingDomainName: args.RoutingDomainName, IsolationID: args.IsolationID, IsolationName: args.IsolationName };
    const out = await eachVm(api, args.VMName, args.VMNetworkAdapterName, 'routing-domains', (p) => api.call('POST', p, body));
    return args.PassThru ? out : undefined;
  },
});

export const setVmNetworkAdapterRoutingDomainMapping = defineCmdlet({
  name: 'Set-VMNetworkAdapterRoutingDomainMapping', synopsis: 'Rename a routing domain of network adapters or replace its virtual subnets',
  params: {
    VMName: vmName, VMNetworkAdapterName: adapterName, RoutingDomainID: { type: 'string' }, RoutingDomainName: { type: 'string' },
    NewRoutingDomainName: { type: 'string' }, IsolationID: isolationIds, IsolationName: isolationNames,
  },
  positional: ['VMName'], view: mappingView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const body = { RoutingDomain: routingDomain(args), NewRoutingDomainName: args.NewRoutingDomainName, IsolationID: args.IsolationID, IsolationName: args.IsolationName };
    const out = await eachVm(api, args.VMName, args.VMNetworkAdapterName, 'routing-domains', (p) => api.call('PATCH', p, body));
    return args.PassThru ? out : undefined;
  },
});

export const removeVmNetworkAdapterRoutingDomainMapping = defineCmdlet({
  name: 'Remove-VMNetworkAdapterRoutingDomainMapping', synopsis: 'Take network adapters out of a routing domain',
  params: { VMName: vmName, VMNetworkAdapterName: adapterName, RoutingDomainID: { type: 'string' }, RoutingDomainName: { type: 'string' } },
  positional: ['VMName'], supportsShouldProcess: true,
  async run(args, ctx) {
    const by = routingDomain(args);
    if (!ctx.shouldProcess(by)) return undefined;
    const api = clientFor(ctx);
    for (const vm of await selectVms(api, args.VMName)) {
      const q = new URLSearchParams({ RoutingDomain: by });
      if (args.VMNetworkAdapterName !== undefined) q.set('Name', args.VMNetworkAdapterName);
      await api.call('DELETE', `/vms/${vm.Id}/network-adapters/routing-domains?${q}`);
    }
    return undefined;
  },
});
