// Port statistics and Meter ACL counters that outlive the daemon process: saved in the switch
// file (switches/<name>.json, `counters` by port id) on a graceful stop and every
// COUNTER_SAVE_INTERVAL_MS while they change, restored when the switch is recreated. A SIGKILL
// loses at most the last interval's counts.
import type { SavedPortCounters, VirtualSwitch } from '../switch/index.ts';

export const COUNTER_SAVE_INTERVAL_MS = 10_000;

export type SavedCounters = Record<string, SavedPortCounters>;

export function countersOf(sw: VirtualSwitch): SavedCounters {
  const out: SavedCounters = {};
  for (const p of sw.listPorts()) if (p.kind === 'vm') out[p.id] = { counters: sw.portStats(p.id), meters: sw.meterCounters(p.id) };
  return out;
}

/** Ports that no longer exist keep nothing: their counters went with them, as in a live removal. */
export function restoreCounters(sw: VirtualSwitch, saved: SavedCounters | undefined): void {
  const ports = new Set(sw.listPorts().map((p) => p.id));
  for (const [id, c] of Object.entries(saved ?? {})) if (ports.has(id)) sw.restoreCounters(id, c);
}
