// Test support: what a cluster test prints when a guest it waits for never comes up — for each
// guest, its owner's view of the VM (state, heartbeat, uptime, QEMU pid, boot failure), QEMU's own
// run state over a second QMP connection (the daemon holds the monitor, so this may time out: said
// so), and the tail of the guest's serial log in the shared folder — so a timeout tells a guest
// that never started from one that hung in its boot from one whose heartbeat was never heard.
import { readFile } from 'node:fs/promises';
import { clusteredVmPaths } from '../../src/host/vm-paths.ts';
import { QmpClient } from '../../src/qemu/qmp-client.ts';
import type { TestDaemon } from './daemon.ts';

interface VmView { Id?: string; State?: string; Heartbeat?: string; UptimeSeconds?: number; ProcessId?: number | null; BootFailure?: unknown; Status?: string }

/** One line per guest: on `owner` (a daemon index, or undefined when no node owns it). */
export async function describeGuests(daemons: readonly TestDaemon[], shared: string, guests: readonly { vm: string; owner: number | undefined }[]): Promise<string[]> {
  return Promise.all(guests.map(async ({ vm, owner }) => {
    if (owner === undefined) return `${vm}: no owner`;
    const d = daemons[owner]!;
    const r = await d.api('GET', `/api/v1/vms/${vm}`).catch((e: unknown) => ({ status: 0, json: String(e) }));
    const v = r.json as VmView;
    const view = r.status === 200
      ? `State ${v.State}, Status ${v.Status}, Heartbeat ${v.Heartbeat}, UptimeSeconds ${v.UptimeSeconds}, pid ${v.ProcessId}, BootFailure ${JSON.stringify(v.BootFailure ?? null)}`
      : `GET answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`;
    if (!v.Id) return `${vm} on daemon ${owner}: ${view}`;
    const paths = clusteredVmPaths(d.dataDir, shared, v.Id);
    const status = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 2000 })
      .then(async (q) => { try { return JSON.stringify(await q.executeRaw('query-status', undefined, { timeoutMs: 2000 })); } finally { q.close(); } })
      .catch((e: unknown) => `unreachable (${String(e).slice(0, 120)})`);
    const serial = await readFile(paths.serialLog, 'utf8').then((s) => JSON.stringify(s.slice(-1500))).catch((e: unknown) => `unreadable (${String(e).slice(0, 120)})`);
    const qemuLog = await readFile(paths.qemuLog, 'utf8').then((s) => JSON.stringify(s.slice(-600))).catch(() => '(none)');
    return `${vm} on daemon ${owner}: ${view}; query-status ${status}; qemu.log tail ${qemuLog}; serial.log tail ${serial}`;
  }));
}
