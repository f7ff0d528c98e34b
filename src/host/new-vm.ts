// New-VM's device parameters checked before anything is created, with Hyper-V's rules:
// one disk source at most (-NewVHDPath with -NewVHDSizeBytes, -VHDPath, or neither), and a
// -BootDevice the generation has.
import { BOOT_DEVICES, type BootDevice } from './boot-order.ts';
import { invalid } from './invalid-argument.ts';
import type { Generation } from './vm-config.ts';

export interface NewVmDeviceParams {
  NewVHDPath?: string;
  NewVHDSizeBytes?: number;
  VHDPath?: string;
  BootDevice?: BootDevice;
}

const GEN2_BOOT_DEVICES: readonly BootDevice[] = ['CD', 'VHD', 'NetworkAdapter'];

export function checkNewVmDevices(p: NewVmDeviceParams, generation: Generation): void {
  if (p.NewVHDPath !== undefined && p.VHDPath !== undefined) throw invalid('VHDPath', 'give -NewVHDPath (a new disk) or -VHDPath (an existing one), not both');
  if (p.NewVHDPath !== undefined && p.NewVHDSizeBytes === undefined) throw invalid('NewVHDSizeBytes', '-NewVHDPath needs -NewVHDSizeBytes (the new disk\'s size)');
  if (p.NewVHDSizeBytes !== undefined && p.NewVHDPath === undefined) throw invalid('NewVHDPath', '-NewVHDSizeBytes needs -NewVHDPath (where to create the disk)');
  for (const [param, path] of [['NewVHDPath', p.NewVHDPath], ['VHDPath', p.VHDPath]] as const) {
    if (path !== undefined && !path.startsWith('/')) throw invalid(param, `must be an absolute path on the host (got '${path}')`);
  }
  if (p.NewVHDSizeBytes !== undefined && (!Number.isSafeInteger(p.NewVHDSizeBytes) || p.NewVHDSizeBytes < 3 * 1024 * 1024 || p.NewVHDSizeBytes % 512 !== 0)) {
    throw invalid('NewVHDSizeBytes', `${p.NewVHDSizeBytes} is not a disk size (at least 3 MB, a multiple of 512 bytes)`);
  }
  if (p.BootDevice === undefined) return;
  if (!BOOT_DEVICES.includes(p.BootDevice)) throw invalid('BootDevice', `'${String(p.BootDevice)}' is not one of ${BOOT_DEVICES.join(', ')}`);
  if (generation === 2 && !GEN2_BOOT_DEVICES.includes(p.BootDevice)) {
    throw invalid('BootDevice', `generation 2 VMs boot from ${GEN2_BOOT_DEVICES.join(', ')} (they have no IDE, floppy or legacy network adapter)`);
  }
  if (p.BootDevice === 'VHD' && p.NewVHDPath === undefined && p.VHDPath === undefined) throw invalid('BootDevice', 'VHD needs a disk: give -NewVHDPath or -VHDPath');
}
