// The hosts this console's user moves VMs to (Hyper-V Manager's list of connected servers):
// kept in the browser (localStorage), per console, names and addresses only — a destination's
// credential is asked for at each move and never kept here.
import { useSyncExternalStore } from 'react';

export interface KnownHost { Name: string; Address: string }

const KEY = 'vmhost.hosts';
const listeners = new Set<() => void>();
let cache: KnownHost[] | undefined;

function read(): KnownHost[] {
  if (cache) return cache;
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '[]') as unknown;
    cache = Array.isArray(v) ? v.filter((h): h is KnownHost => typeof h?.Name === 'string' && typeof h?.Address === 'string') : [];
  } catch {
    cache = [];
  }
  return cache;
}

function write(hosts: KnownHost[]): void {
  cache = hosts;
  localStorage.setItem(KEY, JSON.stringify(hosts));
  for (const l of listeners) l();
}

/** HOST:PORT, as Move-VM -DestinationHost takes it. */
export const ADDRESS = /^[^\s/:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

export function addHost(h: KnownHost): void {
  write([...read().filter((x) => x.Address !== h.Address), h]);
}

export function removeHost(address: string): void {
  write(read().filter((x) => x.Address !== address));
}

export function useHosts(): KnownHost[] {
  return useSyncExternalStore((l) => { listeners.add(l); return () => listeners.delete(l); }, read);
}
