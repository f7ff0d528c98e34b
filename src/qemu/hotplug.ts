// Changing a running VM's disks through QMP: SCSI hot-plug and unplug, and online resize of
// an NBD-backed disk. QEMU 7.2's NBD node learns its size only when it connects ("Cannot grow
// NBD nodes"), so a resize opens a second connection (which sees the new size), re-points the
// disk's raw node at it with blockdev-reopen, drops the old one, and then block_resize tells
// the guest's device (virtio/SCSI capacity change) without a reboot.
// Depends on: src/common, ./qmp-client, ./command-line, ./vm-spec.
import { VmhostError } from '../common/index.ts';
import { NBD_RECONNECT_DELAY_S, blockSizes, diskNodeName, nbdNodeName, scsiControllerId } from './command-line.ts';
import { QemuErrorCode } from './error-codes.ts';
import type { QmpClient } from './qmp-client.ts';
import type { DiskSpec, NbdDiskSource } from './vm-spec.ts';

const UNPLUG_TIMEOUT_MS = 15_000;

function nbdOptions(nodeName: string, src: NbdDiskSource, readOnly: boolean): Record<string, unknown> {
  return {
    driver: 'nbd', 'node-name': nodeName, server: { type: 'unix', path: src.socketPath }, export: src.exportName,
    'reconnect-delay': NBD_RECONNECT_DELAY_S, 'read-only': readOnly,
  };
}

/** Add a SCSI disk served over NBD to a running VM. */
export async function hotplugScsiDisk(qmp: QmpClient, d: DiskSpec): Promise<void> {
  if (d.bus !== 'scsi' || d.source.kind !== 'nbd') {
    throw new VmhostError(QemuErrorCode.QEMU_SPEC_INVALID, `disk ${d.id}: only SCSI disks served over NBD can be hot-plugged`, { device: d.id });
  }
  const ro = d.readOnly ?? false;
  const node = diskNodeName(d.id);
  await qmp.executeRaw('blockdev-add', nbdOptions(nbdNodeName(d.id, 0), d.source, ro));
  try {
    await qmp.executeRaw('blockdev-add', { driver: 'raw', 'node-name': node, file: nbdNodeName(d.id, 0), 'read-only': ro });
    await qmp.execute('device_add', {
      driver: d.media === 'cdrom' ? 'scsi-cd' : 'scsi-hd', id: d.id, drive: node,
      bus: `${scsiControllerId(d.controllerNumber ?? 0)}.0`, channel: 0, 'scsi-id': d.controllerLocation ?? 0, lun: 0,
      ...Object.fromEntries(Object.entries(blockSizes(d)).filter(([, v]) => v !== undefined)),
    });
  } catch (e) {
    await qmp.executeRaw('blockdev-del', { 'node-name': node }).catch(() => undefined);
    await qmp.executeRaw('blockdev-del', { 'node-name': nbdNodeName(d.id, 0) }).catch(() => undefined);
    throw e;
  }
}

/** Remove a hot-plugged (or any SCSI) disk: device first, then its block nodes. */
export async function unplugDisk(qmp: QmpClient, diskId: string, nbdGeneration: number): Promise<void> {
  const deleted = qmp.waitForEvent('DEVICE_DELETED', {
    timeoutMs: UNPLUG_TIMEOUT_MS, predicate: (e) => (e.data as { device?: string } | undefined)?.device === diskId,
  });
  await qmp.execute('device_del', { id: diskId });
  await deleted;
  await qmp.executeRaw('blockdev-del', { 'node-name': diskNodeName(diskId) });
  await qmp.executeRaw('blockdev-del', { 'node-name': nbdNodeName(diskId, nbdGeneration) });
}

/**
 * After the block server changed the export's size: swap in a fresh NBD connection under
 * the disk and announce the new size to the guest. Returns the new connection generation.
 */
export async function refreshNbdDiskSize(qmp: QmpClient, diskId: string, src: NbdDiskSource, readOnly: boolean, generation: number, newSize: number): Promise<number> {
  const next = generation + 1;
  await qmp.executeRaw('blockdev-add', nbdOptions(nbdNodeName(diskId, next), src, readOnly));
  await qmp.executeRaw('blockdev-reopen', { options: [{ driver: 'raw', 'node-name': diskNodeName(diskId), file: nbdNodeName(diskId, next), 'read-only': readOnly }] });
  await qmp.executeRaw('blockdev-del', { 'node-name': nbdNodeName(diskId, generation) });
  await qmp.execute('block_resize', { 'node-name': diskNodeName(diskId), size: newSize });
  return next;
}
