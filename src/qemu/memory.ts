// Dynamic memory on a running QEMU, over QMP: the balloon takes memory back below the startup
// memory, virtio-mem devices add memory above it (command-line.ts creates them). Reading what
// the guest holds is `query-balloon` (startup memory less the inflated balloon) plus the plugged
// virtio-mem blocks. Depends on: ./qmp-client.
import type { QmpClient } from './qmp-client.ts';

const MiB = 1024 * 1024;

/** The balloon device's id (command-line.ts). */
export const BALLOON_ID = 'balloon0';

export interface MemoryReading {
  /** The boot RAM (-m): the balloon's range. */
  bootBytes: number;
  /** Boot RAM less the balloon: what the guest has of it. */
  balloonBytes: number;
  /** Per virtio-mem device id: bytes plugged now, bytes asked for (the guest catches up), and the device's size. */
  devices: Record<string, { pluggedBytes: number; requestedBytes: number; maxBytes: number }>;
}

export async function readMemory(qmp: QmpClient): Promise<MemoryReading> {
  const [balloon, devices, summary] = await Promise.all([
    qmp.execute('query-balloon'), qmp.execute('query-memory-devices'), qmp.execute('query-memory-size-summary'),
  ]);
  const out: MemoryReading['devices'] = {};
  for (const d of devices) {
    if (d.type !== 'virtio-mem') continue;
    const data = d.data as { id?: string; size: number; 'requested-size': number; 'max-size': number };
    if (data.id !== undefined) out[data.id] = { pluggedBytes: data.size, requestedBytes: data['requested-size'], maxBytes: data['max-size'] };
  }
  // Sizes as configured (whole MiB): the TCG pad (command-line.ts TCG_RAM_PAD) is QEMU's detail.
  const pad = summary['base-memory'] % MiB;
  return { bootBytes: summary['base-memory'] - pad, balloonBytes: balloon.actual - pad, devices: out };
}

/** The guest's target of its boot RAM: the balloon inflates or deflates toward it. */
export async function setBalloonTarget(qmp: QmpClient, bytes: number): Promise<void> {
  const pad = (await qmp.execute('query-memory-size-summary'))['base-memory'] % MiB;
  await qmp.execute('balloon', { value: bytes + pad });
}

/** How much of a virtio-mem device the guest should have plugged (whole blocks). */
export async function setVirtioMemRequested(qmp: QmpClient, deviceId: string, bytes: number): Promise<void> {
  await qmp.execute('qom-set', { path: `/machine/peripheral/${deviceId}`, property: 'requested-size', value: bytes });
}

/** The guest's own memory statistics through the balloon (the fallback when its agent cannot say). */
export interface BalloonStats { totalBytes: number; availableBytes: number }

/** Ask the balloon driver to report every `seconds` (0 stops it). */
export async function pollBalloonStats(qmp: QmpClient, seconds: number): Promise<void> {
  await qmp.execute('qom-set', { path: `/machine/peripheral/${BALLOON_ID}`, property: 'guest-stats-polling-interval', value: seconds });
}

/** The last statistics the guest sent; undefined before the first (or from a driver without them). */
export async function balloonStats(qmp: QmpClient): Promise<BalloonStats | undefined> {
  const r = await qmp.execute('qom-get', { path: `/machine/peripheral/${BALLOON_ID}`, property: 'guest-stats' }) as { stats?: Record<string, number>; 'last-update'?: number };
  const total = r.stats?.['stat-total-memory'];
  const available = r.stats?.['stat-available-memory'];
  if (!r['last-update'] || total === undefined || available === undefined || total < 0 || available < 0) return undefined;
  return { totalBytes: total, availableBytes: available };
}
