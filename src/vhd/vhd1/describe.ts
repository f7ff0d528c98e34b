// Get-VHD facts about an open VHD, with Hyper-V's property names.
// MinimumSize: fixed disks cannot shrink, so it is the size; for dynamic/differencing disks
// it is the end of the last allocated block (the smallest size that keeps all stored data).
// FragmentationPercentage: the share of allocated blocks that do not directly follow the
// previously allocated block (in virtual order) in the file; 0 for fixed disks.
import type { DiskType } from '../../blockio/virtual-disk.ts';
import { formatUniqueId } from './footer.ts';
import { UNUSED } from './units.ts';
import type { VhdDisk } from './vhd-disk.ts';

export interface VhdDescription {
  Path: string;
  VhdFormat: 'VHD';
  VhdType: DiskType;
  FileSize: number;
  Size: number;
  MinimumSize: number;
  LogicalSectorSize: 512;
  PhysicalSectorSize: 512;
  BlockSize: number;
  ParentPath: string | null;
  DiskIdentifier: string;
  FragmentationPercentage: number;
  /** The footer's creator application, e.g. "win " (ours and Hyper-V), "vpc ", "qemu". */
  CreatorApplication: string;
}

export async function describeVhd(disk: VhdDisk): Promise<VhdDescription> {
  let minimum = disk.virtualSize;
  let fragmentation = 0;
  if (disk.bat) {
    let last = -1, allocated = 0, scattered = 0, prevStart = -1;
    const span = disk.bitmapBytes + disk.blockSize;
    disk.bat.forEach((e, i) => {
      if (e === UNUSED) return;
      last = i;
      const start = e * 512;
      if (allocated > 0 && start !== prevStart + span) scattered++;
      allocated++;
      prevStart = start;
    });
    minimum = Math.min(disk.virtualSize, (last + 1) * disk.blockSize);
    fragmentation = allocated > 1 ? Math.round((scattered / (allocated - 1)) * 100) : 0;
  }
  return {
    Path: disk.file.name,
    VhdFormat: 'VHD',
    VhdType: disk.type,
    FileSize: await disk.file.size(),
    Size: disk.virtualSize,
    MinimumSize: minimum,
    LogicalSectorSize: 512,
    PhysicalSectorSize: 512,
    BlockSize: disk.blockSize,
    ParentPath: disk.type === 'Differencing' ? disk.absoluteParentPath ?? disk.parentPaths[0] ?? null : null,
    DiskIdentifier: formatUniqueId(disk.uniqueId),
    FragmentationPercentage: fragmentation,
    CreatorApplication: disk.footer.creatorApp,
  };
}
