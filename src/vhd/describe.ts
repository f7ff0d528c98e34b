// Get-VHD facts about an open VHDX, in Hyper-V's property names.
import { PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT } from './format.ts';
import { minimumSize } from './space.ts';
import type { VhdxDisk } from './disk.ts';

export interface VhdxDescription {
  VhdFormat: 'VHDX';
  VhdType: 'Fixed' | 'Dynamic' | 'Differencing';
  FileSize: number;
  Size: number;
  MinimumSize: number;
  LogicalSectorSize: number;
  PhysicalSectorSize: number;
  BlockSize: number;
  ParentPath: string | null;
  DiskIdentifier: string;
  /** Share of allocated blocks not stored right after the previous allocated block, in %. */
  FragmentationPercentage: number;
}

export async function describeVhdx(d: VhdxDisk): Promise<VhdxDescription> {
  return d.exclusive(async () => {
    let allocated = 0, scattered = 0, prev = -1;
    await d.bat.forEachPayload(0, d.g.dataBlocks, (_b, e) => {
      if (e.state !== PAYLOAD_FULLY_PRESENT && e.state !== PAYLOAD_PARTIALLY_PRESENT) return;
      allocated++;
      if (prev >= 0 && e.offset !== prev + d.blockSize) scattered++;
      prev = e.offset;
    });
    const pl = d.params.parentLocator?.entries;
    return {
      VhdFormat: 'VHDX',
      VhdType: d.type,
      FileSize: await d.file.size(),
      Size: d.virtualSize,
      MinimumSize: await minimumSize(d),
      LogicalSectorSize: d.logicalSectorSize,
      PhysicalSectorSize: d.physicalSectorSize,
      BlockSize: d.blockSize,
      ParentPath: pl ? (pl.get('absolute_win32_path') ?? pl.get('relative_path') ?? pl.get('volume_path') ?? null) : null,
      DiskIdentifier: d.params.page83.toUpperCase(),
      FragmentationPercentage: allocated > 1 ? Math.round((scattered * 100) / (allocated - 1)) : 0,
    };
  });
}
