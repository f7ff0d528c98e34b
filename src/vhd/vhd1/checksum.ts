// The VHD checksum used by both the footer and the dynamic disk header: the one's
// complement of the byte sum of the structure, with the 4-byte checksum field counted as zero.

export function vhdChecksum(buf: Uint8Array, checksumOffset: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= checksumOffset && i < checksumOffset + 4) continue;
    sum = (sum + buf[i]!) >>> 0;
  }
  return ~sum >>> 0;
}
