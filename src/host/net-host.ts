// What the network actions need of the host, and the one way they change a VM's adapters:
// pick by name, copy with changes (nothing mutated in place), commit (saved before it is true).
import { VmhostError } from '../common/index.ts';
import type { PortPolicy } from '../switch/index.ts';
import type { EventLevel } from './events.ts';
import type { MacPool } from './mac-pool.ts';
import type { NetworkAdapter } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';

export interface NetHost {
  resolve(nameOrId: string): VmEntry;
  entries(): Iterable<VmEntry>;
  persist(e: VmEntry): Promise<void>;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
  kvp(e: VmEntry): Record<string, unknown>;
  /** The host's dynamic MAC pool (Set-VMHost -MacAddressMinimum/-MacAddressMaximum). */
  macPool(): MacPool;
  readonly computerName: string;
}

/** The VM's adapters named `name` (all of them without a name); NOT_FOUND when none. */
export function pickAdapters(e: VmEntry, name: string | undefined): NetworkAdapter[] {
  const list = name === undefined ? e.config.networkAdapters : e.config.networkAdapters.filter((a) => a.name.toLowerCase() === name.toLowerCase());
  if (list.length === 0) {
    throw new VmhostError('NOT_FOUND', name === undefined ? `VM '${e.config.name}' has no network adapter` : `VM '${e.config.name}' has no network adapter named '${name}'`, { vm: e.config.name });
  }
  return list;
}

/** A new config in which the adapters of `list` are replaced by changed copies (nothing is mutated in place). */
export function withAdapters(e: VmEntry, list: NetworkAdapter[], change: (a: NetworkAdapter) => Partial<NetworkAdapter>): { config: VmEntry['config']; changed: NetworkAdapter[] } {
  const changed = list.map((a) => ({ ...a, ...change(a) }));
  const config = { ...e.config, networkAdapters: e.config.networkAdapters.map((a) => changed[list.indexOf(a)] ?? a) };
  return { config, changed };
}

/**
 * Save first, then update memory: `next` becomes the VM's config only once it is on disk.
 * (NetHost.persist writes e.config, so it is swapped in for the write, under the VM lock, and
 * put back when the write fails.)
 */
export async function commitConfig(host: NetHost, e: VmEntry, next: VmEntry['config']): Promise<void> {
  const prev = e.config;
  e.config = next;
  try {
    await host.persist(e);
  } catch (err) {
    e.config = prev;
    throw err;
  }
}

/** An adapter's stored policy has no MAC: the adapter's own `mac` is the one truth. */
export function stripMac(p: PortPolicy): PortPolicy {
  const { mac: _mac, ...rest } = p;
  return rest;
}

/** QEMU's device id of the adapter's NIC. */
export function nicDeviceId(a: NetworkAdapter): string {
  return `nic-${a.id.slice(0, 8)}`;
}
