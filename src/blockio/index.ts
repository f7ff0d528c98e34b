export type { BlockFile } from './block-file.ts';
export type { VirtualDisk, Extent, DiskFormat, DiskType } from './virtual-disk.ts';
export { MemoryFile } from './memory-file.ts';
export { NodeFile, openNodeFile } from './node-file.ts';
export { CrashFile, prng, type CrashOp, type CrashVariant } from './crash-file.ts';
export { mapFd, firstDataFd, mapFileData, punchHole, holeMapStatus, nativeLock, type FileExtent } from './file-map.ts';
export { copySlice, nonZeroRuns, nativeCopyStatus, openDirect, type FileSlice } from './file-copy.ts';
