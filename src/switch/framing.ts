// The port wire format of QEMU's `-netdev stream`: each frame is a 4-byte big-endian length
// then the Ethernet frame. FrameDecoder turns arbitrary chunks (partial reads, several frames
// per chunk) into frames; encodeFrame writes one record. Pure: no sockets. Depends on nothing.

/** A length above this cannot be an Ethernet frame on a stream netdev: the stream is corrupt. */
export const STREAM_MAX_RECORD = 65536 + 18;

export type DecodeEvent =
  | { readonly kind: 'frame'; readonly frame: Uint8Array }
  | { readonly kind: 'corrupt'; readonly length: number };

/**
 * Incremental decoder. `push(chunk, onFrame)` calls onFrame for each complete frame (a view
 * that stays valid until the next push) and returns false when a record length exceeds
 * STREAM_MAX_RECORD: the caller must drop the connection (resynchronising is impossible).
 */
export class FrameDecoder {
  private pending: Buffer | null = null;
  /** Length of the record whose header has been read and whose body is still incomplete. */
  corruptLength = -1;

  push(chunk: Buffer, onFrame: (frame: Buffer) => void): boolean {
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
    while (n - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > STREAM_MAX_RECORD) { this.corruptLength = len; return false; }
      if (n - off - 4 < len) break;
      onFrame(buf.subarray(off + 4, off + 4 + len));
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

/** The 4-byte length prefix of a record. */
export function recordHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(length, 0);
  return h;
}

/** One record: the 4-byte length and the frame, in a new buffer. */
export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}
