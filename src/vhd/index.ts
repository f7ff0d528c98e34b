// Public surface of the VHDX engine. Everything else in vhd/ is internal.
export { createVhdx, type CreateOptions } from './create.ts';
export { openVhdx, type OpenOptions } from './open.ts';
export type { VhdxDisk } from './disk.ts';
export type { ParentLocatorPaths, ParentResolver } from './chain.ts';
