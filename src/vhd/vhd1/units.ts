// Sizes and limits of the VHD format shared by every file of the engine.

export const SECTOR = 512;
/** Largest virtual disk the VHD format (and Hyper-V) supports: 2040 GiB. */
export const MAX_VHD_SIZE = 2040 * 1024 * 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;
/** Block sizes accepted when opening; create is restricted further (see create.ts). */
export const MIN_BLOCK_SIZE = 512;
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
/** A BAT entry that maps no block. */
export const UNUSED = 0xffffffff;

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/** Seconds since 2000-01-01 00:00:00 UTC, the VHD time stamp epoch. */
export function vhdTimeStamp(date: Date = new Date()): number {
  return Math.max(0, Math.floor(date.getTime() / 1000) - 946684800) >>> 0;
}
