// The port wire format of QEMU's `-netdev stream`: each frame is a 4-byte big-endian length
// then the Ethernet frame. FrameDecoder turns arbitrary chunks (partial reads, several frames
// per chunk) into frames; scanRecords finds the records of a buffer holding reads end to end
// (record-slab.ts); encodeFrame writes one record. Pure: no sockets. Depends on nothing.

/** A length above this cannot be an Ethernet frame on a stream netdev: the stream is corrupt. */
export const STREAM_MAX_RECORD = 65536 + 18;

export type DecodeEvent =
  | { readonly kind: 'frame'; readonly frame: Uint8Array }
  | { readonly kind: 'corrupt'; readonly length: number };

/**
 * Where the frame scanRecords handed out last lies: its buffer and the offset of its record
 * header. A socket port sending that frame on as the record it came in reads its place here
 * instead of from the view: a typed array's `buffer` and `byteOffset` are calls into the
 * runtime in this V8 (~15–30 ns each), and a forwarded frame needed three of them.
 */
export const lastRecord: { frame: Uint8Array | null; buffer: ArrayBufferLike | null; start: number } = { frame: null, buffer: null, start: 0 };

/**
 * Calls onFrame for each complete record in buf[from, to) and returns where the first
 * incomplete one starts (`to` when there is none), or -1 at a record length beyond
 * STREAM_MAX_RECORD (the caller must drop the connection: resynchronising is impossible).
 * Each frame is a plain Uint8Array view of `buf` whose 4 bytes before it are its record
 * header, so a forwarded frame can leave as the record it came in; `buf` is not written.
 */
export function scanRecords(buf: Uint8Array, from: number, to: number, onFrame: (frame: Uint8Array) => void): number {
  // Plain Uint8Array views: Buffer's subarray goes through the species constructor and costs
  // three times as much, once per frame.
  const ab = buf.buffer, base = buf.byteOffset;
  let off = from;
  while (to - off >= 4) {
    // The length by hand: Buffer.readUInt32BE's argument checks cost more than the read, per frame.
    const len = buf[off]! * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
    if (len > STREAM_MAX_RECORD) return -1;
    if (to - off - 4 < len) break;
    const frame = new Uint8Array(ab, base + off + 4, len);
    lastRecord.frame = frame;
    lastRecord.buffer = ab;
    lastRecord.start = base + off;
    onFrame(frame);
    off += 4 + len;
  }
  return off;
}

/**
 * Incremental decoder over chunks the caller does not lay end to end (a socket's 'data'
 * events). `push(chunk, onFrame)` calls onFrame for each complete frame and returns false at a
 * corrupt record length (see scanRecords). Frames are views of the chunk (or, for a record
 * split across chunks, of a copy of it), as scanRecords gives them. The decoder never writes
 * into a chunk.
 */
export class FrameDecoder {
  private pending: Buffer | null = null;

  push(chunk: Buffer, onFrame: (frame: Uint8Array) => void): boolean {
    let buf = chunk;
    if (this.pending) {
      // Complete the pending record from the head of the chunk only (no copy of the whole chunk).
      const p = this.pending;
      if (p.length + chunk.length < 4) { this.pending = Buffer.concat([p, chunk]); return true; }
      const len = p.length >= 4 ? p.readUInt32BE(0) : Buffer.concat([p, chunk.subarray(0, 4 - p.length)]).readUInt32BE(0);
      if (len > STREAM_MAX_RECORD) return false;
      const need = 4 + len - p.length;
      if (chunk.length < need) { this.pending = Buffer.concat([p, chunk]); return true; }
      const rec = Buffer.concat([p, chunk.subarray(0, need)]);
      this.pending = null;
      onFrame(rec.subarray(4));
      buf = chunk.subarray(need);
    }
    const off = scanRecords(buf, 0, buf.length, onFrame);
    if (off < 0) return false;
    // Keep the tail: a copy so the caller's chunk can be reused/freed.
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
    return true;
  }

  /** Bytes buffered for an incomplete record. */
  get buffered(): number { return this.pending?.length ?? 0; }

  reset(): void { this.pending = null; }
}

/** One record: the 4-byte length and the frame, in a new buffer. */
export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}
