// The -ManagementOS parameter set of Add-/Get-/Remove-VMNetworkAdapter: the host's own network
// adapters (tap interfaces on Internal switches), on the daemon's /host/network-adapters
// routes. The cmdlets themselves are in vm-network.ts.
import type { ApiClient } from '../client.ts';
import type { View } from '../table.ts';
import { oneOrMany } from './vm-select.ts';
import { query } from '../query.ts';

/** The management OS's adapters: the base path of their routes, as /vms/:vm/network-adapters is a VM's. */
export const HOST_ADAPTERS = '/host/network-adapters';
const PATH = HOST_ADAPTERS;

/** The parameter that selects the set; its name is Hyper-V's. */
export const managementOs = {
  type: 'switch', sets: ['ManagementOS'], mandatory: ['ManagementOS'], help: 'The host\'s own adapters (Linux tap interfaces) instead of a VM\'s',
} as const;

export const hostNicView: View = {
  columns: [
    { label: 'Name', value: 'Name' }, { label: 'SwitchName', value: 'SwitchName' }, { label: 'MacAddress', value: 'MacAddress' },
    { label: 'InterfaceName', value: 'InterfaceName' }, { label: 'Status', value: (r) => (r.Status as string[]).join(',') },
    { label: 'IPAddresses', value: (r) => `{${(r.IPAddresses as string[]).join(', ')}}` },
  ],
};

export async function getHostNics(api: ApiClient, name: string | undefined, switchName: string | undefined): Promise<unknown> {
  const list = await api.call<unknown[]>('GET', `${PATH}${query({ Name: name, SwitchName: switchName })}`);
  return oneOrMany(list, name === undefined ? undefined : [name]);
}

export function addHostNic(api: ApiClient, name: string, switchName: string): Promise<unknown> {
  return api.call('POST', PATH, { Name: name, SwitchName: switchName });
}

export async function getHostNicVlans(api: ApiClient, name: string | undefined): Promise<unknown> {
  const list = await api.call<unknown[]>('GET', `${PATH}/vlan${query({ VMNetworkAdapterName: name })}`);
  return oneOrMany(list, name === undefined ? undefined : [name]);
}

export function setHostNicVlan(api: ApiClient, name: string | undefined, body: object): Promise<unknown[]> {
  return api.call<unknown[]>('PUT', `${PATH}/vlan${query({ VMNetworkAdapterName: name })}`, body);
}

export async function removeHostNic(api: ApiClient, name: string, switchName: string | undefined): Promise<void> {
  await api.call('DELETE', `${PATH}${query({ Name: name, SwitchName: switchName })}`);
}
