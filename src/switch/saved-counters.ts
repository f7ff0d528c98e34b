// Counters carried over a process restart: the daemon saves a port's counters and Meter ACL
// counters with the switch file and hands them back after recreating the port. They are added
// to what the new port counted meanwhile (frames may arrive between creation and restore).
// Meters are matched by remote address, as a policy change matches them. Depends on stats, acl.
import type { MeterCounters } from './acl.ts';
import type { PortState } from './port-state.ts';
import type { PortCounters } from './stats.ts';

export interface SavedPortCounters { counters: PortCounters; meters: MeterCounters[] }

export function addSavedCounters(st: PortState, saved: SavedPortCounters): void {
  const c = st.counters, s = saved.counters;
  c.rxFrames += s.rxFrames; c.rxBytes += s.rxBytes; c.txFrames += s.txFrames; c.txBytes += s.txBytes;
  for (const [reason, n] of Object.entries(s.drops)) c.drops[reason] = (c.drops[reason] ?? 0) + n;
  for (const old of saved.meters) {
    const m = st.acls.meters.find((x) => x.remoteAddress === old.remoteAddress);
    if (!m) continue; // the Meter rule is gone: nothing to add to
    m.inboundFrames += old.inboundFrames; m.inboundBytes += old.inboundBytes;
    m.outboundFrames += old.outboundFrames; m.outboundBytes += old.outboundBytes;
  }
}
