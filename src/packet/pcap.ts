// Classic libpcap file encoding (LINKTYPE_ETHERNET), pure: the caller writes the bytes.
// Microsecond (magic a1b2c3d4) or nanosecond (a1b23c4d) timestamps, little-endian.
// Depends on nothing.

export const LINKTYPE_ETHERNET = 1;

export interface PcapOptions {
  /** Largest captured length per record; longer frames are cut (orig_len keeps the true size). */
  readonly snaplen?: number;
  readonly nanoseconds?: boolean;
}

/** The 24-byte global header. */
export function pcapHeader(opts: PcapOptions = {}): Uint8Array {
  const out = new Uint8Array(24);
  const v = new DataView(out.buffer);
  v.setUint32(0, opts.nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, opts.snaplen ?? 65535, true);
  v.setUint32(20, LINKTYPE_ETHERNET, true);
  return out;
}

/** One record: 16-byte header + the frame (cut to snaplen). `timeNs`: nanoseconds since the epoch. */
export function pcapRecord(frame: Uint8Array, timeNs: bigint, opts: PcapOptions = {}): Uint8Array {
  const snap = opts.snaplen ?? 65535;
  const incl = Math.min(frame.length, snap);
  const out = new Uint8Array(16 + incl);
  const v = new DataView(out.buffer);
  const sec = timeNs / 1_000_000_000n;
  const frac = timeNs % 1_000_000_000n;
  v.setUint32(0, Number(sec & 0xffff_ffffn), true);
  v.setUint32(4, Number(opts.nanoseconds ? frac : frac / 1000n), true);
  v.setUint32(8, incl, true);
  v.setUint32(12, frame.length, true);
  out.set(frame.subarray(0, incl), 16);
  return out;
}
