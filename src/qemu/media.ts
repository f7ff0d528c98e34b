// Removable media and machine-level debug actions on a running QEMU, over QMP.
// Depends on: ./qmp-client.
import type { QmpClient } from './qmp-client.ts';

/**
 * Insert (or swap) an ISO in a DVD drive, or eject it (path null). Ejecting forces the
 * tray open even if the guest locked it, as Hyper-V's Set-VMDvdDrive -Path $null does; the
 * tray is closed again so the guest sees "no medium" rather than an open tray.
 */
export async function changeDvdMedia(qmp: QmpClient, deviceId: string, path: string | null): Promise<void> {
  if (path === null) {
    await qmp.executeRaw('blockdev-open-tray', { id: deviceId, force: true });
    await qmp.executeRaw('blockdev-remove-medium', { id: deviceId });
    await qmp.executeRaw('blockdev-close-tray', { id: deviceId });
    return;
  }
  await qmp.executeRaw('blockdev-change-medium', { id: deviceId, filename: path, format: 'raw', 'read-only-mode': 'read-only', force: true });
}

/** Debug-VM -InjectNonMaskableInterrupt: an NMI on every vCPU. */
export async function injectNmi(qmp: QmpClient): Promise<void> {
  await qmp.executeRaw('inject-nmi');
}
