// CHS geometry of the footer and the virtual-size rule that depends on it.
// The geometry algorithm is the one in the VHD specification's appendix. Which size a
// reader must show depends on who wrote the file: Virtual PC (creator "vpc ") and old
// QEMU (creator "qemu") size the disk by cylinders×heads×sectors×512, while Hyper-V ("win "),
// Disk2VHD ("d2v "), newer QEMU ("qem2"), XenServer and we use the footer's current size.
// Unknown creators get current size too (Hyper-V's rule); QEMU 7.2 would use CHS for them.
// A geometry at the CHS maximum means "too big for CHS": then current size wins for anyone.
import type { Footer } from './footer.ts';
import { SECTOR } from './units.ts';

export interface Geometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

const MAX_CHS_SECTORS = 65535 * 16 * 255;

export function geometryForSize(bytes: number): Geometry {
  let total = Math.floor(bytes / SECTOR);
  if (total > MAX_CHS_SECTORS) total = MAX_CHS_SECTORS;
  let spt: number, heads: number, cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

export function geometrySize(g: Geometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack * SECTOR;
}

function isMaxGeometry(g: Geometry): boolean {
  return g.cylinders === 65535 && g.heads === 16 && g.sectorsPerTrack === 255;
}

/** Creators whose own reader sizes the disk from CHS geometry. */
const CHS_CREATORS = new Set(['vpc ', 'qemu']);

export function usesChsSize(footer: Footer): boolean {
  return CHS_CREATORS.has(footer.creatorApp) && !isMaxGeometry(footer.geometry);
}

/** The size the guest sees, by the rule above. */
export function virtualSizeOf(footer: Footer): number {
  return usesChsSize(footer) ? geometrySize(footer.geometry) : footer.currentSize;
}
