// Public surface of the VHDX engine ([MS-VHDX]). Everything else in vhd/ is internal.
export { createVhdx, type CreateOptions, type CreatedLayout } from './create.ts';
export { openVhdx, type OpenOptions } from './open.ts';
export type { VhdxDisk } from './disk.ts';
export type { ParentLocatorPaths, ParentResolver } from './chain.ts';
export { resizeVhdx } from './resize.ts';
export { mergeVhdx, mergeRanges, mergeLayers, CopyDown } from './merge.ts';
export { compactVhdx, type CompactResult } from './compact.ts';
export { checkVhdx } from './check.ts';
export { describeVhdx, type VhdxDescription } from './describe.ts';
export { listUserMetadata, getUserMetadata, setUserMetadata, type UserMetadataItem } from './user-metadata.ts';
export { MAX_VIRTUAL_SIZE } from './format.ts';
export { convertDisk, type ConvertOptions, type ConvertResult } from './convert.ts';
export { setVhdxParams, type VhdxParamChange } from './set-params.ts';
