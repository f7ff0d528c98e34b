// What the pool cmdlets and the device cmdlets share (a module of no cmdlets: the registry
// takes every export of a cmdlet module): the pool types, the types query, and `setPool`, the
// -ResourcePoolName of Set-VMMemory, Set-VMProcessor, Add-/Set-VMHardDiskDrive and
// Add-/Set-VMNetworkAdapter.
import type { ApiClient } from '../client.ts';

export const POOL_TYPE_VALUES = ['Memory', 'Processor', 'Ethernet', 'VHD', 'ISO', 'VFD', 'FibreChannelPort', 'FibreChannelConnection'] as const;
export const METERED_TYPE_VALUES = ['Ethernet', 'Memory', 'Processor', 'VHD'] as const;

/** ?ResourcePoolType=… for the pool routes. */
export function typesQuery(types: readonly string[] | undefined): string {
  return types && types.length > 0 ? `?${new URLSearchParams({ ResourcePoolType: types.join(',') })}` : '';
}

/** The -ResourcePoolName of a device cmdlet: the VM (Memory, Processor) or one of its devices into the pool. */
export async function setPool(api: ApiClient, vmId: string, type: (typeof METERED_TYPE_VALUES)[number], poolName: string, deviceId?: string): Promise<void> {
  await api.call('PUT', `/vms/${vmId}/resource-pool`, { ResourcePoolType: type, ResourcePoolName: poolName, DeviceId: deviceId });
}


/** The switches of an Ethernet pool (Get-VMSwitch -ResourcePoolName, Connect-VMNetworkAdapter -UseAutomaticConnection). */
export async function poolSwitches(api: ApiClient, pool: string): Promise<string[]> {
  const pools = await api.call<{ Switches: string[] }[]>('GET', `/resource-pools?${new URLSearchParams({ Name: pool, ResourcePoolType: 'Ethernet' })}`);
  return pools.flatMap((p) => p.Switches);
}
