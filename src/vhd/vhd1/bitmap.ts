// The per-block sector bitmap that precedes each block's data: bit set (MSB first) means
// the sector holds data in this file; clear means it reads as zeros (dynamic) or from the
// parent (differencing). Padded to a whole sector on disk.
import { SECTOR, roundUp } from './units.ts';

export function bitmapBytes(blockSize: number): number {
  return roundUp(Math.ceil(blockSize / SECTOR / 8), SECTOR);
}

export function testBit(bm: Uint8Array, sector: number): boolean {
  return ((bm[sector >> 3]! >> (7 - (sector & 7))) & 1) === 1;
}

/** Sets bits [first, first+count); returns true when any bit changed. */
export function setBits(bm: Uint8Array, first: number, count: number): boolean {
  let changed = false;
  for (let s = first; s < first + count; s++) {
    const i = s >> 3, m = 0x80 >> (s & 7);
    if ((bm[i]! & m) === 0) {
      bm[i] = bm[i]! | m;
      changed = true;
    }
  }
  return changed;
}

/** Splits [first, first+count) into runs of equal bit value. */
export function* bitRuns(bm: Uint8Array, first: number, count: number): Generator<{ start: number; length: number; set: boolean }> {
  let s = first;
  const end = first + count;
  while (s < end) {
    const set = testBit(bm, s);
    let e = s + 1;
    while (e < end && testBit(bm, e) === set) e++;
    yield { start: s, length: e - s, set };
    s = e;
  }
}
