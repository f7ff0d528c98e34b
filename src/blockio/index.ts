export type { BlockFile } from './block-file.ts';
export type { VirtualDisk, Extent, DiskFormat, DiskType } from './virtual-disk.ts';
