// Public surface of the legacy VHD engine (Microsoft VHD format: fixed, dynamic, differencing).
export { createVhd, type CreateVhdOptions, type VhdParentSpec } from './create.ts';
export { openVhd, type OpenVhdOptions, type VhdParentResolver } from './open.ts';
export { describeVhd, type VhdDescription } from './describe.ts';
export { checkVhd, type VhdProblem } from './check.ts';
export { resizeVhd } from './resize.ts';
export { mergeVhd } from './merge.ts';
export { VhdDisk } from './vhd-disk.ts';
export { resolveLocatorPath } from './parent-locator.ts';
export { setVhdParent, type VhdParentChange } from './reparent.ts';
