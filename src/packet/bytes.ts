// Big-endian field access and the Internet checksum (RFC 1071) over byte buffers.
// Depends on nothing. Readers do no bounds checks: callers check lengths first.

export function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Concatenates byte arrays into one new array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Unfolded one's-complement sum of 16-bit big-endian words (odd tail padded with zero). */
export function onesSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len - 1;
  let i = off;
  for (; i < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i === end) sum += b[i]! << 8;
  return sum;
}

/** Folds a sum to 16 bits and complements it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** RFC 1071 checksum of a byte range; 0 when computed over a range holding a correct checksum. */
export function internetChecksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  return finishChecksum(onesSum(b, off, len, initial));
}

/** Sum of the IPv4 or IPv6 pseudo-header (addresses of 4 or 16 bytes, upper-layer length). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return onesSum(src, 0, src.length) + onesSum(dst, 0, dst.length) + protocol + (length >>> 16) + (length & 0xffff);
}

/** Upper-layer checksum (UDP, TCP, ICMPv6) of `b[off, off+len)` with its pseudo-header. */
export function l4Checksum(b: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array, protocol: number): number {
  return internetChecksum(b, off, len, pseudoHeaderSum(src, dst, protocol, len));
}
