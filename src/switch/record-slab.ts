// A socket port's reads laid end to end in one slab, for Node's `onread` (reads into buffers
// the caller hands out) instead of a fresh 64 KiB buffer per read and the 'data' stream
// machinery. A record split across two reads is contiguous once the second read lands, so
// every record is delivered as a view of the slab preceded by its header — forwarded as it
// came, without a copy, and one run per read to write on. Bytes of a slab are never read into
// twice: a full slab is left to the garbage collector with whatever still refers to it (frames
// queued for writing), only the incomplete record at its end is copied into the next one, so
// a delivered frame stays valid for as long as anything holds it. Depends on framing.
import { STREAM_MAX_RECORD, scanRecords } from './framing.ts';

/** A read is offered at least this much room: libuv's own read size. */
const MIN_READ = 64 << 10;
/**
 * Room for the largest incomplete record and a read behind it. A busy port's reads are at
 * most its peer's socket buffer (about 200 KiB); 1 MiB slabs measured no better than 256 or
 * 160 KiB, and an idle port keeps its slab until it fills.
 */
export const SLAB_BYTES = 256 << 10;

export class RecordSlab {
  private slab = new Uint8Array(0);
  /** Where the record not yet complete starts. */
  private start = 0;
  /** End of the bytes read. */
  private end = 0;

  constructor(private readonly slabBytes = SLAB_BYTES) {
    if (slabBytes < 4 + STREAM_MAX_RECORD + MIN_READ) throw new RangeError(`a slab of ${slabBytes} bytes cannot hold a whole record and a read`);
  }

  /** The buffer the next read fills (onread's `buffer` function). */
  next(): Uint8Array {
    if (this.slab.length - this.end < MIN_READ) {
      const fresh = Buffer.allocUnsafe(this.slabBytes);
      fresh.set(this.slab.subarray(this.start, this.end));
      this.end -= this.start;
      this.start = 0;
      this.slab = fresh;
    }
    return new Uint8Array(this.slab.buffer, this.slab.byteOffset + this.end, this.slab.length - this.end);
  }

  /**
   * `n` bytes were read into the buffer `next()` gave: calls onFrame for each record they
   * complete. False at a corrupt record length (see scanRecords): drop the connection.
   */
  filled(n: number, onFrame: (frame: Uint8Array) => void): boolean {
    this.end += n;
    const at = scanRecords(this.slab, this.start, this.end, onFrame);
    if (at < 0) return false;
    this.start = at;
    return true;
  }
}
