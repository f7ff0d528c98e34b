// Integrity check of a VHD file without opening it for I/O: every problem load.ts finds
// (footer and header checksums, footer copy at offset 0, BAT entries in range and not
// overlapping each other or metadata, locator ranges), as a list; empty means healthy.
import type { BlockFile } from '../../blockio/block-file.ts';
import { loadVhd, type Problem } from './load.ts';

export type { Problem as VhdProblem } from './load.ts';

export async function checkVhd(file: BlockFile): Promise<Problem[]> {
  return (await loadVhd(file)).problems;
}
