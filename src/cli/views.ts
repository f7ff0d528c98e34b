// Default views of the object types the daemon returns (PascalCase properties, sizes in bytes, durations
// in seconds or TimeSpan-like objects). Depends on: table, format-value.
import { durationSeconds, formatTimeSpan } from './format-value.ts';
import type { View } from './table.ts';

const MiB = 1024 * 1024;

/** Get-VM's default table: Name, State, CPUUsage(%), MemoryAssigned(M), Uptime, Status. */
export const vmView: View = {
  columns: [
    { label: 'Name', value: 'Name' },
    { label: 'State', value: 'State' },
    { label: 'CPUUsage(%)', value: 'CPUUsage' },
    { label: 'MemoryAssigned(M)', value: (r) => (typeof r['MemoryAssigned'] === 'number' ? Math.floor(r['MemoryAssigned'] / MiB) : r['MemoryAssigned']) },
    { label: 'Uptime', value: (r) => { const s = durationSeconds(r['Uptime']); return s === undefined ? r['Uptime'] : formatTimeSpan(s); } },
    { label: 'Status', value: 'Status' },
  ],
};
