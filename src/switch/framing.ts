// The port wire format of QEMU's `-netdev stream`: each frame is a 4-byte big-endian length
// then the Ethernet frame. FrameDecoder turns arbitrary chunks (partial reads, several frames
// per chunk) into frames; encodeFrame writes one record. Pure: no sockets. Depends on nothing.

/** A length above this cannot be an Ethernet frame on a stream netdev: the stream is corrupt. */
export const STREAM_MAX_RECORD = 65536 + 18;

export type DecodeEvent =
  | { readonly kind: 'frame'; readonly frame: Uint8Array }
  | { readonly kind: 'corrupt'; readonly length: number };

/**
 * Incremental decoder. `push(chunk, onFrame)` calls onFrame for each complete frame and returns
 * false when a record length exceeds STREAM_MAX_RECORD: the caller must drop the connection
 * (resynchronising is impossible). Each frame is a view of the chunk (or, for a record split
 * across chunks, of a copy of it) whose 4 bytes before it are its record header: a forwarded
 * frame can leave as the record it came in. The decoder never writes into a chunk.
 */
export class FrameDecoder {
  private pending: Buffer | null = null;
  /** Length of the record whose header has been read and whose body is still incomplete. */
  corruptLength = -1;

  push(chunk: Buffer, onFrame: (frame: Uint8Array) => void): boolean {
    let buf = chunk;
    if (this.pending) {
      // Complete the pending record from the head of the chunk only (no copy of the whole chunk).
      const p = this.pending;
      if (p.length + chunk.length < 4) { this.pending = Buffer.concat([p, chunk]); return true; }
      const len = p.length >= 4 ? p.readUInt32BE(0) : Buffer.concat([p, chunk.subarray(0, 4 - p.length)]).readUInt32BE(0);
      if (len > STREAM_MAX_RECORD) { this.corruptLength = len; return false; }
      const need = 4 + len - p.length;
      if (chunk.length < need) { this.pending = Buffer.concat([p, chunk]); return true; }
      const rec = Buffer.concat([p, chunk.subarray(0, need)]);
      this.pending = null;
      onFrame(rec.subarray(4));
      buf = chunk.subarray(need);
    }
    let off = 0;
    const n = buf.length;
    // Frames as plain Uint8Array views: Buffer's subarray goes through the species constructor
    // and costs three times as much, once per frame.
    const ab = buf.buffer, base = buf.byteOffset;
    while (n - off >= 4) {
      // The length by hand: Buffer.readUInt32BE's argument checks cost more than the read, per frame.
      const len = buf[off]! * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
      if (len > STREAM_MAX_RECORD) { this.corruptLength = len; return false; }
      if (n - off - 4 < len) break;
      onFrame(new Uint8Array(ab, base + off + 4, len));
      off += 4 + len;
    }
    // Keep the tail: a copy so the caller's chunk can be reused/freed.
    if (off < n) this.pending = Buffer.from(buf.subarray(off));
    return true;
  }

  /** Bytes buffered for an incomplete record. */
  get buffered(): number { return this.pending?.length ?? 0; }

  reset(): void { this.pending = null; this.corruptLength = -1; }
}

/** One record: the 4-byte length and the frame, in a new buffer. */
export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}
